"""A real `bentoml serve` on 127.0.0.1 with a packaged scikit-learn model of the synthetic task
(helpers_serving), over real HTTP: every instance form, each column's rule, the limits."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import numpy as np
import pytest
from helpers_serving import (
    SYNTH_CLASSES,
    SYNTH_FEATURES,
    SYNTH_PROJECT,
    DevServer,
    http,
    json_instances,
    packaged_project,
    post,
    running_server,
    split_frame,
)

from mlops_template import paths
from mlops_template.model_io import load_model
from mlops_template.records import PredictionRecord
from mlops_template.serving import store
from mlops_template.stages.package import PROBA_TOLERANCE

pytestmark = pytest.mark.slow

# length_mm (0..500), ratio, legs (integer 0..12), colour, winged, weight_g (>= 0, nullable)
VALID_ROW = [120.5, 0.25, 4, "green", True, None]
ROW_TEXT = ',0.25,4,"green",true,null'


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return packaged_project(tmp_path_factory, "service-http")


@pytest.fixture(scope="module")
def server(project):
    """Batching on (the scikit-learn family does not ask for it: the hardest path is the one
    tested) and the prediction log on, every request logged."""
    with running_server(
        project, args=("batching=true",), MLOPS_PREDICTION_LOG=str(project / "predictions")
    ) as server:
        yield server


def test_served_predictions_equal_the_offline_model(server, project):
    model = load_model(project / paths.MODEL_DIR)
    frame = split_frame(project)
    rows = json_instances(frame, model.spec)
    status, answer = post(f"{server.url}/predict", {"instances": rows})
    assert status == 200, answer
    assert [a["label"] for a in answer] == model.predict(frame)
    assert {a["label"] for a in answer} <= set(SYNTH_CLASSES)
    served = [[a["probabilities"][str(c)] for c in model.classes] for a in answer]
    np.testing.assert_allclose(served, model.predict_proba(frame), atol=PROBA_TOLERANCE)
    tag = store.model_tag(SYNTH_PROJECT, project / paths.SERVING_DIR)
    assert {a["model_version"] for a in answer} == {tag}


def test_an_instance_by_position_by_name_and_as_a_grid_gets_the_same_answer(server):
    named = dict(zip(SYNTH_FEATURES, VALID_ROW, strict=True))
    grid = [VALID_ROW[:3], VALID_ROW[3:]]  # schema.shape [2, 3]
    status, answer = post(f"{server.url}/predict", {"instances": [VALID_ROW, named, grid]})
    assert status == 200, answer
    assert answer[0] == answer[1] == answer[2]


def _json(payload) -> bytes:
    return json.dumps(payload).encode()


def _raw_row(value: str) -> bytes:
    """A row whose first value (length_mm) is given as raw JSON text (NaN, 1e400, ...)."""
    return f'{{"instances": [[{value}{ROW_TEXT}]]}}'.encode()


def _with(column: str, value) -> bytes:
    row = list(VALID_ROW)
    row[SYNTH_FEATURES.index(column)] = value
    return _json({"instances": [row]})


def _named(**changes) -> bytes:
    return _json({"instances": [{**dict(zip(SYNTH_FEATURES, VALID_ROW, strict=True)), **changes}]})


JSON = "application/json"
# (id, body, content type, expected status)
MALFORMED = [
    ("empty-instances", _json({"instances": []}), JSON, 400),
    ("no-instances-key", _json({}), JSON, 400),
    ("empty-body", b"", JSON, 400),
    ("instances-not-a-list", _json({"instances": 5}), JSON, 400),
    ("instances-a-string", _json({"instances": "1,2,3"}), JSON, 400),
    ("top-level-list", _json([VALID_ROW]), JSON, 400),
    ("top-level-null", b"null", JSON, 400),
    ("unknown-column", _named(size=3), JSON, 400),
    ("missing-column", _json({"instances": [{"length_mm": 1}]}), JSON, 400),
    ("row-5-values", _json({"instances": [VALID_ROW[:5]]}), JSON, 400),
    ("row-7-values", _json({"instances": [[*VALID_ROW, 1]]}), JSON, 400),
    ("number-as-string", _with("length_mm", "1"), JSON, 400),
    ("boolean-as-number", _with("length_mm", True), JSON, 400),
    ("null-not-nullable", _with("ratio", None), JSON, 400),
    ("integer-not-whole", _with("legs", 2.5), JSON, 400),
    ("integer-above-max", _with("legs", 13), JSON, 400),
    ("category-not-allowed", _with("colour", "purple"), JSON, 400),
    ("category-as-number", _with("colour", 1), JSON, 400),
    ("bool-as-string", _with("winged", "true"), JSON, 400),
    ("nullable-below-min", _with("weight_g", -0.5), JSON, 400),
    ("named-bad-category", _named(colour="RED"), JSON, 400),
    ("nan", _raw_row("NaN"), JSON, 400),
    ("infinity", _raw_row("Infinity"), JSON, 400),
    ("minus-infinity", _raw_row("-Infinity"), JSON, 400),
    ("overflow-to-infinity", _raw_row("1e400"), JSON, 400),
    ("negative", _raw_row("-1"), JSON, 400),
    ("above-max", _raw_row("500.01"), JSON, 400),
    ("huge-value", _raw_row("1e9"), JSON, 400),
    ("grid-3x2", _json({"instances": [[VALID_ROW[:2], VALID_ROW[2:4], VALID_ROW[4:]]]}), JSON, 400),
    ("ragged-grid", _json({"instances": [[VALID_ROW[:3], VALID_ROW[3:5]]]}), JSON, 400),
    ("too-deep", _json({"instances": [[[VALID_ROW[:3]], [VALID_ROW[3:]]]]}), JSON, 400),
    ("1001-rows", _json({"instances": [VALID_ROW] * 1001}), JSON, 400),
    ("text-plain", _json({"instances": [VALID_ROW]}), "text/plain", 415),
    ("form-encoded", b"instances=1", "application/x-www-form-urlencoded", 415),
    ("multipart", b"--x--", "multipart/form-data; boundary=x", 415),
    ("truncated-json", b'{"instances": [[0, 1', JSON, 400),
    ("not-json", b"hello", JSON, 400),
    ("binary", bytes(range(256)), JSON, 400),
]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_requests_get_a_4xx_with_a_message(server, body, content_type, expected):
    status, answer = http(f"{server.url}/predict", body, content_type)
    assert status == expected, answer[:500]
    payload = json.loads(answer)
    messages = payload if isinstance(payload, list) else [payload]
    assert all(m.get("error") for m in messages), payload


def test_a_400_names_the_instance_the_column_and_the_rule(server):
    bad = [list(VALID_ROW) for _ in range(3)]
    bad[1][SYNTH_FEATURES.index("legs")] = 13
    bad[2][SYNTH_FEATURES.index("colour")] = "purple"
    status, answer = post(f"{server.url}/predict", {"instances": bad})
    assert status == 400
    assert [(d["loc"], d["msg"]) for d in answer["detail"]] == [
        (["instances", 1], "instance 1: column 'legs': got 13; expected an integer from 0 to 12"),
        (
            ["instances", 2],
            "instance 2: column 'colour': got \"purple\"; expected one of 'red', 'green', 'blue'",
        ),
    ]
    status, answer = post(f"{server.url}/predict", {"instances": [{"size": 1}] * 30})
    assert status == 400 and len(answer["detail"]) == 21
    assert answer["detail"][0]["msg"].startswith("instance 0: unknown column 'size'")
    assert answer["detail"][-1]["msg"] == "and 10 more invalid instances"


def exchange(port: int, head: bytes, body: bytes) -> bytes:
    """Send a request over a raw socket and read the answer even if the server stops reading
    the body early (it answers 413 and closes: the client's send then fails)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for start in range(0, len(body), 65536):
                sock.sendall(body[start : start + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass
    return response


OVERSIZED = b'{"instances": [' + b"0," * 1_500_000 + b"0]}"  # 3 MB > the 2 MiB limit


def _chunked(body: bytes, size: int = 65536) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("framing", "expect"),
    [("content-length", ""), ("content-length", "Expect: 100-continue\r\n"), ("chunked", "")],
    ids=["declared-length", "expect-continue", "chunked-no-length"],
)
def test_an_oversized_body_gets_413_before_it_is_parsed(server, framing, expect):
    if framing == "chunked":
        length, body = "Transfer-Encoding: chunked\r\n", _chunked(OVERSIZED)
    else:
        length, body = f"Content-Length: {len(OVERSIZED)}\r\n", OVERSIZED
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{length}{expect}\r\n"
    ).encode()
    response = exchange(server.port, head, b"" if expect else body)
    assert response.startswith(b"HTTP/1.1 413"), response[:300]
    message = json.loads(response.partition(b"\r\n\r\n")[2])["error"]
    assert "larger than the limit of 2097152 bytes" in message


def test_unknown_routes_and_methods_are_4xx(server):
    assert http(f"{server.url}/nope", b"{}")[0] == 404
    assert http(f"{server.url}/predict", method="GET", content_type=None)[0] == 405


def test_the_server_is_healthy_after_the_bad_requests(server):
    for _, body, content_type, _ in MALFORMED:
        assert http(f"{server.url}/predict", body, content_type)[0] < 500
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(OVERSIZED)}\r\n\r\n"
    assert exchange(server.port, head.encode(), OVERSIZED).startswith(b"HTTP/1.1 413")
    for probe in ("readyz", "livez"):
        assert http(f"{server.url}/{probe}", method="GET", content_type=None)[0] == 200
    status, answer = post(f"{server.url}/predict", {"instances": [VALID_ROW]})
    assert status == 200 and len(answer) == 1


