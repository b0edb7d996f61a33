"""The prediction service (BentoML 1.4 new-style): /predict, /metadata, health and /metrics.

Which model: exactly the tag `mlops package` saved. A bento records it at build time
(`--arg model_tag=NAME:VERSION`, set by `mlops release build`); a dev server started in the
repository (`bentoml serve` at the root) derives it from artifacts/serving, as the package stage
did. The model is the ONNX export run by ONNX Runtime (serving/onnx_model.py): nothing is
unpickled and no training library or family code is imported. There is no "latest" fallback:
a missing model, or stored files that no longer hash to the tag's version, stop the server
with one message and the fix (serving/startup.py). Once loaded, the server logs one line: the
tag, the family, the input it accepts and its limits.

What /predict accepts comes from the model's own FeatureSpec (model.json, the served
descriptor): see serving/schemas.py. Whether it batches comes from the model's family
(`ModelFamily.batchable`, recorded in the served descriptor), unless `--arg
batching=true|false` says otherwise: BentoML then merges the instances of concurrent requests
into one call (adaptive batching) and splits the answers back, which pays off where one call has
a high fixed cost. A merged batch holds at least one whole request (config.py).

Capacity and shutdown: the ingress admits `max_concurrency` requests per worker and answers
503 with Retry-After beyond (serving/middleware.py). At SIGTERM the server stops accepting
connections and finishes the requests in progress; each is bounded by `timeout_s`, which
bounds the grace period.

One service, no separate model-runner service: in BentoML 1.4.39 the client between services
drops in-flight calls every 100 requests (benchmarks/README.md).

Limits (rows per request, body size, batching, concurrency) are template arguments: see
serving/config.py. The prediction log (off by default) is configured by environment
variables: see serving/predlog.py.
"""

# No `from __future__ import annotations`: BentoML reads the API signatures at import time.

import gc
import logging
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.validators import ContentType

from mlops_template.serving import config, onnx_model, predlog, schemas, startup, store
from mlops_template.serving.middleware import RequestLimits, quiet_client_errors
from mlops_template.signing import verify_model_signature

with startup.exit_on_user_error():
    ARGS = startup.service_args()
    MODEL_TAG = startup.served_tag(ARGS.model_tag)
    MODEL_PATH = startup.stored_model(MODEL_TAG).path
    startup.verify_files(MODEL_TAG, MODEL_PATH)
    verify_model_signature(Path(MODEL_PATH))  # when MLOPS_MODEL_PUBLIC_KEY/_SIGNER is set
    DESCRIPTOR = onnx_model.read_descriptor(MODEL_PATH)
    PREDICTION_LOG = predlog.from_env(DESCRIPTOR.spec, MODEL_TAG, ARGS.workers)
SPEC = DESCRIPTOR.spec
FAMILY = DESCRIPTOR.family
BATCHED = ARGS.batched(DESCRIPTOR.batchable)
Instances = schemas.instances_type(SPEC, ARGS.max_rows)
LIMITS = {
    "batched": BATCHED,
    "max_batch_size": ARGS.batch_size if BATCHED else None,
    "max_latency_ms": ARGS.batch_latency_ms if BATCHED else None,
    "max_body_bytes": ARGS.max_body_bytes,
    "max_concurrency": ARGS.max_concurrency,
    "timeout_s": ARGS.timeout_s,
    "workers": ARGS.workers,
    "prediction_log": str(PREDICTION_LOG.settings.path) if PREDICTION_LOG else None,
}
logger = logging.getLogger("mlops_template.serving")
# The declared content type spares BentoML deriving it from the answer's JSON schema on every
# response (a tenth of the service's CPU at 32 clients, benchmarks/README.md).
JsonPredictions = Annotated[list[schemas.Prediction], ContentType("application/json")]


# BentoML's HTTP metrics are off: they label requests with the raw path (one series per unknown
# URL). The ingress middleware serves /metrics with bounded series instead (serving/metrics.py).
@bentoml.service(
    traffic={"timeout": ARGS.timeout_s}, workers=ARGS.workers, metrics={"enabled": False}
)
class Classifier:
    """Validates requests, runs the model, answers with labels, probabilities and the tag."""

    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.provenance = store.read_provenance(self.bento_model.path)
        self.model = onnx_model.OnnxModel.load(self.bento_model.path)
        self.classes = self.model.classes
        # Move everything loaded so far (model, libraries) out of the collector's reach: full
        # collections over it stalled every request in flight (benchmarks/README.md).
        gc.collect()
        gc.freeze()
        logger.info(startup.startup_line(MODEL_TAG, FAMILY, SPEC, ARGS.max_rows, LIMITS))

    @bentoml.api(
        batchable=BATCHED,
        max_batch_size=ARGS.batch_size,
        max_latency_ms=ARGS.batch_latency_ms,
    )
    def predict(self, instances: Instances) -> JsonPredictions:
        """Classify 1..max_rows instances: each a row of the model's columns, in column order
        or by name (/metadata lists the columns and what each accepts)."""
        proba = self.model.predict_proba(schemas.to_frame(SPEC, instances))
        return schemas.predictions(proba, self.classes, MODEL_TAG)

    @bentoml.api
    def metadata(self) -> dict:
        """The served model: project, tag, family, lineage, params, metrics, gate verdict, and
        the input it accepts."""
        serving = {k: v for k, v in LIMITS.items() if k != "prediction_log"}
        return schemas.metadata_payload(MODEL_TAG, self.provenance, SPEC, ARGS.max_rows, serving)


quiet_client_errors()  # BentoML's 4xx: one INFO line, no traceback (middleware.ClientErrorLogs)
# Counts predictions on the answers clients receive, not in predict(): see serving/metrics.py.
Classifier.add_asgi_middleware(
    RequestLimits,
    max_body_bytes=ARGS.max_body_bytes,
    api_routes=[api.route for api in Classifier.apis.values()],
    model_version=MODEL_TAG,
    max_concurrency=ARGS.max_concurrency,
    retry_after_s=config.RETRY_AFTER_S,
    prediction_log=PREDICTION_LOG,
)
