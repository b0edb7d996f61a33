"""`mlops release reproduced` and `mlops release gate`: the release's two refusals, for real
files and a real git repository (the previous release is a tag)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.records import ReproRecord
from mlops_template.release.verify import model_hash, recorded_model_problem, reproduction_problems

REPRODUCED = {"lock_up_to_date": True, "metrics_reproduced": True, "notes": []}


@pytest.mark.parametrize(
    ("lock_up_to_date", "metrics_reproduced", "ok"),
    [
        (True, True, True),
        (False, True, True),  # e.g. a code change that leaves the results as committed
        (True, None, True),  # nothing to compare with, but nothing stale either
        (False, None, False),
        (True, False, False),  # CI computes other numbers than the committed ones
        (False, False, False),
    ],
)
def test_reproduction_verdicts(lock_up_to_date: bool, metrics_reproduced: Any, ok: bool) -> None:
    record = {
        **REPRODUCED,
        "lock_up_to_date": lock_up_to_date,
        "metrics_reproduced": metrics_reproduced,
        "notes": ["largest difference: accuracy committed 0.99 vs. CI 0.97"],
    }
    problems = reproduction_problems(ReproRecord.model_validate(record))
    assert (problems == []) is ok
    if metrics_reproduced is False:
        assert problems[0].startswith("CI did not reproduce the committed metrics/quality.json")
        assert "largest difference: accuracy" in problems[1]


def test_reproduced_command_fails_with_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    record = tmp_path / "repro.json"
    record.write_text(json.dumps(REPRODUCED))
    assert main(["release", "reproduced", "--file", str(record)]) == 0
    assert "reproducible: committed metrics reproduced in CI" in capsys.readouterr().out

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    record.write_text(json.dumps({**REPRODUCED, "metrics_reproduced": False}))
    assert main(["release", "reproduced", "--file", str(record)]) == 1
    out = capsys.readouterr().out
    assert "::error title=Not reproducible::CI did not reproduce" in out
    assert "no release: run `dvc repro` on main" in out


def test_reproduced_command_without_a_record_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["release", "reproduced", "--file", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "missing.json not found" in err and "fix: run the repro action" in err


# --------------------------------------------------------------------------- the gate

RULES = {
    "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01},
    "latency.single_p95_ms": {"direction": "lower", "max": 100},
}
SERVING = {"latency": {"single_p95_ms": 3.0}}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)


def write_metrics(repo: Path, accuracy: float) -> None:
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics" / "quality.json").write_text(json.dumps({"accuracy": accuracy}))
    (repo / "metrics" / "serving.json").write_text(json.dumps(SERVING))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's params.yaml with small rules; v1.0.0 released with accuracy 0.95."""
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["gate"]["rules"] = RULES
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_metrics(tmp_path, 0.95)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "v1")
    git(tmp_path, "tag", "v1.0.0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def verdict(repo: Path) -> dict[str, Any]:
    return json.loads((repo / "dist" / "gate-verdict.json").read_text())


def test_the_gate_compares_with_the_previous_release(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    write_metrics(repo, 0.935)  # within the bounds, but 0.015 worse than v1.0.0
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["release", "gate", "--baseline", "v1.0.0"]) == 1
    out = capsys.readouterr().out
    assert "(baseline: git:v1.0.0)" in out
    assert "::error title=Acceptance gate::accuracy got worse by 0.015" in out
    recorded = verdict(repo)
    assert recorded["accepted"] is False
    baseline = recorded["baseline"]
    assert (baseline["source"], baseline["available"]) == ("git:v1.0.0", True)
    assert not baseline.get("note")  # the same task: the change bounds applied

    write_metrics(repo, 0.945)
    assert main(["release", "gate", "--baseline", "v1.0.0"]) == 0
    assert verdict(repo)["accepted"] is True


def test_the_first_release_gets_the_value_bounds_only(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    write_metrics(repo, 0.91)  # far below v1.0.0, but there is no previous release
    assert main(["release", "gate", "--baseline", ""]) == 0
    recorded = verdict(repo)
    assert recorded["accepted"] is True and recorded["baseline"]["source"] is None
    assert "accepted<<" in outputs.read_text() and "\ntrue\n" in outputs.read_text()

    write_metrics(repo, 0.85)
    assert main(["release", "gate"]) == 1
    assert "accuracy 0.85 is below the minimum 0.9" in capsys.readouterr().out
    assert verdict(repo)["reasons"] == ["accuracy 0.85 is below the minimum 0.9"]


LOCK = """schema: '2.0'
stages:
  train:
    cmd: mlops train
    outs:
    - path: artifacts/model
      hash: md5
      md5: {md5}.dir
"""


def test_the_recorded_model_is_found_by_its_path() -> None:
    assert model_hash(LOCK.format(md5="abc")) == "abc.dir"
    assert model_hash(None) is None and model_hash("stages: {}") is None


def test_the_same_model_hash_is_the_recorded_model() -> None:
    assert recorded_model_problem(LOCK.format(md5="abc"), LOCK.format(md5="abc")) is None


def test_a_retrained_model_with_other_bytes_is_refused() -> None:
    problem = recorded_model_problem(LOCK.format(md5="abc"), LOCK.format(md5="abd"))
    assert problem is not None
    assert "(abd.dir) is not the model the tagged commit's dvc.lock records (abc.dir)" in problem


def test_a_commit_without_a_recorded_model_is_refused() -> None:
    assert "records no artifacts/model" in (
        recorded_model_problem(None, LOCK.format(md5="a")) or ""
    )


def test_the_recorded_command_names_the_fix(tmp_path, monkeypatch, capsys) -> None:
    import subprocess

    from mlops_template.cli import main

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "dvc.lock").write_text(LOCK.format(md5="abc"))
    subprocess.run(["git", "add", "dvc.lock"], check=True)
    subprocess.run(["git", "commit", "-qm", "lock"], check=True)
    assert main(["release", "recorded"]) == 0
    (tmp_path / "dvc.lock").write_text(LOCK.format(md5="other"))
    assert main(["release", "recorded"]) == 1
    err = capsys.readouterr()
    assert "configure a DVC remote" in err.out + err.err


# ------------------------------------------------------------ the smoke test's comparison


def smoke_compare(labels, proba, expected):
    import numpy as np

    from mlops_template.release.smoke import SmokeReport, compare_answers

    report = SmokeReport("b:1", "http://127.0.0.1:1")
    compare_answers(report, labels, proba, np.asarray(expected), ["ant", "bee"])
    return report


def test_smoke_passes_when_labels_and_probabilities_agree() -> None:
    report = smoke_compare(["ant", "bee"], [[0.9, 0.1], [0.2, 0.8]], [[0.9, 0.1], [0.2, 0.8]])
    assert report.passed and report.label_mismatches == 0


def test_smoke_fails_when_labels_disagree_though_probabilities_agree() -> None:
    report = smoke_compare(["ant", "ant"], [[0.9, 0.1], [0.2, 0.8]], [[0.9, 0.1], [0.2, 0.8]])
    assert not report.passed and report.label_mismatches == 1
    assert report.max_proba_diff == 0.0
    assert report.problems == [
        "1 of 2 served labels differ from the offline model (first rows: [1])"
    ]


def test_smoke_probability_tolerance_boundary() -> None:
    from mlops_template.release.smoke import PROBA_TOLERANCE

    expected = [[0.5, 0.5]]
    at = smoke_compare(["ant"], [[0.5 + PROBA_TOLERANCE, 0.5]], expected)
    assert at.passed
    past = smoke_compare(["ant"], [[0.5 + 2 * PROBA_TOLERANCE, 0.5]], expected)
    assert not past.passed and "probabilities differ" in past.problems[0]


def test_smoke_fails_when_answers_are_missing() -> None:
    report = smoke_compare(["ant"], [[0.9, 0.1]], [[0.9, 0.1], [0.2, 0.8]])
    assert report.problems == ["2 instances sent, 1 answers received"]
