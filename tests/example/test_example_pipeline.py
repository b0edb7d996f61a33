"""The example end to end: `mlops data` regenerates the digits CSV, `dvc repro` trains the
example's models on it (the scikit-learn default, and the keras CNN the example ships).

The scikit-learn run is the act tests' `main` (tests/act_harness.py `template_repo`, the same
params): one real reproduction per test run, which both check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from act_harness import template_repo
from project import KERAS_FAST, SKLEARN_FAST, copy_project, run

pytestmark = pytest.mark.slow


def test_the_example_runs_with_scikit_learn(tmp_path: Path) -> None:
    fresh = copy_project(tmp_path / "fresh", SKLEARN_FAST)
    first = run(["mlops", "data"], fresh)
    assert "regenerated from the bundled example" in first.stdout
    repo = template_repo(tmp_path / "reproduced", params=SKLEARN_FAST)  # mlops data; dvc repro
    assert run(["dvc", "status", "-q"], repo, check=False).returncode == 0
    quality = json.loads((repo / "metrics/quality.json").read_text())
    assert quality["accuracy"] >= 0.95
    assert set(quality["f1_per_class"]) == {str(c) for c in range(10)}
    data = json.loads((repo / "reports/data.json").read_text())
    assert data["rows"] == 1797 and sum(data["per_class"].values()) == 1797
    assert json.loads((repo / "reports/gate.json").read_text())["accepted"] is True
    predictions = (repo / "plots/predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 450


@pytest.mark.keras
def test_the_example_cnn_logs_curves(tmp_path: Path) -> None:
    repo = copy_project(tmp_path, KERAS_FAST)
    run(["mlops", "data"], repo)
    run(["dvc", "repro"], repo)
    loss = (repo / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"] and len(loss) == 1 + 3
    assert (repo / "dvclive/plots/metrics/eval/accuracy.tsv").exists()
    model = json.loads((repo / "artifacts/model/model.json").read_text())
    assert (model["family"], model["variant"]) == ("keras", "cnn")
    assert (repo / "artifacts/model/model.keras").exists()
    assert json.loads((repo / "reports/gate.json").read_text())["accepted"] is True
    assert "Data and pipelines are up to date." in run(["dvc", "repro"], repo).stdout