def _series(text: str, name: str) -> dict[str, float]:
    """`name{labels} value` lines of a Prometheus exposition, keyed by their label text."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{[^}}]*\}})? ([0-9.eE+-]+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_metrics_count_predictions_per_class_and_confidence(server):
    def scrape() -> str:
        return http(f"{server.url}/metrics", method="GET", content_type=None)[1].decode()

    before = scrape()
    rows = [[40.0 * k, k - 3.0, k, "red", k % 2 == 0, None] for k in range(1, 8)]
    status, answer = post(f"{server.url}/predict", {"instances": rows})
    assert status == 200
    labels = [a["label"] for a in answer]
    after = scrape()
    counts_before = _series(before, "mlops_predictions_total")
    counts_after = _series(after, "mlops_predictions_total")
    for label in set(labels):
        key = f'{{class="{label}"}}'
        grew = counts_after[key] - counts_before.get(key, 0)
        assert grew == labels.count(label)
    observed = _series(after, "mlops_prediction_confidence_count")[""]
    assert observed - _series(before, "mlops_prediction_confidence_count").get("", 0) == len(rows)
    assert 'mlops_prediction_confidence_bucket{le="0.5"}' in after
    assert "mlops_requests_total" in after


def test_metadata_describes_the_packaged_model(server, project):
    packaged = store.read_bentomodel(project / paths.BENTOMODEL_FILE).to_json()
    status, meta = post(f"{server.url}/metadata", {})
    assert status == 200
    record = packaged["provenance"]
    assert (
        meta["tag"]
        == packaged["tag"]
        == store.model_tag(SYNTH_PROJECT, project / paths.SERVING_DIR)
    )
    assert meta["family"] == "sklearn" and meta["classes"] == SYNTH_CLASSES
    assert meta["project"] == record["project"] and meta["project"]["name"] == SYNTH_PROJECT
    assert [c["name"] for c in meta["input"]["columns"]] == SYNTH_FEATURES
    assert meta["input"]["shape"] == [2, 3] and meta["input"]["max_rows"] == 1000
    assert meta["git_commit"] == record["git_commit"]
    assert meta["data_md5"] == record["data"]["md5"]
    assert meta["params"] == record["params"]
    assert meta["metrics"] == record["metrics"]
    assert meta["gate"] == record["gate"] and meta["gate"]["accepted"] is True
    assert meta["serving"]["batched"] is True  # --arg batching=true
    assert meta["serving"]["max_batch_size"] == meta["input"]["max_rows"] == 1000
    assert meta["serving"]["max_concurrency"] == 32


def _head(body: bytes) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()


def _read_all(sock: socket.socket) -> bytes:
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    return response


def test_requests_in_flight_at_sigterm_complete_and_a_stalled_one_is_bounded(project):
    """8 clients are each one byte short of a 1000-row request when the server gets SIGTERM
    (as `docker stop` sends it); they send that byte after shutdown has begun and all get
    their answer. A ninth never finishes its body: the request timeout (5 s here) ends it, so
    the server still exits (the grace period is bounded)."""
    server = DevServer(project, args=("timeout_s=5",))
    try:
        server.wait_ready()
        body = _json({"instances": [VALID_ROW] * 1000})
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=60) for _ in range(9)]
        for sock in socks:
            sock.sendall(_head(body) + body[:-1])
        time.sleep(0.5)  # the server is reading these requests
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(1.0)  # shutdown has begun; no request is complete
        for sock in socks[:8]:
            sock.sendall(body[-1:])
        with ThreadPoolExecutor(9) as pool:
            responses = list(pool.map(_read_all, socks))
        for response in responses[:8]:
            status_line, _, rest = response.partition(b"\r\n")
            assert status_line.startswith(b"HTTP/1.1 200"), response[:300]
            assert len(json.loads(rest.partition(b"\r\n\r\n")[2])) == 1000
        assert responses[8].startswith(b"HTTP/1.1 504"), responses[8][:300]
        assert server.process.wait(60) == 0
        assert "Traceback" not in server.log_text()
    finally:
        for sock in locals().get("socks", []):
            sock.close()
        server.stop()


def test_thousand_row_requests_are_answered_in_one_batch(server, project):
    """The most a request may carry, from 8 clients at once, with adaptive batching on: never
    split into batches that wait on one another (a 64-row batch size made every one a 503)."""
    model = load_model(project / paths.MODEL_DIR)
    frame = split_frame(project)
    rows = json_instances(frame, model.spec)
    times = -(-1000 // len(rows))
    instances = (rows * times)[:1000]
    expected = (model.predict(frame) * times)[:1000]

    def ask(_: int) -> tuple[int, list]:
        return post(f"{server.url}/predict", {"instances": instances})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(16)))
    assert [status for status, _ in answers] == [200] * 16, answers[0]
    for _, answer in answers:
        assert [a["label"] for a in answer] == expected


def test_32_clients_with_100_rows_each_get_no_error(server):
    """A short load test: every client keeps one connection and sends 100-row requests for
    3 s. No timing is asserted, only that every request is answered 200."""
    body = _json({"instances": [VALID_ROW] * 100})
    stop = time.monotonic() + 3.0
    statuses: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            while time.monotonic() < stop:
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                with lock:
                    statuses.append(response.status)
                    if response.status != 200:
                        failures.append(answer[:300].decode(errors="replace"))
        except OSError as exc:
            with lock:
                failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:3]
    assert len(statuses) >= 32 and set(statuses) == {200}


def test_the_server_logs_its_model_once_at_start(server, project):
    tag = store.model_tag(SYNTH_PROJECT, project / paths.SERVING_DIR)
    lines = [line for line in server.log_text().splitlines() if "serving model" in line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"serving model {tag} (family sklearn, classes {SYNTH_CLASSES})" in line
    assert "6 columns: length_mm (a number from 0 to 500), ratio (a number)" in line
    assert "weight_g (a number >= 0, or null); or nested as 2x3" in line
    assert "1..1000 instances per request" in line and "batched=True" in line
    assert f"prediction_log={project / 'predictions' / 'predictions.jsonl'}" in line


def test_an_answered_request_lands_in_the_prediction_log(server, project):
    marker = 0.123456789  # a ratio no other test sends
    rows = [[10.0 * k, marker, k, "blue", k % 2 == 0, None] for k in range(3)]
    named = dict(zip(SYNTH_FEATURES, [99.5, marker, 7, "red", False, 0.25], strict=True))
    status, answer = post(f"{server.url}/predict", {"instances": [*rows, named]})
    assert status == 200
    log = project / "predictions" / "predictions.jsonl"
    deadline = time.monotonic() + 30
    found: list[PredictionRecord] = []
    while time.monotonic() < deadline and len(found) < 4:
        time.sleep(0.2)
        text = log.read_text() if log.exists() else ""
        found = [
            PredictionRecord.parse_text(line, str(log))
            for line in text.splitlines()
            if str(marker) in line
        ]
    assert [r.features for r in found] == [
        *(dict(zip(SYNTH_FEATURES, row, strict=True)) for row in rows),
        named,
    ]
    assert [(r.prediction, r.confidence) for r in found] == [
        (a["label"], a["confidence"]) for a in answer
    ]
    assert {r.model for r in found} == {answer[0]["model_version"]}
