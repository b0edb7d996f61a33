"""The prediction service (BentoML 1.4 new-style): /predict, /metadata, health and /metrics.

Which model: exactly the tag `mlops package` saved. A bento records it at build time
(`--arg model_tag=NAME:VERSION`, set by `mlops release build`); a dev server started in the
repository (`bentoml serve` at the root) derives it from artifacts/model, as the package stage
did. There is no "latest" fallback: a missing model stops the server with the fix.

For a keras model /predict is batchable: BentoML merges the instances of concurrent requests into
one batch (adaptive batching) and splits the answers back, which is where a neural network gains
(one row costs ~3 ms, a row inside a batch of 256 ~0.03 ms here). scikit-learn models answer
each request directly. TensorFlow is imported only for a keras model (model_io).

One service, no separate model-runner service: in BentoML 1.4.39 the client between services
drops in-flight calls every 100 requests (it refreshes its session under them), which surfaced
as 500s under load.

Limits (rows per request, body size, batching) are template arguments: see serving/config.py.
"""

# No `from __future__ import annotations`: BentoML reads the API signatures at import time.

import gc

import bentoml

from mlops_template.model_io import load_model
from mlops_template.serving import config, schemas, store
from mlops_template.serving.metrics import prediction_metrics
from mlops_template.serving.middleware import RequestLimits

ARGS = bentoml.use_arguments(config.ServiceArgs)
MODEL_TAG = store.served_model_tag(ARGS.model_tag)
PROVENANCE = store.read_provenance(store.get_stored_model(MODEL_TAG).path)
FAMILY = PROVENANCE["model"]["family"]
BATCHED = FAMILY in config.BATCHED_FAMILIES and ARGS.batching
SPEC = schemas.InputSpec.from_provenance(PROVENANCE, ARGS.max_rows)
Instances = schemas.instances_type(SPEC)


@bentoml.service(traffic={"timeout": ARGS.timeout_s}, workers=ARGS.workers)
class Classifier:
    """Validates requests, runs the model, answers with labels, probabilities and the tag."""

    bento_model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.provenance = store.read_provenance(self.bento_model.path)
        self.classes = list(self.provenance["model"]["classes"])
        self.model = load_model(self.bento_model.path)
        self.metrics = prediction_metrics()
        # Move everything loaded so far (model, libraries) out of the collector's reach: full
        # collections over it stalled every request in flight (p99 at 32 clients 387 -> 200 ms
        # for sklearn, 430 -> 185 ms for keras, benchmarks/serving.py).
        gc.collect()
        gc.freeze()

    @bentoml.api(
        batchable=BATCHED,
        max_batch_size=ARGS.batch_max_size,
        max_latency_ms=ARGS.batch_max_latency_ms,
    )
    def predict(self, instances: Instances) -> list[schemas.Prediction]:
        """Classify 1..max_rows instances (64 values 0..16 each, or 8 rows of 8)."""
        proba = self.model.predict_proba(schemas.to_array(instances))
        answers = schemas.predictions(proba, self.classes, MODEL_TAG)
        self.metrics.observe([a.label for a in answers], [a.confidence for a in answers])
        return answers

    @bentoml.api
    def metadata(self) -> dict:
        """The served model: tag, family, lineage, params, metrics, gate verdict, input spec."""
        serving = {
            "batched": BATCHED,
            "max_batch_size": ARGS.batch_max_size if BATCHED else None,
            "max_latency_ms": ARGS.batch_max_latency_ms if BATCHED else None,
            "max_body_bytes": ARGS.max_body_bytes,
        }
        return schemas.metadata_payload(MODEL_TAG, self.provenance, SPEC, serving)


Classifier.add_asgi_middleware(RequestLimits, max_body_bytes=ARGS.max_body_bytes)
