"""`mlops evaluate`: quality metrics (deterministic) and serving cost (measured) on the test split.

Quality goes to metrics/quality.json, latency to metrics/serving.json: a rerun gives byte-identical
quality metrics, while latency is a measurement and varies from run to run.
"""

from __future__ import annotations

import math
import time
from typing import Any

import click
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

from mlops_template.files import write_json, write_text_atomic
from mlops_template.model_io import LoadedModel, load_model
from mlops_template.params import Params, load_params
from mlops_template.paths import MODEL_DIR, PER_CLASS_F1, PREDICTIONS, QUALITY, SERVING, TEST_CSV
from mlops_template.stages.train import features_and_labels
from mlops_template.table import read_table

ROUND_TO = 6  # rounding keeps float noise in the last bits out of the committed metrics


def quality_metrics(
    proba: np.ndarray, y: np.ndarray, classes: list[Any], size: int
) -> dict[str, Any]:
    pred = proba.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, labels=labels, average="macro", zero_division=0
    )
    per_class = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y, pred)), ROUND_TO),
        "precision_macro": round(float(precision), ROUND_TO),
        "recall_macro": round(float(recall), ROUND_TO),
        "f1_macro": round(float(f1), ROUND_TO),
        "log_loss": round(float(log_loss(y, np.clip(proba, 1e-15, 1), labels=labels)), ROUND_TO),
        "f1_per_class": {
            str(c): round(float(v), ROUND_TO) for c, v in zip(classes, per_class, strict=True)
        },
        "model_size_bytes": size,
    }


def _percentile_ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 4)


def latency(model: LoadedModel, X: pd.DataFrame, repeats: int, batch_size: int) -> dict[str, float]:
    """p50/p95 of single-row calls and per-row cost of batched calls, after a warm-up."""
    batch = X.iloc[np.arange(batch_size) % len(X)]
    model.predict_proba(batch)
    single = []
    for i in range(repeats):
        row = X.iloc[[i % len(X)]]
        start = time.perf_counter()
        model.predict_proba(row)
        single.append(time.perf_counter() - start)
    batched = []
    for _ in range(max(5, repeats // 10)):
        start = time.perf_counter()
        model.predict_proba(batch)
        batched.append((time.perf_counter() - start) / batch_size)
    return {
        "single_p50_ms": _percentile_ms(single, 50),
        "single_p95_ms": _percentile_ms(single, 95),
        "batch_p50_ms_per_row": _percentile_ms(batched, 50),
        "batch_p95_ms_per_row": _percentile_ms(batched, 95),
    }


def evaluate(params: Params) -> dict[str, Any]:
    model = load_model(MODEL_DIR)
    X, y = features_and_labels(read_table(TEST_CSV, params), model.spec)
    proba = model.predict_proba(X)
    quality = quality_metrics(proba, y, model.classes, model.size_bytes)
    bad = [k for k, v in quality.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        print(f"warning: non-finite metrics {bad}: the gate will reject this model")
    serving = {
        "latency": latency(
            model, X, params.evaluate.latency_repeats, params.evaluate.latency_batch_size
        )
    }
    pred = proba.argmax(axis=1)
    rows = ["actual,predicted"] + [
        f"{model.classes[a]},{model.classes[p]}" for a, p in zip(y, pred, strict=True)
    ]
    write_text_atomic(PREDICTIONS, "\n".join(rows) + "\n")
    f1_rows = ["class,f1"] + [f"{c},{v}" for c, v in quality["f1_per_class"].items()]
    write_text_atomic(PER_CLASS_F1, "\n".join(f1_rows) + "\n")
    write_json(QUALITY, quality)
    write_json(SERVING, serving)
    return {**quality, **serving}


@click.command("evaluate", help=__doc__)
def evaluate_command() -> None:
    m = evaluate(load_params())
    lat = m["latency"]
    print(
        f"accuracy {m['accuracy']:.4f}  f1_macro {m['f1_macro']:.4f}  "
        f"log_loss {m['log_loss']:.4f}  "
        f"size {m['model_size_bytes']} B  p50 {lat['single_p50_ms']} ms/row -> {QUALITY}, {SERVING}"
    )
