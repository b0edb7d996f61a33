"""Markdown for people: the drift check's job summary, and the drift issue's body and comments.

Model tags come from the prediction log, so every value goes through `md_escape` (no links,
mentions or HTML); column names come from params.yaml and are escaped too.
"""

from __future__ import annotations

from mlops_template.records import ColumnDrift, DriftResult
from mlops_template.report.render import md_escape

NEXT_STEPS = (
    "**Next steps**\n\n"
    "1. **Is it real?** Open the run's Evidently report (artifact `drift-report`). If the tests "
    "are too sensitive for your traffic, tune `monitor` in `params.yaml` (window size, "
    "`drift_share`) and commit it.\n"
    "2. **Roll back** if a release caused it: run the Deploy workflow by hand (Actions → "
    "Deploy → Run workflow) to put the previous production version back, or `mlops rollback`.\n"
    "3. **Relabel and retrain** when the world changed: label a sample of recent production "
    "inputs, add them to `data/` (`dvc add data`), and open a pull request; the pipeline "
    "retrains and gates the new model."
)


def _number(value: float) -> str:
    return f"{value:.3e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def column_table(columns: list[ColumnDrift]) -> str:
    rows = [
        "| column | kind | test | statistic | threshold | drifted |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for c in columns:
        rows.append(
            f"| {md_escape(c.column)} | {c.kind} | {md_escape(c.method)} | "
            f"{_number(c.statistic)} | {_number(c.threshold)} | "
            f"{'**yes**' if c.drifted else 'no'} |"
        )
    return "\n".join(rows)


def window_line(drift: DriftResult) -> str:
    models = ", ".join(md_escape(m, 80) for m in drift.models[:5]) or "none"
    return (
        f"{drift.window_records} predictions logged from {md_escape(drift.window_start)} to "
        f"{md_escape(drift.window_end)} (model {models}), against {drift.reference_rows} rows "
        "of the training split"
    )


def verdict_line(drift: DriftResult) -> str:
    names = [md_escape(c.column) for c in drift.drifted_columns]
    if drift.drifted:
        return f"**Drift detected** in {len(names)} column(s): {', '.join(names)}."
    if names:
        return (
            f"No drift by the rule (prediction steady, {drift.drifted_share:.0%} of feature "
            f"columns drifted, under `drift_share` {drift.drift_share:.0%}); columns that moved: "
            + ", ".join(names)
            + "."
        )
    return "No drift: every column passed its test."


def summary(drift: DriftResult) -> str:
    """The job summary: verdict, window, the drifted columns, then every column folded."""
    parts = ["## Model drift check", "", verdict_line(drift), "", window_line(drift) + ".", ""]
    if drift.drifted_columns:
        parts += [column_table(drift.drifted_columns), ""]
    parts += [
        f"<details><summary>All {len(drift.columns)} columns</summary>",
        "",
        column_table(drift.columns),
        "",
        "</details>",
        "",
    ]
    return "\n".join(parts)
