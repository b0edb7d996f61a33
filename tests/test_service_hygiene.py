"""Request hygiene and bounded metrics (serving/middleware.py, serving/metrics.py).

Fast tier: the ingress middleware driven directly with fake ASGI scopes, and the log filter on
fake records. Slow tier: a real `bentoml serve` on 127.0.0.1 (helpers_serving), over raw
sockets where a client library would normalise the request (repeated headers, framing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from typing import Any

import pytest
from helpers_serving import DevServer, drive_asgi, http, packaged_project, post, running_server
from prometheus_client import REGISTRY

from mlops_template.serving import middleware
from mlops_template.serving.middleware import (
    MAX_HEADER_BYTES,
    MAX_URL_BYTES,
    ClientErrorLogs,
    RequestLimits,
)

# length_mm (0..500), ratio, legs (integer 0..12), colour, winged, weight_g (>= 0, nullable)
VALID_ROW = [120.5, 0.25, 4, "green", True, None]
API_ROUTES = ("/predict", "/metadata")
MODEL_VERSION = "unit-model:v1"


# ----------------------------------------------------------------------- the middleware


def drive(
    path: str = "/predict",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"{}",
    method: str = "POST",
    query: bytes = b"",
    answer: tuple[int, bytes] = (200, b"ok"),
    routes: tuple[str, ...] | None = API_ROUTES,
    raise_in_app: BaseException | None = None,
    **limits: Any,
) -> tuple[int, dict[str, Any], bool]:
    """Run one request through RequestLimits; returns status, JSON body (or {}), app reached."""
    reached: list[bool] = []

    async def inner(scope, receive, send):
        reached.append(True)
        await receive()
        if raise_in_app is not None:
            raise raise_in_app
        await send({"type": "http.response.start", "status": answer[0], "headers": []})
        await send({"type": "http.response.body", "body": answer[1]})

    app = RequestLimits(
        inner, max_body_bytes=1000, api_routes=routes, model_version=MODEL_VERSION, **limits
    )
    sent = drive_asgi(app, path, headers, [body], method, query)
    status = sent[0]["status"]
    payload = sent[1].get("body", b"")
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {"list": parsed}, bool(reached)


JSON_CT = ("content-type", "application/json")


def test_a_clean_json_post_reaches_the_app():
    assert drive(headers=[JSON_CT, ("content-length", "2")])[::2] == (200, True)


def test_two_content_types_are_refused_with_415_whichever_comes_first():
    for pair in ([JSON_CT, ("content-type", "multipart/form-data; boundary=x")],
                 [("content-type", "multipart/form-data; boundary=x"), JSON_CT],
                 [JSON_CT, JSON_CT]):  # fmt: skip
        status, body, reached = drive(headers=pair)
        assert (status, reached) == (415, False)
        assert "2 Content-Type headers" in body["error"] and "exactly one" in body["error"]


def test_content_length_with_transfer_encoding_is_refused_with_400():
    status, body, reached = drive(
        headers=[JSON_CT, ("content-length", "2"), ("transfer-encoding", "chunked")]
    )
    assert (status, reached) == (400, False)
    assert "both Content-Length and Transfer-Encoding" in body["error"]
    status, body, _ = drive(headers=[JSON_CT, ("content-length", "2"), ("content-length", "2")])
    assert status == 400 and "more than one Content-Length" in body["error"]
    assert drive(headers=[JSON_CT, ("transfer-encoding", "chunked")])[0] == 200


def test_a_url_over_the_limit_gets_414_and_one_at_the_limit_passes():
    path = "/predict"
    at_limit = b"q=" + b"a" * (MAX_URL_BYTES - len(path) - 2)
    assert drive(query=at_limit, headers=[JSON_CT])[0] == 200
    status, body, reached = drive(query=at_limit + b"a", headers=[JSON_CT])
    assert (status, reached) == (414, False)
    assert f"over the limit of {MAX_URL_BYTES}" in body["error"]
    long_path = "/" + "a" * MAX_URL_BYTES  # long and unknown: the size is what is reported
    assert drive(path=long_path, method="GET")[0] == 414


def test_headers_over_the_limit_get_431_and_a_block_at_the_limit_passes():
    base = len("content-type") + len("application/json") + len("x-pad")
    fits = [JSON_CT, ("x-pad", "a" * (MAX_HEADER_BYTES - base))]
    assert drive(headers=fits)[0] == 200
    status, body, reached = drive(headers=[JSON_CT, ("x-pad", "a" * (MAX_HEADER_BYTES - base + 1))])
    assert (status, reached) == (431, False)
    assert f"over the limit of {MAX_HEADER_BYTES}" in body["error"]


def test_only_the_services_routes_reach_the_app():
    for path in ("/", "/readyz", "/livez", "/healthz", "/docs.json", "/schema.json",
                 "/static_content/index.css"):  # fmt: skip
        assert drive(path=path, method="GET")[::2] == (200, True), path
    for path in ("/nope", "/predict/", "/predictx", "/static_content", "/docs", "/metrics/x"):
        status, body, reached = drive(path=path, method="GET")
        assert (status, reached) == (404, False), path
        assert "POST /metadata, POST /predict" in body["error"]
    status, body, _ = drive(path="/" + "z" * 1000, method="GET")
    assert status == 404 and len(body["error"]) < 400  # the path is quoted, cut short


def test_metrics_are_answered_by_the_middleware():
    status, _, reached = drive(path="/metrics", method="GET")
    assert (status, reached) == (200, False)
    assert drive(path="/metrics", method="POST", headers=[JSON_CT])[0] == 405


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def answer_body(labels: list[str]) -> bytes:
    one = {"confidence": 0.75, "probabilities": {}, "model_version": "m"}
    return json.dumps([{"label": x, **one} for x in labels]).encode()


def test_predictions_are_counted_from_the_answers_that_were_sent():
    before = {c: sample("mlops_predictions_total", **{"class": c}) for c in ("uA", "uB")}
    rows_before = sample("mlops_rows_per_request_sum", model_version=MODEL_VERSION)
    ok = drive(headers=[JSON_CT], answer=(200, answer_body(["uA", "uB", "uA"])))
    assert ok[0] == 200
    # Computed but answered 503 (batching, overload) or cut by the timeout: not counted.
    assert drive(headers=[JSON_CT], answer=(503, answer_body(["uA"])))[0] == 503
    with pytest.raises(asyncio.CancelledError):
        drive(headers=[JSON_CT], raise_in_app=asyncio.CancelledError())
    assert sample("mlops_predictions_total", **{"class": "uA"}) - before["uA"] == 2
    assert sample("mlops_predictions_total", **{"class": "uB"}) - before["uB"] == 1
    assert sample("mlops_rows_per_request_sum", model_version=MODEL_VERSION) - rows_before == 3
    assert sample("mlops_requests_total", endpoint="/predict", code="504") >= 1


def test_unknown_paths_share_one_series():
    before = sample("mlops_requests_total", endpoint="unknown", code="404")
    names = {m.name for m in REGISTRY.collect()}
    for k in range(20):
        drive(path=f"/unique-{k}", method="GET")
    assert sample("mlops_requests_total", endpoint="unknown", code="404") - before == 20
    assert {m.name for m in REGISTRY.collect()} == names
    endpoints = {
        s.labels["endpoint"]
        for m in REGISTRY.collect()
        if m.name == "mlops_requests"
        for s in m.samples
    }
    assert not any(e.startswith("/unique") for e in endpoints)


def test_without_routes_the_middleware_only_checks():
    assert drive(path="/anything", routes=None, headers=[JSON_CT])[::2] == (200, True)
    assert drive(path="/anything", routes=None, headers=[JSON_CT, JSON_CT])[0] == 415


class Held:
    """An inner app whose answers wait until released: requests stay in progress."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope, receive, send):
        self.entered += 1
        await receive()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer_body(["uA"])})


