"""The service's own Prometheus series, next to BentoML's request metrics on /metrics.

- `mlops_predictions_total{class="3"}`: predictions served, per predicted class (a shift in this
  mix is the cheapest drift signal there is);
- `mlops_prediction_confidence`: histogram of the winning class's probability (a model growing
  unsure shows up here before accuracy can be measured).

prometheus_client is imported on first use, inside the worker: BentoML sets up its multiprocess
directory after importing the service module, and a client imported earlier would never write
to it (series would be missing from /metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class PredictionMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.predictions = Counter(
            "mlops_predictions", "Predictions served, by predicted class", ["class"]
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


@cache
def prediction_metrics() -> PredictionMetrics:
    """One set of series per process (registering a name twice is an error)."""
    return PredictionMetrics()
