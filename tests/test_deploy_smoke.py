"""The smoke test of a deployed endpoint. The happy path against a real served model runs under
act (tests/test_act_deploy.py); here each failure it must catch is played by a small local HTTP
server on 127.0.0.1 answering what a broken deployment would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops_template.deploy.smoke import check_prediction, example_instance, smoke_deployed

TAG = "shop-model:abc123"
CLASSES = ["no", "yes"]
COLUMNS = [
    {"name": "price", "kind": "numeric", "integer": False, "min": 0.0, "max": 10.0},
    {"name": "items", "kind": "numeric", "integer": True, "min": 1.0, "max": 4.0},
    {"name": "colour", "kind": "categorical", "values": ["red", "blue"]},
    {"name": "member", "kind": "boolean"},
]
GOOD = {"label": "yes", "probabilities": {"no": 0.25, "yes": 0.75}, "model_version": TAG}


class Endpoint:
    """Answers per path: (status, JSON body); records the /predict bodies."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {
            "/livez": (200, {}),
            "/readyz": (200, {}),
            "/metadata": (200, {"tag": TAG, "classes": CLASSES, "input": {"columns": COLUMNS}}),
            "/predict": (200, [GOOD]),
        }
        self.predicted: list[Any] = []


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.path == "/predict":
                length = int(self.headers.get("Content-Length") or 0)
                state.predicted.append(json.loads(self.rfile.read(length)))
            status, body = state.answers.get(self.path, (404, {"error": "not found"}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_a_healthy_endpoint_serving_the_release_passes(endpoint) -> None:
    url, state = endpoint
    report = smoke_deployed(url + "/", TAG, wait_seconds=0)
    assert report.passed, report.problems
    assert report.summary() == f"smoke test passed: {url} serves {TAG}"
    assert state.predicted == [{"instances": [[5.0, 3, "red", False]]}]


@pytest.mark.parametrize(
    ("path", "answer", "problem"),
    [
        ("/readyz", (503, {}), "GET /readyz answered 503, not 200"),
        ("/livez", (500, {}), "GET /livez answered 500, not 200"),
        (
            "/metadata",
            (200, {"tag": "shop-model:old", "classes": CLASSES}),
            "names model shop-model:old",
        ),
        ("/predict", (400, {"error": "bad"}), "answered 400"),
        ("/predict", (200, []), "/predict of one instance answered []"),
        ("/predict", (200, [{**GOOD, "label": "maybe"}]), "label 'maybe' is not a class"),
        (
            "/predict",
            (200, [{**GOOD, "model_version": "shop-model:old"}]),
            "answered with model shop-model:old",
        ),
    ],
)
def test_each_broken_answer_fails_the_smoke_test(endpoint, path, answer, problem) -> None:
    url, state = endpoint
    state.answers[path] = answer
    report = smoke_deployed(url, TAG, wait_seconds=0)
    assert not report.passed
    assert any(problem in p for p in report.problems), report.problems
    assert report.summary().startswith(f"smoke test FAILED at {url}:")


def test_nothing_listening_is_a_failure_not_a_crash(endpoint) -> None:
    url, _ = endpoint
    closed = url.rsplit(":", 1)[0] + ":9"  # discard port: nothing answers
    report = smoke_deployed(closed, TAG, wait_seconds=0)
    assert report.problems == [
        "GET /livez answered nothing, not 200",
        "GET /readyz answered nothing, not 200",
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ({"kind": "numeric", "min": 0.0, "max": 10.0}, 5.0),
        ({"kind": "numeric", "integer": True, "min": 0.0, "max": 1.0}, 1),  # 0.5 rounds up
        ({"kind": "numeric", "integer": True, "min": 3.0, "max": 3.0}, 3),  # at the bound
        ({"kind": "numeric", "min": 2.5}, 2.5),  # no upper bound: at the lower one
        ({"kind": "numeric", "max": -4.0}, -4.0),  # no lower bound: at the upper one
        ({"kind": "numeric", "min": -3.0, "max": -1.0}, -2.0),  # negative range
        ({"kind": "numeric"}, 0.0),
        ({"kind": "categorical", "values": ["b", "a"]}, "b"),
        ({"kind": "boolean"}, False),
    ],
)
def test_the_example_instance_is_valid_for_every_column_rule(column, value) -> None:
    assert example_instance([column]) == [value]


@pytest.mark.parametrize(
    ("probabilities", "problem"),
    [
        ({"no": 0.25, "yes": 0.75}, None),
        ({"no": 0.25, "yes": 0.7501}, None),  # within the tolerance
        ({"no": 0.25, "yes": 0.76}, "do not sum to 1"),
        ({"yes": 1.0}, "do not name every class"),
    ],
)
def test_probabilities_must_cover_the_classes_and_sum_to_one(probabilities, problem) -> None:
    from mlops_template.deploy.smoke import DeployedSmoke

    report = DeployedSmoke("http://x", TAG)
    check_prediction([{**GOOD, "probabilities": probabilities}], {"classes": CLASSES}, report)
    assert report.problems == ([] if problem is None else [f"/predict probabilities {problem}"])


def test_cli_smoke_exits_1_on_a_failure_and_0_when_it_passes(endpoint, capsys) -> None:
    from mlops_template.cli import main

    url, state = endpoint
    assert main(["deploy", "smoke", "--url", url, "--model-tag", TAG, "--wait", "0"]) == 0
    assert capsys.readouterr().out.startswith("smoke test passed")
    state.answers["/readyz"] = (503, {})
    assert main(["deploy", "smoke", "--url", url, "--model-tag", TAG, "--wait", "0"]) == 1
    assert "GET /readyz answered 503, not 200" in capsys.readouterr().out
