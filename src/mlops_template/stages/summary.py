"""`mlops summary`: how `make run` ends: key metrics, the gate verdict, where things are.

After a failed `dvc repro` (`--after-failure`), DVC is asked which stages are not up to date:
their outputs are left from an earlier run, and the summary says so instead of showing them as
this run's (an old "ACCEPTED" verdict or packaged model).
"""

from __future__ import annotations

import json
import subprocess

import click

from mlops_template.metrics_io import load_metrics
from mlops_template.paths import BENTOMODEL_FILE as BENTOMODEL
from mlops_template.paths import GATE_FILE as VERDICT
from mlops_template.paths import METRICS_FILES, MODEL_DIR
from mlops_template.records import GateVerdict

KEY_METRICS = ("accuracy", "f1_macro", "log_loss", "model_size_bytes", "latency.single_p95_ms")


def stale_stages() -> set[str] | None:
    """The stages whose outputs do not match dvc.lock (None when DVC cannot tell)."""
    try:
        done = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
        return set(json.loads(done.stdout or "{}")) if done.returncode == 0 else None
    except (OSError, json.JSONDecodeError):
        return None


def summary_lines(stale: set[str] | None = None) -> list[str]:
    """`stale`: stages not run to completion for the current inputs (after a failure)."""
    stale = stale or set()
    lines = ["", "== summary =="]
    if stale:
        lines.append(
            "the pipeline stopped (see the error above); not up to date: "
            + ", ".join(sorted(stale))
        )
    metrics = load_metrics()
    if not metrics or "evaluate" in stale:
        return [
            *lines,
            "no metrics for the current model: the pipeline stopped before evaluate finished",
        ]
    for name in KEY_METRICS:
        if name in metrics:
            lines.append(f"  {name:<24} {metrics[name]}")
    if "gate" in stale:
        lines.append("gate: not run for the current metrics")
    elif VERDICT.exists():
        verdict = GateVerdict.read(VERDICT)
        lines.append(
            f"gate (value bounds): {'ACCEPTED' if verdict.accepted else 'NOT ACCEPTED'}"
            f" - {verdict.summary}"
        )
        lines += [f"  - {reason}" for reason in verdict.reasons]
    else:
        lines.append("gate: not run yet")
    lines.append("outputs:")
    lines.append(f"  metrics        {', '.join(METRICS_FILES)} (`dvc metrics show`)")
    lines.append("  plots          plots/, dvclive/ (`dvc plots show`)")
    lines.append(f"  model          {MODEL_DIR}/")
    lines.append(f"  verdict        {VERDICT}")
    if "package" in stale:
        lines.append("  packaged model none for this model (only an accepted model is packaged)")
    elif BENTOMODEL.exists():
        lines.append(f"  packaged model {BENTOMODEL} (BentoML store: .bentoml/)")
    else:
        lines.append("  packaged model none (only an accepted model is packaged)")
    return lines


@click.command("summary", help=__doc__)
@click.option(
    "--after-failure",
    is_flag=True,
    help="the pipeline failed: ask DVC which outputs are left from an earlier run",
)
def summary(after_failure: bool) -> None:
    print("\n".join(summary_lines(stale_stages() if after_failure else None)))