def concurrent(app: RequestLimits, held: Held, requests: int) -> list[tuple[int, dict, bytes]]:
    """`requests` requests at once; the held ones are released once all have arrived."""

    async def one() -> tuple[int, dict, bytes]:
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-type", b"application/json")],
        }
        await app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    async def run() -> list[tuple[int, dict, bytes]]:
        tasks = [asyncio.ensure_future(one()) for _ in range(requests)]
        for _ in range(100):  # let every request arrive (refused ones finish at once)
            await asyncio.sleep(0)
        held.release.set()
        return list(await asyncio.gather(*tasks))

    return asyncio.run(run())


@pytest.mark.parametrize(("capacity", "requests"), [(1, 1), (1, 2), (3, 3), (3, 4), (3, 7)])
def test_requests_past_max_concurrency_get_503_with_retry_after(capacity, requests):
    held = Held()
    app = RequestLimits(
        held, max_body_bytes=1000, api_routes=API_ROUTES, max_concurrency=capacity, retry_after_s=2
    )
    answers = concurrent(app, held, requests)
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200] * min(capacity, requests) + [503] * max(0, requests - capacity)
    assert held.entered == min(capacity, requests)  # the refused never reached the app
    for status, headers, body in answers:
        if status == 503:
            assert headers[b"retry-after"] == b"2"
            assert headers[b"content-type"] == b"application/json"
            assert b"connection" not in headers  # the request was read whole: keep the stream
            message = json.loads(body)["error"]
            assert "at capacity" in message and "retry after 2 s" in message
    assert app.in_progress == 0


