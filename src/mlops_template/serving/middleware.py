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
  that is not JSON gets 415. The accepted body is then handed on unchanged;
- capacity: with `max_concurrency`, a request to an API route that arrives (body read) while
  that many are in progress in this worker gets 503 at once, and any 503 BentoML answers (its
  batching queue shedding a request that waited too long) is rewritten the same way: a JSON
  error saying the server is at capacity and a `Retry-After` header. A client is never told
  "unexpected error" for overload.

Every refusal is a JSON `{"error": ...}` saying what is wrong and how to fix it, logged at INFO
(no traceback), and answered with `Connection: close` (the rest of the stream is not trusted);
a 503 keeps the connection (the request was read whole) and is logged as a WARNING at most
every OVERLOAD_LOG_S seconds, with the count.

An answered /predict (200, sent whole) is counted in the metrics and, when the prediction log
is on (serving/predlog.py), handed to it after the answer is sent.

`quiet_client_errors()` does the same for BentoML's own 4xx answers (see its docstring).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from mlops_template.serving.metrics import UNKNOWN_ENDPOINT, exposition, prediction_metrics

if TYPE_CHECKING:
    from mlops_template.serving.predlog import PredictionLog

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
OVERLOAD_LOG_S = 10.0  # at most one overload warning per this many seconds

logger = logging.getLogger("mlops_template.serving")


class RequestLimits:
    """ASGI middleware: request hygiene (400/404/413/414/415/431), /metrics, answer metrics.

    `api_routes` are the service's POST routes; with it, any other path outside
    SYSTEM_ROUTES and STATIC_PREFIX gets 404. Without it (None) every path passes, and nothing
    is observed: the middleware only checks requests. `max_concurrency` (None: no limit) is
    the number of API requests in progress past which a new one gets 503 with `Retry-After:
    retry_after_s`.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        api_routes: Iterable[str] | None = None,
        model_version: str = "",
        max_url_bytes: int = MAX_URL_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_concurrency: int | None = None,
        retry_after_s: int = 1,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.api_routes = None if api_routes is None else frozenset(api_routes)
        self.routes = None if api_routes is None else frozenset(SYSTEM_ROUTES) | self.api_routes
        self.model_version = model_version
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_concurrency = max_concurrency
        self.retry_after_s = retry_after_s
        self.prediction_log = prediction_log
        self.in_progress = 0
        self._overloaded = 0  # 503s not yet reported in the log
        self._overload_logged = float("-inf")

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
            await self._checked(scope, receive, observed.send, endpoint, observed)
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
                answer = b"".join(observed.body)
                metrics.observe_answer(answer, self.model_version)
                if self.prediction_log is not None and observed.request_body is not None:
                    self.prediction_log.submit(observed.request_body, answer)
        except Exception:
            logger.exception("could not record the metrics of a %s answer", endpoint)

    async def _checked(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: str,
        observed: _Observed | None = None,
    ) -> None:
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
        if self.api_routes is None or endpoint not in self.api_routes:
            await self.app(scope, _replay(body, receive), send)
            return
        if observed is not None:
            observed.request_body = body
        if self.max_concurrency is not None and self.in_progress >= self.max_concurrency:
            await self._at_capacity(send, f"{self.in_progress} requests are in progress")
            return
        admitted = _Admitted(self, send)
        try:
            await self.app(scope, _replay(body, receive), admitted.send)
        finally:
            admitted.release()

    async def _at_capacity(self, send: Send, why: str) -> None:
        """503 with Retry-After: the request was fine, the server is full; try again soon."""
        message = (
            f"the server is at capacity ({why}): retry after {self.retry_after_s} s, or send "
            "fewer requests at a time"
        )
        self._log_overload()
        await _reply(
            send,
            503,
            message,
            close=False,
            extra=[(b"retry-after", str(self.retry_after_s).encode())],
        )

    def _log_overload(self) -> None:
        self._overloaded += 1
        now = time.monotonic()
        if now - self._overload_logged >= OVERLOAD_LOG_S:
            logger.warning(
                "at capacity: %d request(s) answered 503 with Retry-After since the last "
                "warning (max_concurrency %s per worker)",
                self._overloaded,
                self.max_concurrency,
            )
            self._overloaded, self._overload_logged = 0, now

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
    """Wraps send(): the status, and the body of a /predict answer, as the client gets them
    (and the request body, for the prediction log)."""

    def __init__(self, send: Send, keep_body: bool) -> None:
        self._send = send
        self.keep_body = keep_body
        self.status: int | None = None
        self.body: list[bytes] = []
        self.request_body: bytes | None = None
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and self.keep_body and self.status == 200:
            self.body.append(message.get("body", b""))
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True  # sent: a failure after this point is not the client's


class _Admitted:
    """An admitted API request: counted in progress until its answer is sent whole (not until
    the app returns: BentoML runs clean-up tasks after the answer, while the client may already
    send its next request). Its send() turns a 503 from BentoML (the batching queue shed the
    request) into the ingress's own 503 with Retry-After."""

    def __init__(self, limits: RequestLimits, send: Send) -> None:
        self.limits = limits
        self._send = send
        self.replaced = False
        self.counted = True
        limits.in_progress += 1

    def release(self) -> None:
        if self.counted:
            self.counted = False
            self.limits.in_progress -= 1

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and int(message["status"]) == 503:
            self.replaced = True
            await self.limits._at_capacity(self._send, "the request waited too long in the queue")
            self.release()
            return
        if self.replaced:
            return  # BentoML's own 503 body ("unexpected error"): replaced above
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.release()


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


async def _reply(
    send: Send,
    status: int,
    message: str,
    close: bool = True,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *([(b"connection", b"close")] if close else []),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
    problem kept). Overload (ServiceUnavailable, 503: the batching queue shed a request) stays
    at ERROR in one line: its traceback says nothing, and a burst of them would flood the log.
    Records of any other exception pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        status = _client_status(exc)
        if status is not None:
            where = record.getMessage().replace("Exception on", "Client error on", 1)
            record.levelno, record.levelname = logging.INFO, "INFO"
        elif _error_code(exc) == 503:
            where, status = record.getMessage().replace("Exception on", "Overloaded on", 1), 503
        else:
            return True
        record.msg = "%s: %d %s"
        record.args = (where, status, _describe(exc))
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _client_status(exc: BaseException | None) -> int | None:
    """The 4xx status BentoML answers for this exception, None for anything else."""
    if exc is None:
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    value = _error_code(exc)
    return value if value is not None and 400 <= value < 500 else None


def _error_code(exc: BaseException) -> int | None:
    """The HTTP status of a bentoml.exceptions.BentoMLException, None for anything else."""
    value = getattr(getattr(exc, "error_code", None), "value", None)
    return value if isinstance(value, int) else None


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
