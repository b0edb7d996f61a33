"""The real pipeline (`mlops data` + `dvc repro`) in a temp copy of the project, both families."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from project import KERAS_FAST, SKLEARN_FAST, copy_project, run, set_params

pytestmark = pytest.mark.slow


def repro(repo: Path, *args: str, check: bool = True):
    return run(["dvc", "repro", *args], repo, check=check)


@pytest.fixture(scope="module")
def sklearn_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_project(tmp_path_factory.mktemp("sklearn"), SKLEARN_FAST)
    first = run(["mlops", "data"], repo)
    assert "regenerated from the bundled example" in first.stdout
    repro(repo)
    return repo


def test_sklearn_pipeline_outputs(sklearn_repo: Path) -> None:
    quality = json.loads((sklearn_repo / "metrics/quality.json").read_text())
    assert quality["accuracy"] >= 0.98
    assert set(quality["f1_per_class"]) == {str(c) for c in range(10)}
    assert (
        quality["model_size_bytes"]
        == (sklearn_repo / "artifacts/model/model.joblib").stat().st_size
    )
    serving = json.loads((sklearn_repo / "metrics/serving.json").read_text())
    assert serving["latency"]["single_p95_ms"] >= serving["latency"]["single_p50_ms"] > 0
    data = json.loads((sklearn_repo / "reports/data.json").read_text())
    assert data["rows"] == 1797 and sum(data["per_class"].values()) == 1797
    verdict = json.loads((sklearn_repo / "reports/gate.json").read_text())
    assert verdict["accepted"] is True and verdict["baseline"]["available"] is False
    assert (sklearn_repo / "artifacts/bento/model.bentomodel").stat().st_size > 0
    predictions = (sklearn_repo / "plots/predictions.csv").read_text().splitlines()
    assert predictions[0] == "actual,predicted" and len(predictions) == 1 + 450


def test_second_repro_is_a_noop(sklearn_repo: Path) -> None:
    again = repro(sklearn_repo)
    assert "Data and pipelines are up to date." in again.stdout
    assert run(["dvc", "status", "-q"], sklearn_repo, check=False).returncode == 0


def test_run_cache_restores_a_seen_param_set(sklearn_repo: Path) -> None:
    set_params(sklearn_repo, {"train": {"sklearn": {"svc": {"C": 5.0}}}})
    changed = repro(sklearn_repo, "train")
    assert "Running stage 'train'" in changed.stdout
    set_params(sklearn_repo, {"train": {"sklearn": {"svc": {"C": 10.0}}}})
    restored = repro(sklearn_repo, "train")
    assert "Stage 'train' is cached - skipping run" in restored.stdout


def test_unmeetable_gate_blocks_packaging(tmp_path: Path) -> None:
    rules = {"accuracy": {"direction": "higher", "min": 0.9999}}
    repo = copy_project(tmp_path, {**SKLEARN_FAST, "gate": {"rules": rules}})
    run(["mlops", "data"], repo)
    failed = repro(repo, check=False)
    assert failed.returncode != 0
    verdict = json.loads((repo / "reports/gate.json").read_text())
    assert verdict["accepted"] is False
    assert any("accuracy" in reason and "0.9999" in reason for reason in verdict["reasons"])
    assert "accuracy" in failed.stdout + failed.stderr
    assert not (repo / "artifacts/bento/model.bentomodel").exists()


def test_corrupt_data_stops_at_validate(tmp_path: Path) -> None:
    repo = copy_project(tmp_path, SKLEARN_FAST)
    run(["mlops", "data"], repo)
    csv = repo / "data/digits.csv"
    lines = csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[10] = "99"
    lines[3] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    run(["dvc", "add", "data"], repo)  # recorded on purpose: now validation must catch it
    failed = repro(repo, check=False)
    assert failed.returncode != 0
    out = failed.stdout + failed.stderr
    assert "column 'pixel_1_2' breaks rule 'max 16'" in out and "row 4: 99" in out
    assert not (repo / "artifacts/split").exists()
    assert not (repo / "artifacts/model").exists()


def test_data_edited_without_dvc_add_is_refused(tmp_path: Path) -> None:
    repo = copy_project(tmp_path, SKLEARN_FAST)
    run(["mlops", "data"], repo)
    with (repo / "data/digits.csv").open("a") as handle:
        handle.write(",".join(["0"] * 64) + ",3\n")
    refused = run(["mlops", "data"], repo, check=False)
    assert refused.returncode == 2
    assert "data/ differs from what data.dvc records" in refused.stderr
    assert "dvc add data" in refused.stderr and "Traceback" not in refused.stderr


def test_data_dvc_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    repo = copy_project(tmp_path, SKLEARN_FAST)
    dvc_file = repo / "data.dvc"
    recorded = re.sub(r"md5: \w+\.dir", f"md5: {'0' * 32}.dir", dvc_file.read_text())
    dvc_file.write_text(recorded)
    refused = run(["mlops", "data"], repo, check=False)
    assert refused.returncode == 2
    assert "does not match data.dvc" in refused.stderr and "Traceback" not in refused.stderr
    assert not (repo / "data").exists()  # nothing half-made is left to train on


@pytest.mark.keras
def test_keras_pipeline_logs_curves(tmp_path: Path) -> None:
    repo = copy_project(tmp_path, KERAS_FAST)
    run(["mlops", "data"], repo)
    repro(repo)
    loss = (repo / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"] and len(loss) == 1 + 3
    assert (repo / "dvclive/plots/metrics/eval/accuracy.tsv").exists()
    model = json.loads((repo / "artifacts/model/model.json").read_text())
    assert model["family"] == "keras" and model["file"] == "model.keras"
    assert json.loads((repo / "reports/gate.json").read_text())["accepted"] is True
    assert "Data and pipelines are up to date." in repro(repo).stdout