def test_a_request_is_admitted_again_once_an_answer_is_sent():
    app = RequestLimits(Held(), max_body_bytes=1000, api_routes=API_ROUTES, max_concurrency=1)
    for _ in range(3):  # one at a time: each is admitted
        held = Held()
        app.app = held
        assert [a[0] for a in concurrent(app, held, 1)] == [200]


def test_health_and_metrics_are_never_refused_for_capacity():
    assert drive(path="/readyz", method="GET", max_concurrency=1)[0] == 200
    assert drive(path="/metrics", method="GET", max_concurrency=1)[0] == 200


def test_bentomls_503_becomes_a_capacity_answer_and_predictions_are_not_counted():
    before = sample("mlops_predictions_total", **{"class": "uC"})
    shed = json.dumps({"error": "An unexpected error has occurred, please check the server log."})
    status, body, reached = drive(headers=[JSON_CT], answer=(503, shed.encode()))
    assert (status, reached) == (503, True)
    assert "at capacity" in body["error"] and "retry after 1 s" in body["error"]
    assert "unexpected" not in body["error"]
    assert sample("mlops_predictions_total", **{"class": "uC"}) == before


# ----------------------------------------------------------------------- the log filter


def record_for(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        return logging.LogRecord(
            middleware.BENTOML_HTTP_LOGGER,
            logging.ERROR,
            __file__,
            1,
            "Exception on %s [%s]",
            ("/predict", "POST"),
            sys.exc_info(),
        )


def test_bentomls_4xx_are_logged_at_info_without_traceback():
    from bentoml.exceptions import BadInput
    from pydantic import BaseModel, ValidationError

    class Model(BaseModel):
        x: int

    try:
        Model(x="not a number")  # type: ignore[arg-type]
    except ValidationError as exc:
        validation = exc
    for exc, says in ((validation, "400 1 validation error(s)"), (BadInput("bad json"), "400")):
        record = record_for(exc)
        assert ClientErrorLogs().filter(record)
        assert (record.levelno, record.levelname, record.exc_info) == (logging.INFO, "INFO", None)
        assert record.getMessage().startswith("Client error on /predict [POST]: " + says)


def test_server_errors_stay_at_error_with_the_traceback():
    record = record_for(RuntimeError("boom"))
    assert ClientErrorLogs().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_overload_is_one_error_line_without_traceback():
    from bentoml.exceptions import ServiceUnavailable

    record = record_for(ServiceUnavailable("process is overloaded"))
    assert ClientErrorLogs().filter(record)
    assert (record.levelno, record.exc_info) == (logging.ERROR, None)
    assert record.getMessage() == (
        "Overloaded on /predict [POST]: 503 ServiceUnavailable: process is overloaded"
    )


def test_the_filter_is_installed_once():
    target = logging.getLogger(middleware.BENTOML_HTTP_LOGGER)
    middleware.quiet_client_errors()
    middleware.quiet_client_errors()
    assert sum(isinstance(f, ClientErrorLogs) for f in target.filters) == 1


# ----------------------------------------------------------------------- a real server


# At most 2 requests in progress: the overload test reaches the limit with a few requests.
CAPACITY = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    project = packaged_project(tmp_path_factory, "service-hygiene")
    with running_server(project, args=(f"max_concurrency={CAPACITY}",)) as server:
        yield server


def raw(port: int, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client normalises them); read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # a refusal may close the socket before the body is sent
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


BODY = json.dumps({"instances": [VALID_ROW]}).encode()


def request(
    head: str, body: bytes = BODY, length: bool = True, extra: str = "", path: str = "/predict"
) -> bytes:
    sized = f"Content-Length: {len(body)}\r\n" if length else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head}{sized}{extra}\r\n"
    ).encode() + body


def refused(response: tuple[int, dict[str, str], bytes], status: int, says: str) -> None:
    code, headers, body = response
    assert code == status, body[:300]
    assert headers["content-type"] == "application/json"
    assert says in json.loads(body)["error"]


