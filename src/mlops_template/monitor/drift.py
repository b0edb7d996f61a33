"""Drift of a prediction-log window against the training split, judged by Evidently.

Every feature column gets Evidently's own default drift test (chosen by column type and size:
K-S or chi-square p-values up to 1,000 rows, Wasserstein or Jensen-Shannon distances above),
and so does the prediction, compared with the training labels. The window drifts when the
prediction drifts or when at least `monitor.drift_share` of the feature columns drift
(Evidently's dataset-drift rule); every drifted column is listed either way.

Evidently takes 12-19 s to import, so it is imported here, inside `evaluate`, never by the CLI.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_template.files import write_json, write_text_atomic
from mlops_template.records import ColumnDrift, DriftResult

if TYPE_CHECKING:
    import pandas as pd

    from mlops_template.contract import FeatureSpec
    from mlops_template.monitor.window import Window

PREDICTION = "prediction"


def reference_frame(spec: FeatureSpec, train: pd.DataFrame) -> pd.DataFrame:
    """The training split as Evidently compares it: features, then the labels as `prediction`."""
    frame = spec.frame(train)
    frame[PREDICTION] = train[spec.target].astype(str).to_numpy()
    return frame


def current_frame(spec: FeatureSpec, window: Window) -> pd.DataFrame:
    import pandas as pd

    frame = spec.frame(pd.DataFrame([r.features for r in window.records]))
    frame[PREDICTION] = [str(r.prediction) for r in window.records]
    return frame


def evaluate(
    spec: FeatureSpec,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift_share: float,
    html: Path,
    evidently_json: Path,
) -> tuple[list[ColumnDrift], float, bool]:
    """Run Evidently; write its HTML and JSON reports; (columns, drifted share, drifted)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry
    with warnings.catch_warnings():  # its dependencies' deprecations, numpy's 0/0 on constants
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        numeric = [c.name for c in spec.columns if c.kind == "numeric"]
        categorical = [c.name for c in spec.columns if c.kind != "numeric"] + [PREDICTION]
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
        html_text = snapshot.get_html_str(as_iframe=False)
    columns = _columns(snapshot.dict(), spec)
    html.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(html, html_text)
    write_text_atomic(evidently_json, snapshot.json())
    features = [c for c in columns if c.kind == "feature"]
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    prediction = any(c.drifted for c in columns if c.kind == "prediction")
    return columns, share, prediction or share >= drift_share


def _columns(report: dict[str, Any], spec: FeatureSpec) -> list[ColumnDrift]:
    """Each column's ValueDrift metric joined with its drift test (FAIL: drifted)."""
    failed = {
        test["metric_config"]["metric_id"]: test["status"] == "FAIL"
        for test in report["tests"]
        if test.get("id") == "drift"
    }
    found = {}
    for metric in report["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        name = config["column"]
        found[name] = ColumnDrift(
            column=name,
            kind="prediction" if name == PREDICTION else "feature",
            method=config["method"],
            statistic=float(metric["value"]),
            threshold=float(config["threshold"]),
            drifted=failed[metric["id"]],
        )
    order = [*spec.names, PREDICTION]
    return [found[name] for name in order if name in found]


def result(
    window: Window,
    reference_rows: int,
    drift_share: float,
    columns: list[ColumnDrift],
    share: float,
    drifted: bool,
) -> DriftResult:
    return DriftResult(
        drifted=drifted,
        window_start=window.start.isoformat().replace("+00:00", "Z"),
        window_end=window.end.isoformat().replace("+00:00", "Z"),
        window_records=len(window.records),
        logged_records=window.logged,
        models=window.models,
        reference_rows=reference_rows,
        drift_share=drift_share,
        drifted_share=round(share, 6),
        columns=columns,
    )


def write_result(path: Path, drift: DriftResult) -> None:
    write_json(path, drift.to_json(), strict=True)
