"""The service's knobs, as BentoML template arguments (`--arg key=value`).

`mlops release build` records them in the bento (`bentoml build --arg ...`), so a bento always
serves the model it was built for with the limits it was built with; a dev server takes them
from `bentoml serve --arg ...`. Unknown keys are rejected.

Where the defaults come from:
- max_rows / max_body_bytes: 1000 rows of 64 floats written with full precision (~18 bytes
  each) is ~1.2 MB of JSON, so a 2 MiB limit admits every valid request while stopping a
  runaway body before it is parsed (BentoML has no limit of its own).
- batch_max_size / batch_max_latency_ms (only for families that declare `batchable`: for the
  others the per-request cost is the HTTP handling, not the model): measured, see
  benchmarks/README.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024

BATCH_MAX_SIZE = 64
BATCH_MAX_LATENCY_MS = 1000


class ServiceArgs(BaseModel):
    """Template arguments of the service (`bentoml.use_arguments`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_tag: str | None = Field(
        default=None,
        description="exact NAME:VERSION to serve; default: the packaged model of this checkout",
    )
    max_rows: int = Field(default=MAX_ROWS, ge=1, description="rows per /predict request")
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, description="request body limit")
    batching: bool = Field(
        default=True, description="adaptive batching, for families that declare `batchable`"
    )
    batch_max_size: int = Field(default=BATCH_MAX_SIZE, ge=2)
    batch_max_latency_ms: int = Field(default=BATCH_MAX_LATENCY_MS, ge=1)
    timeout_s: float = Field(default=30, gt=0, description="per-request timeout")
    workers: int = Field(default=1, ge=1, description="front-end worker processes")