@pytest.mark.slow
def test_a_valid_raw_request_is_answered(server):
    status, _, body = raw(server.port, request("Content-Type: application/json\r\n"))
    assert status == 200 and len(json.loads(body)) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "types",
    [
        ("multipart/form-data; boundary=x", "application/json"),
        ("application/json", "multipart/form-data; boundary=x"),
        ("application/json", "application/json"),
    ],
    ids=["form-first", "json-first", "same-twice"],
)
def test_two_content_types_get_415(server, types):
    head = "".join(f"Content-Type: {t}\r\n" for t in types)
    refused(raw(server.port, request(head)), 415, "2 Content-Type headers")


@pytest.mark.slow
@pytest.mark.parametrize("length_first", [True, False], ids=["length-first", "chunked-first"])
def test_content_length_with_chunked_gets_400(server, length_first):
    """uvicorn's parser decides who refuses: h11 (the bento's) passes the request on and the
    ingress refuses it; httptools (installed with uvicorn[standard]) refuses it itself in
    plain text. Either way: 400, never an answer to a body of disputed length."""
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    framing = [f"Content-Length: {len(BODY)}\r\n", "Transfer-Encoding: chunked\r\n"]
    head = "Content-Type: application/json\r\n" + "".join(framing[:: 1 if length_first else -1])
    response = raw(server.port, request(head, chunked, length=False))
    if response[1].get("content-type") == "application/json":
        refused(response, 400, "both Content-Length and Transfer-Encoding")
    else:
        assert response[0] == 400, response


@pytest.mark.slow
def test_two_different_content_lengths_get_a_4xx(server):
    """h11 refuses this one itself (400, plain text) before the app sees it."""
    head = "Content-Type: application/json\r\nContent-Length: 3\r\n"
    status, _, _ = raw(server.port, request(head))
    assert status == 400


@pytest.mark.slow
def test_a_long_url_gets_414(server):
    """One byte over the limit reaches the ingress (414); a 100 KB URL may be refused by the
    HTTP parser first (httptools: 400), never answered."""
    just_over = "/predict?q=" + "a" * (MAX_URL_BYTES - len("/predictq=") + 1)  # path + query
    for url in (just_over, "/predict?q=" + "a" * 100_000, "/" + "a" * 100_000):
        head = f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        response = raw(server.port, head.encode())
        if url == just_over or response[1].get("content-type") == "application/json":
            refused(response, 414, f"over the limit of {MAX_URL_BYTES}")
        else:
            assert response[0] == 400, response


@pytest.mark.slow
def test_a_big_header_gets_431(server):
    head = "Content-Type: application/json\r\nX-Big: " + "a" * 64_000 + "\r\n"
    response = raw(server.port, request(head))
    if response[1].get("content-type") == "application/json":
        refused(response, 431, f"over the limit of {MAX_HEADER_BYTES}")
    else:  # refused by the HTTP parser (httptools) before the app
        assert response[0] in (400, 431), response
    many = "".join(f"X-H{k}: {'b' * 200}\r\n" for k in range(100))
    refused(raw(server.port, request("Content-Type: application/json\r\n" + many)), 431, "headers")


@pytest.mark.slow
def test_the_services_own_pages_are_still_served(server):
    for path in ("/", "/docs.json", "/schema.json", "/static_content/index.css", "/readyz",
                 "/livez", "/healthz", "/metrics"):  # fmt: skip
        status, _ = http(f"{server.url}{path}", method="GET", content_type=None)
        assert status == 200, path
    status, body = http(f"{server.url}/docs", method="GET", content_type=None)
    assert status == 404 and "POST /predict" in json.loads(body)["error"]


