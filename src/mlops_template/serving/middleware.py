"""The service's ingress: refuse malformed, oversized and unknown requests before BentoML reads
them, serve /metrics, and observe every answer in bounded series.

uvicorn (h11) hands the app whatever it parsed: repeated headers, a URL of 100 KB, 64 KB of
headers, a body framed by both Content-Length and chunked encoding (the chunked body wins).
BentoML then reads the first Content-Type while a check reading the last would pass, parses a
body of any size, and falls back to JSON for any content type. So, in this order:

- a URL (path and query) over MAX_URL_BYTES gets 414, a header block over MAX_HEADER_BYTES 431;
- Content-Length together with Transfer-Encoding, or Content-Length twice, gets 400: the two
  framings disagree about where the body ends (request smuggling);
- Content-Type twice gets 415: each reader of the request must see the same type;
- a path that is not one of the service's routes gets 404 here, and is counted under
  endpoint="unknown" (no per-path series);
- GET /metrics is answered here (serving/metrics.py: BentoML's own metrics are off);
- a POST body: a declared Content-Length over the limit gets 413 at once; a body without one is
  counted as it streams in and cut off with 413 as soon as it passes the limit; a Content-Type
  that is not JSON gets 415. The accepted body is then handed on unchanged.

Every refusal is a JSON `{"error": ...}` saying what is wrong and how to fix it, logged at INFO
(no traceback), and answered with `Connection: close` (the rest of the stream is not trusted).

`quiet_client_errors()` does the same for BentoML's own 4xx answers (see its docstring).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from mlops_template.serving.metrics import UNKNOWN_ENDPOINT, exposition, prediction_metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json",)

# The API takes no query parameters and its longest route is short; 8 KiB is what common
# proxies and servers accept for a request line (nginx, Apache), so no client that works
# through a proxy is refused here, and a 100 KB URL is.
MAX_URL_BYTES = 8 * 1024
# All header names and values together: browsers and HTTP clients send well under 8 KiB;
# 16 KiB leaves room for proxies' forwarding and tracing headers while a 64 KB header (which
# costs memory in every layer that copies it) is refused.
MAX_HEADER_BYTES = 16 * 1024

# Routes BentoML serves next to the API methods (BentoML 1.4, default index): the health
# probes, /metrics, the Swagger UI at / with its spec and assets, the JSON schema.
SYSTEM_ROUTES = ("/", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json")
STATIC_PREFIX = "/static_content/"
METRICS_ROUTE = "/metrics"
PREDICT_ROUTE = "/predict"
QUOTED_PATH = 100  # characters of an unknown path quoted back in the 404

logger = logging.getLogger("mlops_template.serving")


class RequestLimits:
    """ASGI middleware: request hygiene (400/404/413/414/415/431), /metrics, answer metrics.

    `api_routes` are the service's POST routes; with it, any other path outside
    SYSTEM_ROUTES and STATIC_PREFIX gets 404. Without it (None) every path passes, and nothing
    is observed: the middleware only checks requests.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        api_routes: Iterable[str] | None = None,
        model_version: str = "",
        max_url_bytes: int = MAX_URL_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.api_routes = None if api_routes is None else frozenset(api_routes)
        self.routes = None if api_routes is None else frozenset(SYSTEM_ROUTES) | self.api_routes
        self.model_version = model_version
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self._endpoint(scope["path"])
        if self.routes is None:
            await self._checked(scope, receive, send, endpoint)
            return
        observed = _Observed(send, keep_body=endpoint == PREDICT_ROUTE)
        started = time.perf_counter()
        try:
            await self._checked(scope, receive, observed.send, endpoint)
        except BaseException as exc:
            # Cancelled: BentoML's timeout answers 504 outside this middleware. Anything else
            # becomes a 500 there.
            if observed.status is None:
                observed.status = 504 if isinstance(exc, asyncio.CancelledError) else 500
            raise
        finally:
            self._observe(endpoint, observed, time.perf_counter() - started)

    def _endpoint(self, path: str) -> str:
        """The route a path belongs to: a bounded label value."""
        if self.routes is None or path in self.routes:
            return path
        if path.startswith(STATIC_PREFIX):
            return STATIC_PREFIX.rstrip("/")
        return UNKNOWN_ENDPOINT

    def _observe(self, endpoint: str, observed: _Observed, seconds: float) -> None:
        """Count the answer; a failure here is logged, never turned into the client's error."""
        try:
            metrics = prediction_metrics()
            is_api = self.api_routes is not None and endpoint in self.api_routes
            status = observed.status if observed.status is not None else 0
            latency = seconds if is_api else None
            metrics.observe_request(endpoint, status, latency, self.model_version)
            if endpoint == PREDICT_ROUTE and status == 200 and observed.complete:
                metrics.observe_answer(b"".join(observed.body), self.model_version)
        except Exception:
            logger.exception("could not record the metrics of a %s answer", endpoint)

    async def _checked(self, scope: Scope, receive: Receive, send: Send, endpoint: str) -> None:
        refusal = self._refusal(scope, endpoint)
        if refusal is not None:
            status, message = refusal
            logger.info(
                "%s %s refused with %d: %s",
                scope.get("method"),
                _quoted(scope["path"]),
                status,
                message,
            )
            await _reply(send, status, message)
            return
        if endpoint == METRICS_ROUTE and self.routes is not None:
            await _metrics(scope, send)
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive, send)
        if body is None:
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, endpoint: str) -> tuple[int, str] | None:
        """(status, message) when the request is refused before its body is read."""
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope.get("query_string", b"")
        )
        if url_bytes > self.max_url_bytes:
            return 414, (
                f"the URL is {url_bytes} bytes, over the limit of {self.max_url_bytes}: "
                "the API takes no query parameters; send the data in a JSON body"
            )
        header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
        if header_bytes > self.max_header_bytes:
            return 431, (
                f"the request headers are {header_bytes} bytes, over the limit of "
                f"{self.max_header_bytes}: send fewer or shorter headers"
            )
        names = [k.decode("latin-1").lower() for k, _ in scope["headers"]]
        if "content-length" in names and "transfer-encoding" in names:
            return 400, (
                "the request has both Content-Length and Transfer-Encoding headers: "
                "send only one of them (Content-Length for a body of known size)"
            )
        if names.count("content-length") > 1:
            return 400, "the request has more than one Content-Length header: send exactly one"
        if names.count("content-type") > 1:
            return 415, (
                f"the request has {names.count('content-type')} Content-Type headers: "
                "send exactly one, Content-Type: application/json"
            )
        if endpoint == UNKNOWN_ENDPOINT:
            served = ", ".join(f"POST {r}" for r in sorted(self.api_routes or ()))
            return 404, (
                f"no such path {_quoted(scope['path'])}: this service answers {served}, "
                "GET /metrics, GET /readyz and GET /livez (GET / documents the API)"
            )
        if (
            self.routes is not None
            and endpoint == METRICS_ROUTE
            and scope.get("method") not in ("GET", "HEAD")
        ):
            return 405, "/metrics is read with GET"
        if scope.get("method") != "POST":
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type")
        if content_type is not None:
            media = content_type.split(";")[0].strip().lower()
            if media not in JSON_TYPES:
                return 415, (
                    f"unsupported Content-Type {media!r}: send the request as application/json"
                )
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return 400, f"invalid Content-Length header {declared!r}"
            if int(declared) > self.max_body_bytes:
                return 413, self._too_large()
        return None

    def _too_large(self) -> str:
        return (
            f"request body is larger than the limit of {self.max_body_bytes} bytes: "
            "send fewer instances per request"
        )

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None when it passed the limit (413 sent) or the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                logger.info("request body cut off at %d bytes with 413", size)
                await _reply(send, 413, self._too_large())
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Observed:
    """Wraps send(): the status, and the body of a /predict answer, as the client gets them."""

    def __init__(self, send: Send, keep_body: bool) -> None:
        self._send = send
        self.keep_body = keep_body
        self.status: int | None = None
        self.body: list[bytes] = []
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and self.keep_body and self.status == 200:
            self.body.append(message.get("body", b""))
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True  # sent: a failure after this point is not the client's


