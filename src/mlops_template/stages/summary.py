"""`mlops summary`: how `make run` ends: key metrics, the gate verdict, where things are."""

from __future__ import annotations

import click

from mlops_template.metrics_io import load_metrics
from mlops_template.paths import BENTOMODEL_FILE as BENTOMODEL
from mlops_template.paths import GATE_FILE as VERDICT
from mlops_template.paths import METRICS_FILES, MODEL_DIR
from mlops_template.records import GateVerdict

KEY_METRICS = ("accuracy", "f1_macro", "log_loss", "model_size_bytes", "latency.single_p95_ms")


def summary_lines() -> list[str]:
    metrics = load_metrics()
    lines = ["", "== summary =="]
    if not metrics:
        return [
            *lines,
            "no metrics yet: the pipeline stopped before evaluate (see the error above)",
        ]
    for name in KEY_METRICS:
        if name in metrics:
            lines.append(f"  {name:<24} {metrics[name]}")
    if VERDICT.exists():
        verdict = GateVerdict.read(VERDICT)
        lines.append(
            f"gate: {'ACCEPTED' if verdict.accepted else 'NOT ACCEPTED'} - {verdict.summary}"
        )
        lines += [f"  - {reason}" for reason in verdict.reasons]
    else:
        lines.append("gate: not run yet")
    lines.append("outputs:")
    lines.append(f"  metrics        {', '.join(METRICS_FILES)} (`dvc metrics show`)")
    lines.append("  plots          plots/, dvclive/ (`dvc plots show`)")
    lines.append(f"  model          {MODEL_DIR}/")
    lines.append(f"  verdict        {VERDICT}")
    if BENTOMODEL.exists():
        lines.append(f"  packaged model {BENTOMODEL} (BentoML store: .bentoml/)")
    else:
        lines.append("  packaged model none (only an accepted model is packaged)")
    return lines


@click.command("summary", help=__doc__)
def summary() -> None:
    print("\n".join(summary_lines()))