def log_after(server: DevServer, offset: int, marker: str, timeout: float = 15) -> str:
    """The server log written since `offset`, once `marker` is in it."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log.read_bytes()[offset:].decode("utf-8", "replace")
        if marker in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


@pytest.mark.slow
def test_a_400_is_logged_at_info_without_traceback(server):
    offset = server.log.stat().st_size
    bad = [list(VALID_ROW)]
    bad[0][2] = 13  # legs above its max
    status, answer = post(f"{server.url}/predict", {"instances": bad})
    assert status == 400 and answer["detail"]
    status, _, _ = raw(server.port, request("Content-Type: text/plain\r\n"))
    assert status == 415
    text = log_after(server, offset, "Client error on /predict [POST]: 400")
    assert "Client error on /predict [POST]: 400 1 validation error(s)" in text, text[-3000:]
    assert "refused with 415" in text, text[-3000:]
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


def scrape(server: DevServer) -> str:
    status, body = http(f"{server.url}/metrics", method="GET", content_type=None)
    assert status == 200
    return body.decode()


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of `name` in an exposition, keyed by its labels."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[frozenset(s.labels.items())] = s.value
    return found


def total(text: str, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for k, v in samples(text, name).items() if wanted <= k)


@pytest.mark.slow
def test_unique_unknown_paths_get_404_and_do_not_grow_metrics(server):
    assert http(f"{server.url}/warm-up", method="GET", content_type=None)[0] == 404
    before = scrape(server)
    for k in range(300):
        url = f"{server.url}/unknown/{k}-{time.time_ns()}"
        status, body = http(url, method="GET", content_type=None)
        assert status == 404 and "POST /predict" in json.loads(body)["error"]
    after = scrape(server)
    assert len(after) < len(before) * 1.05, (len(before), len(after))
    assert "/unknown/" not in after
    grew = total(after, "mlops_requests_total", endpoint="unknown", code="404") - total(
        before, "mlops_requests_total", endpoint="unknown", code="404"
    )
    assert grew == 300


@pytest.mark.slow
def test_predictions_count_the_rows_answered(server):
    before = scrape(server)
    answered = 0
    for size in (1, 7, 20, 3):
        status, answer = post(f"{server.url}/predict", {"instances": [VALID_ROW] * size})
        assert status == 200 and len(answer) == size
        answered += size
    bad = [list(VALID_ROW) for _ in range(5)]
    bad[4][3] = "purple"
    assert post(f"{server.url}/predict", {"instances": bad})[0] == 400
    assert post(f"{server.url}/predict", {"instances": []})[0] == 400
    assert http(f"{server.url}/predict", BODY, "text/plain")[0] == 415
    big = b'{"instances": [' + b"0," * 1_100_000 + b"0]}"
    assert raw(server.port, request("Content-Type: application/json\r\n", big))[0] == 413
    assert http(f"{server.url}/predictx", BODY)[0] == 404
    after = scrape(server)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("mlops_predictions_total") == answered
    assert grew("mlops_prediction_confidence_count") == answered
    assert grew("mlops_rows_per_request_count") == 4
    assert grew("mlops_rows_per_request_sum") == answered
    assert grew("mlops_requests_total", endpoint="/predict", code="200") == 4
    assert grew("mlops_requests_total", endpoint="/predict", code="400") == 2
    assert grew("mlops_requests_total", endpoint="/predict", code="415") == 1
    assert grew("mlops_requests_total", endpoint="/predict", code="413") == 1
    assert grew("mlops_request_duration_seconds_count", endpoint="/predict") == 8
    versions = {dict(k)["model_version"] for k in samples(after, "mlops_rows_per_request_count")}
    assert len(versions) == 1 and versions.pop().startswith("synth-model:")


def at_once(port: int, body: bytes, clients: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`clients` requests whose bodies complete together: each socket gets all but the last
    byte first, then every last byte is sent; the answers, in order."""
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(clients)]
    try:
        for sock in socks:
            sock.sendall(head + body[:-1])
        time.sleep(0.5)  # every partial body is read by the server
        for sock in socks:
            sock.sendall(body[-1:])
        answers = []
        for sock in socks:
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            head_text, _, payload = response.partition(b"\r\n\r\n")
            lines = head_text.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            answers.append((int(lines[0].split()[1]), headers, payload))
        return answers
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.slow
def test_past_capacity_requests_get_503_with_retry_after_and_only_answers_are_counted(server):
    rows = 1000  # the most a request may carry: each stays in progress a while
    body = json.dumps({"instances": [VALID_ROW] * rows}).encode()
    before = scrape(server)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    for _ in range(3):  # the bodies complete together; a round without a 503 is retried
        answers += at_once(server.port, body, clients=4 * CAPACITY)
        if any(status == 503 for status, _, _ in answers):
            break
    after = scrape(server)
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses, statuses
    for status, headers, payload in answers:
        if status == 503:
            assert headers["retry-after"] == "1"
            assert headers["content-type"] == "application/json"
            assert "at capacity" in json.loads(payload)["error"]
        else:
            assert len(json.loads(payload)) == rows

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    answered = statuses.count(200)
    assert grew("mlops_predictions_total") == answered * rows
    assert grew("mlops_rows_per_request_count") == answered
    assert grew("mlops_requests_total", endpoint="/predict", code="200") == answered
    assert grew("mlops_requests_total", endpoint="/predict", code="503") == statuses.count(503)
    text = log_after(server, 0, "at capacity")
    assert "at capacity" in text and "Traceback" not in text