def _quoted(path: str) -> str:
    return path if len(path) <= QUOTED_PATH else path[:QUOTED_PATH] + "..."


async def _metrics(scope: Scope, send: Send) -> None:
    import anyio.to_thread

    payload, content_type = await anyio.to_thread.run_sync(exposition)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    body = b"" if scope.get("method") == "HEAD" else payload
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# ----------------------------------------------------------------------- logging

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
MAX_LOGGED = 300  # characters of a client error's description in the log


class ClientErrorLogs(logging.Filter):
    """Log BentoML's 4xx answers at INFO in one line; 5xx stay at ERROR with the traceback.

    BentoML 1.4 answers an invalid request body (a pydantic ValidationError, 400) or a
    BentoMLException with a 4xx code through `log_exception()`, which logs at ERROR with the
    full traceback on the `bentoml._internal.server.http_app` logger: ~150 KB of log for a
    run of bad requests, and a client's mistake paged as a server error. This filter, on
    that logger, rewrites such records to INFO without the traceback (status and the first
    problem kept); records of any other exception pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = _client_status(exc)
        if exc is None or status is None:
            return True
        where = record.getMessage().replace("Exception on", "Client error on", 1)
        record.msg = "%s: %d %s"
        record.args = (where, status, _describe(exc))
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _client_status(exc: BaseException | None) -> int | None:
    """The 4xx status BentoML answers for this exception, None for anything else."""
    if exc is None:
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    code = getattr(exc, "error_code", None)  # bentoml.exceptions.BentoMLException
    value = getattr(code, "value", None)
    return value if isinstance(value, int) and 400 <= value < 500 else None


def _describe(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_context=False, include_input=False, include_url=False)
        first = errors[0]["msg"] if errors else ""
        text = f"{exc.error_count()} validation error(s), first: {first}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_LOGGED else text[:MAX_LOGGED] + "..."


def quiet_client_errors() -> None:
    """Install ClientErrorLogs (once) and show this package's INFO lines in the server log
    (BentoML sets the root logger to WARNING)."""
    target = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, ClientErrorLogs) for f in target.filters):
        target.addFilter(ClientErrorLogs())
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
