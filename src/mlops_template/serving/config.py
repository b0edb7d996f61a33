"""The service's knobs, as BentoML template arguments (`--arg key=value`).

`mlops release build` records them in the bento (`bentoml build --arg ...`), so a bento always
serves the model it was built for with the limits it was built with; a dev server takes them
from `bentoml serve --arg ...`. Unknown keys are rejected.

Where the defaults come from (benchmarks/README.md has the measurements):
- max_rows / max_body_bytes: 1000 rows of 64 floats written with full precision (~18 bytes
  each) is ~1.2 MB of JSON, so a 2 MiB limit admits every valid request while stopping a
  runaway body before it is parsed (BentoML has no limit of its own).
- batch_max_size: BentoML splits a request larger than the batch size into chunks that are
  computed one after another, each waiting its turn in the queue; with 64-row batches a
  1000-row request was cancelled at the latency limit (503) every time. A batch therefore
  holds at least one whole request (default: max_rows).
- batch_max_latency_ms: how long a request may wait in the batching queue before BentoML sheds
  it (503). The ingress admits at most max_concurrency requests per worker, so the queue is
  bounded; the limit (default: two thirds of the timeout) sits below the request timeout so
  that an overloaded server answers 503 with Retry-After rather than 504.
- max_concurrency: requests in progress (admitted, not yet answered) per worker past which the
  ingress answers 503 with Retry-After at once: the capacity the defaults document, 32
  concurrent requests of up to 1000 rows each. At that bound a worker holds at most 32,000
  rows of work, a few seconds at the measured 4,000-12,000 rows/s, well inside the timeout.
- timeout_s: a request still unanswered after it gets 504 (BentoML). It also bounds the grace
  period at shutdown: a request in progress at SIGTERM completes or times out within it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ROWS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_CONCURRENCY = 32
TIMEOUT_S = 30.0
BATCH_LATENCY_SHARE = 2 / 3  # of the timeout: the default batching queue limit
RETRY_AFTER_S = 1


class ServiceArgs(BaseModel):
    """Template arguments of the service (`bentoml.use_arguments`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_tag: str | None = Field(
        default=None,
        description="exact NAME:VERSION to serve; default: the packaged model of this checkout",
    )
    max_rows: int = Field(default=MAX_ROWS, ge=1, description="rows per /predict request")
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, description="request body limit")
    batching: bool | None = Field(
        default=None,
        description="adaptive batching: on or off; default: on for families that declare "
        "`batchable`",
    )
    batch_max_size: int | None = Field(
        default=None, ge=2, description="rows per merged batch, at least max_rows (default)"
    )
    batch_max_latency_ms: int | None = Field(
        default=None, ge=1, description="queue wait before 503; default: 2/3 of timeout_s"
    )
    max_concurrency: int = Field(
        default=MAX_CONCURRENCY, ge=1, description="requests in progress per worker before 503"
    )
    timeout_s: float = Field(default=TIMEOUT_S, gt=0, description="per-request timeout")
    workers: int = Field(default=1, ge=1, description="front-end worker processes")

    @model_validator(mode="after")
    def _whole_requests_per_batch(self) -> ServiceArgs:
        if self.batch_max_size is not None and self.batch_max_size < self.max_rows:
            raise ValueError(
                f"batch_max_size {self.batch_max_size} is below max_rows {self.max_rows}: a "
                "larger request would be split into batches computed one after another and "
                "time out; raise batch_max_size or lower max_rows"
            )
        if self.batch_max_latency_ms is not None and self.batch_max_latency_ms >= (
            self.timeout_s * 1000
        ):
            raise ValueError(
                f"batch_max_latency_ms {self.batch_max_latency_ms} must be below timeout_s "
                f"{self.timeout_s:g} s, so that overload is answered 503 before the timeout"
            )
        return self

    @property
    def batch_size(self) -> int:
        """Rows per merged batch: whole requests always fit."""
        return self.batch_max_size if self.batch_max_size is not None else self.max_rows

    @property
    def batch_latency_ms(self) -> int:
        """The batching queue limit: below the timeout, so overload is a 503, not a 504."""
        if self.batch_max_latency_ms is not None:
            return self.batch_max_latency_ms
        return max(1, int(self.timeout_s * 1000 * BATCH_LATENCY_SHARE))

    def batched(self, family_batchable: bool) -> bool:
        return family_batchable if self.batching is None else self.batching
