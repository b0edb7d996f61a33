"""`mlops monitor drift` with Evidently, on the fork's synthetic task split by the real
`mlops prepare`: a window drawn from the test split does not drift; a window with named
columns shifted drifts in exactly those columns; a window whose predictions shift drifts in the
prediction alone. Slow: Evidently takes 12-19 s to import (one import for the module)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fork import CLASSES, FEATURES, TARGET
from helpers_monitor import prepare_here, records, split_project, split_test_rows, write_log

from mlops_template.cli import main
from mlops_template.monitor.drift import PREDICTION, DriftResult
from mlops_template.paths import DRIFT_EVIDENTLY, DRIFT_FILE, DRIFT_HTML, DRIFT_SUMMARY

pytestmark = pytest.mark.slow

SHIFTED = ["alcohol", "proline", "region"]  # 3 of the 9 feature columns


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitor-drift") / "fork"
    # The test split has 45 rows; 3 of 9 columns must count as drift (the default is half).
    split_project(root, monitor={"window": {"min_records": 40}, "drift_share": 0.3})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        prepare_here()
    return root


def check(project: Path, monkeypatch, capsys, frame, predictions=None, name="log"):
    monkeypatch.chdir(project)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    log = write_log(project / name, records(frame, predictions), files=2)
    code = main(["monitor", "drift", "--log", str(log)])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return code, DriftResult.read(DRIFT_FILE), out


def test_a_window_from_the_test_split_does_not_drift(project, monkeypatch, capsys):
    frame = window_rows(project, monkeypatch)
    code, drift, out = check(project, monkeypatch, capsys, frame)
    assert code == 0, out.out
    assert drift.drifted is False
    assert [c.column for c in drift.drifted_columns] == []
    assert [c.column for c in drift.columns] == [*FEATURES, PREDICTION]
    assert drift.window_records == len(frame) and drift.reference_rows == 135
    assert {c.method for c in drift.columns} >= {"K-S p_value", "chi-square p_value"}  # by size
    assert "No drift: every column passed its test." in DRIFT_SUMMARY.read_text()
    assert DRIFT_HTML.stat().st_size > 0 and json.loads(DRIFT_EVIDENTLY.read_text())["metrics"]


def test_shifted_columns_are_exactly_the_drifted_ones(project, monkeypatch, capsys, tmp_path):
    frame = window_rows(project, monkeypatch)
    frame["alcohol"] = frame["alcohol"] + 2.5  # above every class's mean, inside the schema
    frame["proline"] = frame["proline"] * 1.8
    frame["region"] = "island"
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.chdir(project)
    log = write_log(project / "shifted", records(frame), files=1)
    assert main(["monitor", "drift", "--log", str(log)]) == 1
    drift = DriftResult.read(DRIFT_FILE)
    assert drift.drifted is True
    assert [c.column for c in drift.drifted_columns] == SHIFTED
    assert drift.drifted_share == pytest.approx(3 / 9, abs=1e-6)
    for column in drift.drifted_columns:  # the statistic is on the drifted side of its bound
        assert column.statistic < column.threshold  # p-values at this size
    text = summary.read_text()
    assert "**Drift detected** in 3 column(s): alcohol, proline, region." in text
    assert text == DRIFT_SUMMARY.read_text() + "\n"
    assert "drifted columns: alcohol, proline, region" in capsys.readouterr().out


def test_predictions_that_shift_drift_the_prediction_alone(project, monkeypatch, capsys):
    frame = window_rows(project, monkeypatch)
    code, drift, out = check(
        project, monkeypatch, capsys, frame, predictions=[CLASSES[0]] * len(frame), name="mix"
    )
    assert code == 1, out.out
    assert [c.column for c in drift.drifted_columns] == [PREDICTION]
    assert drift.drifted_share == 0.0 and drift.drifted is True


def window_rows(project: Path, monkeypatch):
    monkeypatch.chdir(project)
    frame = split_test_rows()
    assert TARGET in frame.columns
    return frame
