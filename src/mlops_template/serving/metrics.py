"""The service's Prometheus series: every label has a bounded set of values.

- `mlops_requests_total{endpoint="/predict", code="200"}`: answers, per route and status. The
  endpoint is one of the service's own routes, or "unknown" for every other path (answered 404
  at the ingress), so no request can add a series;
- `mlops_request_duration_seconds{endpoint, model_version}`: latency of the API routes, from the
  request reaching the app to the last byte of the answer;
- `mlops_rows_per_request{model_version}`: instances per answered /predict request;
- `mlops_predictions_total{class="3"}`: predictions answered, per predicted class (a shift in
  this mix is the cheapest drift signal there is);
- `mlops_prediction_confidence`: histogram of the winning class's probability (a model growing
  unsure shows up here before accuracy can be measured).

The last three are observed on the answer the client receives (`observe_answer`, called by the
ingress middleware on a 200 from /predict), not inside the API method: with adaptive batching
the method computes merged batches, and a request cancelled at its timeout (503/504) had its
rows computed but never answered; counted in the method, they inflated the counts.

BentoML's own HTTP metrics are switched off (serving/service.py): they label each request with
its raw path, so every unknown URL added series (300 unique 404 paths grew /metrics to 7 MB).

prometheus_client is imported on first use, inside the worker: BentoML sets up its multiprocess
directory after importing the service module, and a client imported earlier would never write
to it (series would be missing from /metrics).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache
from typing import Any

CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# Up to the 30 s request timeout; the fine end resolves single-row answers (a few ms).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Up to the default limit of 1000 rows per request.
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
UNKNOWN_ENDPOINT = "unknown"


class PredictionMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "mlops_requests", "HTTP answers, by route and status", ["endpoint", "code"]
        )
        self.latency = Histogram(
            "mlops_request_duration_seconds",
            "Time from request to the last byte of the answer, API routes",
            ["endpoint", "model_version"],
            buckets=LATENCY_BUCKETS,
        )
        self.rows = Histogram(
            "mlops_rows_per_request",
            "Instances per answered prediction request",
            ["model_version"],
            buckets=ROW_BUCKETS,
        )
        self.predictions = Counter(
            "mlops_predictions", "Predictions answered, by predicted class", ["class"]
        )
        self.confidence = Histogram(
            "mlops_prediction_confidence",
            "Probability of the predicted class",
            buckets=CONFIDENCE_BUCKETS,
        )

    def observe(self, labels: Sequence[Any], confidences: Sequence[float]) -> None:
        for label, confidence in zip(labels, confidences, strict=True):
            self.predictions.labels(str(label)).inc()
            self.confidence.observe(float(confidence))

    def observe_answer(self, body: bytes, model_version: str) -> None:
        """Count the predictions of one answered /predict request (its JSON body)."""
        answers = json.loads(body)
        self.rows.labels(model_version).observe(len(answers))
        self.observe([a["label"] for a in answers], [a["confidence"] for a in answers])

    def observe_request(
        self, endpoint: str, code: int | str, seconds: float | None, model_version: str
    ) -> None:
        self.requests.labels(endpoint, str(code)).inc()
        if seconds is not None:
            self.latency.labels(endpoint, model_version).observe(seconds)


@cache
def prediction_metrics() -> PredictionMetrics:
    """One set of series per process (registering a name twice is an error)."""
    return PredictionMetrics()


def exposition() -> tuple[bytes, str]:
    """The /metrics page: every worker's series (multiprocess mode, as BentoML runs workers)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
