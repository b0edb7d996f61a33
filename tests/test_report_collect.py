"""`mlops report` inputs from a real git repo with real DVC: base commit vs working tree."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.records import DataSummary, ReportData
from mlops_template.report import cli
from mlops_template.report.collect import collect_inputs, parse_curve
from mlops_template.report.render import WATERMARK, render_report

pytestmark = pytest.mark.slow  # real DVC commands in a real git repo: seconds each

DVC_YAML = """\
metrics:
  - metrics/quality.json
  - metrics/serving.json
params:
  - params.yaml
"""


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _tsv(name: str, values: list[float]) -> str:
    rows = "".join(f"{1700000000 + i}\t{i}\t{v}\n" for i, v in enumerate(values))
    return f"timestamp\tstep\t{name}\n{rows}"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base commit and the PR's working tree, built once (`dvc init` takes seconds)."""
    root = tmp_path_factory.mktemp("collect") / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    _write(root, "dvc.yaml", DVC_YAML)
    _write(root, "params.yaml", "train:\n  epochs: 10\n  lr: 0.01\n  dropped: 1\n")
    _write(
        root,
        "metrics/quality.json",
        json.dumps({"accuracy": 0.95, "old_metric": 1, "f1_per_class": {"0": 0.9, "1": 0.8}}),
    )
    _write(root, "metrics/serving.json", json.dumps({"latency": {"single_p95_ms": 5.0}}))
    _write(root, "reports/data.json", json.dumps({"rows": 10, "columns": 3, "files": {"a": "1"}}))
    _write(root, "dvclive/plots/metrics/eval/loss.tsv", _tsv("loss", [1.0, 0.5]))
    _write(root, "plots/per_class_f1.csv", "class,f1\n0,0.9\n1,0.8\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")

    # the PR: changed in the working tree, as the pipeline leaves it in CI
    _write(root, "params.yaml", "train:\n  epochs: 20\n  lr: 0.01\n  added: [1, 2]\n")
    _write(
        root,
        "metrics/quality.json",
        '{"accuracy": 0.97, "new_metric": 2, "log_loss": NaN,'
        ' "f1_per_class": {"0": 0.95, "1": 0.8}}',
    )
    _write(root, "reports/data.json", json.dumps({"rows": 12, "columns": 3, "files": {"a": "2"}}))
    _write(root, "dvclive/plots/metrics/eval/loss.tsv", _tsv("loss", [0.9, 0.4, 0.3]))
    _write(root, "dvclive/plots/metrics/train/loss.tsv", _tsv("loss", [0.8, 0.2, 0.1]))
    _write(root, "plots/per_class_f1.csv", "class,f1\n0,0.95\n1,0.8\n")
    _write(root, "plots/predictions.csv", "actual,predicted\n0,0\n1,1\n1,0\n")
    _write(root, "reports/gate.json", json.dumps({"accepted": True, "rules": [], "reasons": []}))
    _write(
        root,
        "build/ci/repro.json",
        json.dumps({"data_source": "cache", "lock_up_to_date": True, "on_stale": "warn"}),
    )
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the template repo; the CI variables that collect reads are unset."""
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # the dvc of this environment, whatever PATH the test runner was given
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    return root


def test_collect_against_head(repo: Path) -> None:
    inputs = collect_inputs("HEAD", root=repo)

    quality = inputs.metrics_diff["metrics/quality.json"]
    assert quality["accuracy"]["old"] == 0.95 and quality["accuracy"]["new"] == 0.97
    assert quality["f1_per_class.0"] == {"old": 0.9, "new": 0.95, "diff": pytest.approx(0.05)}
    assert quality["new_metric"]["old"] is None and quality["new_metric"]["new"] == 2
    assert quality["old_metric"]["new"] is None
    assert math.isnan(quality["log_loss"]["new"])
    serving = inputs.metrics_diff["metrics/serving.json"]
    assert serving["latency.single_p95_ms"]["new"] == 5.0  # unchanged, listed thanks to --all

    params = inputs.params_diff["params.yaml"]
    assert params["train.epochs"]["old"] == 10 and params["train.epochs"]["new"] == 20
    assert params["train.lr"]["old"] == params["train.lr"]["new"] == 0.01
    assert params["train.dropped"]["new"] is None and params["train.added"]["old"] is None

    assert inputs.data_base == DataSummary(rows=10, columns=3, files={"a": "1"})
    assert inputs.data_pr is not None and inputs.data_pr.rows == 12
    assert inputs.curves_base == {"eval/loss": [(0.0, 1.0), (1.0, 0.5)]}
    assert sorted(inputs.curves_pr) == ["eval/loss", "train/loss"]
    assert inputs.curves_pr["eval/loss"][-1] == (2.0, 0.3)
    assert inputs.f1_base == {"0": 0.9, "1": 0.8} and inputs.f1_pr["0"] == 0.95
    assert inputs.confusion_pr == [("0", "0"), ("1", "1"), ("1", "0")]
    assert inputs.gate is not None and inputs.gate.accepted is True
    assert inputs.repro is not None and inputs.repro.data_source == "cache"
    head = _git(repo, "rev-parse", "--short", "HEAD")
    assert inputs.base_ref == "HEAD" and inputs.base_sha == head
    assert inputs.head_ref == "main" and inputs.head_sha == head


def test_unknown_base_is_a_user_error(repo: Path) -> None:
    with pytest.raises(UserError) as info:
        collect_inputs("no-such-branch", root=repo)
    assert "no-such-branch" in info.value.message and info.value.hint


def test_cli_run_writes_report_and_appends_summary(repo: Path) -> None:
    summary = repo / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    argv = ["report", "--base", "HEAD", "--summary-file", str(summary), "--root", str(repo)]
    assert main([*argv, "--images", "loss=https://example.org/loss.png"]) == 0
    report = (repo / "build/ci/report.md").read_text(encoding="utf-8")
    assert report.splitlines()[0] == WATERMARK
    assert "| accuracy | 0.9500 | 0.9700 |" in report
    assert "| train.epochs | 10 | 20 |" in report
    assert "- Files modified: a" in report
    assert "![loss](https://example.org/loss.png)" in report
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + report
    # the data the PR artifact carries renders to the same report (the images are not data)
    data = ReportData.read(repo / "build/ci/report.json")
    assert data.gate is not None and data.gate.accepted and data.head_ref == "main"
    images = [("loss", "https://example.org/loss.png")]
    assert render_report(data, images=images) == report


def test_cli_rejects_non_https_images() -> None:
    with pytest.raises(UserError):
        cli.parse_images(["x=http://example.org/a.png"])
    assert cli.parse_images(["https://example.org/p/a.png"]) == [
        ("a.png", "https://example.org/p/a.png")
    ]


def test_parse_curve_reads_the_value_column() -> None:
    assert parse_curve("step\tacc\n0\t0.5\n1\tnan\n")[0] == (0.0, 0.5)
    assert parse_curve("") == [] and parse_curve("a\tb\n1\t2\n") == []
