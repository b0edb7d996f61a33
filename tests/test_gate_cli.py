"""`mlops gate` end to end, in a real temporary git repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.gate import Verdict
from mlops_template.stages.gate import run_gate

RULES = {
    "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01},
    "log_loss": {"direction": "lower", "max": 0.5, "max_relative_regression": 0.5},
    "latency.single_p95_ms": {"direction": "lower", "max": 100},
}


def project_params(rules: Any) -> str:
    """The project's own params.yaml with these gate rules."""
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["gate"]["rules"] = rules
    return yaml.safe_dump(params, sort_keys=False)


PARAMS = project_params(RULES)
QUALITY = {
    "accuracy": 0.97,
    "log_loss": 0.12,
    "f1_per_class": {"0": 0.96},
    "model_size_bytes": 1000,
}
SERVING = {"latency": {"single_p50_ms": 1.5, "single_p95_ms": 2.5}}
REGRESSION = "accuracy got worse by 0.02 (2.06%) against the baseline 0.97; allowed 0.01"


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    return done.stdout


def write_metrics(quality: dict[str, Any] | None = None, **changes: Any) -> None:
    """Write metrics/quality.json (QUALITY with `changes`) and metrics/serving.json."""
    Path("metrics").mkdir(exist_ok=True)
    Path("metrics/quality.json").write_text(json.dumps({**(quality or QUALITY), **changes}))
    Path("metrics/serving.json").write_text(json.dumps(SERVING))


def commit(message: str) -> None:
    git("add", "-A")
    git("commit", "-q", "-m", message)


def verdict_file(path: str = "reports/gate.json") -> dict[str, Any]:
    return json.loads(Path(path).read_text())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory as cwd, with git isolated from the user's and system's config."""
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "Gate Test")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "gate-test@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def repo(workdir: Path) -> Path:
    """A git repo whose HEAD commits params.yaml and the baseline metrics (QUALITY, SERVING)."""
    git("init", "-q", "-b", "main")
    Path("params.yaml").write_text(PARAMS)
    write_metrics()
    commit("baseline model")
    return workdir


def test_accepted_exits_0_and_writes_the_verdict(repo, capsys):
    write_metrics(accuracy=0.975, log_loss=0.1)

    assert main(["gate"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("ACCEPTED  (baseline: git:HEAD)")
    assert "verdict written to reports/gate.json" in out
    verdict = verdict_file()
    assert verdict["accepted"] is True
    assert verdict["baseline"] == {"source": "git:HEAD", "available": True}
    assert verdict["reasons"] == []
    assert verdict["summary"] == "accepted: 3 rules passed"
    accuracy = verdict["rules"][0]
    assert (accuracy["value"], accuracy["baseline"]) == (0.975, 0.97)
    assert [p.name for p in Path("reports").iterdir()] == ["gate.json"]  # no temp file left


def test_regression_against_head_exits_1_and_says_why(repo, capsys):
    write_metrics(accuracy=0.95)

    assert main(["gate", "--out", "build/deep/verdict.json"]) == 1

    out = capsys.readouterr().out
    assert out.startswith("NOT ACCEPTED  (baseline: git:HEAD)")
    assert f"  - {REGRESSION}" in out
    assert out.splitlines()[-2] == "not accepted: 1 of 3 rules failed: accuracy"
    verdict = verdict_file("build/deep/verdict.json")
    assert verdict["accepted"] is False
    assert verdict["reasons"] == [REGRESSION]
    assert not Path("reports").exists()


def test_an_older_revision_can_be_the_baseline(repo, capsys):
    write_metrics(accuracy=0.95)
    commit("worse model")
    write_metrics(accuracy=0.95)

    assert main(["gate"]) == 0  # unchanged against HEAD
    assert main(["gate", "--baseline-rev", "HEAD~1"]) == 1  # worse than the commit before
    assert verdict_file()["baseline"] == {"source": "git:HEAD~1", "available": True}
    assert REGRESSION in capsys.readouterr().out


def test_unknown_baseline_rev_exits_2_without_traceback(repo, capsys):
    assert main(["gate", "--baseline-rev", "no-such-branch"]) == 2

    captured = capsys.readouterr()
    assert "error: git revision 'no-such-branch' not found" in captured.err
    assert "fix: " in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not Path("reports/gate.json").exists()


def test_outside_a_git_repo_the_baseline_rev_is_a_clear_error(workdir, capsys):
    Path("params.yaml").write_text(PARAMS)
    write_metrics()

    assert main(["gate"]) == 2

    err = capsys.readouterr().err
    assert "error: cannot read the baseline at git revision 'HEAD'" in err
    assert "is not inside a git work tree" in err
    assert "fix: run from the repository root, or pass --baseline-file PATH or --no-baseline" in err

    assert main(["gate", "--no-baseline"]) == 0  # value bounds still work without git
    assert verdict_file()["baseline"] == {"source": None, "available": False}


def test_first_commit_without_metrics_skips_change_bounds(workdir, capsys):
    git("init", "-q", "-b", "main")
    Path("params.yaml").write_text(PARAMS)
    commit("template, no model yet")
    write_metrics(accuracy=0.5)  # would be a huge regression, if there were a baseline

    assert main(["gate"]) == 1  # ...but only the value bound (min 0.9) fails

    verdict = verdict_file()
    assert verdict["baseline"] == {"source": "git:HEAD", "available": False}
    assert verdict["reasons"] == ["accuracy 0.5 is below the minimum 0.9"]
    change_checks = [
        check
        for rule in verdict["rules"]
        for check in rule["checks"]
        if check["kind"].startswith("max_re")
    ]
    assert [(c["passed"], c["reason"]) for c in change_checks] == [
        (None, "skipped: no baseline"),
        (None, "skipped: no baseline"),
    ]
    assert verdict["summary"].endswith("(change bounds skipped: no baseline)")
    out = capsys.readouterr().out
    assert "(baseline: git:HEAD (no metrics there))" in out
    assert "max_regression 0.01 (skipped)" in out


def test_repository_without_any_commit_has_no_baseline(workdir):
    git("init", "-q", "-b", "main")
    Path("params.yaml").write_text(PARAMS)
    write_metrics()

    assert main(["gate"]) == 0
    assert verdict_file()["baseline"] == {"source": "git:HEAD", "available": False}


def test_baseline_file(repo, capsys):
    Path("baseline.json").write_text(json.dumps({**QUALITY, "accuracy": 0.99, **SERVING}))
    write_metrics(accuracy=0.97)

    assert main(["gate", "--baseline-file", "baseline.json"]) == 1

    verdict = verdict_file()
    assert verdict["baseline"] == {"source": "file:baseline.json", "available": True}
    reason = "accuracy got worse by 0.02 (2.02%) against the baseline 0.99; allowed 0.01"
    assert verdict["reasons"] == [reason]
    assert reason in capsys.readouterr().out


def test_missing_baseline_file_exits_2(repo, capsys):
    assert main(["gate", "--baseline-file", "nope.json"]) == 2
    assert "error: baseline file nope.json not found" in capsys.readouterr().err


def test_baseline_options_exclude_each_other(repo, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["gate", "--no-baseline", "--baseline-rev", "HEAD"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_no_metrics_files_asks_for_dvc_repro(repo, capsys):
    for path in Path("metrics").iterdir():
        path.unlink()

    assert main(["gate"]) == 2

    err = capsys.readouterr().err
    assert "error: no metrics to check" in err
    assert "fix: run `dvc repro evaluate` first" in err


def test_a_metric_missing_from_the_files_fails_its_rule(repo, capsys):
    Path("metrics/serving.json").unlink()  # one file gone: its metrics are missing, not an error

    assert main(["gate"]) == 1
    assert verdict_file()["reasons"] == ["latency.single_p95_ms is missing from the metrics"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            project_params({"accuracy": {"direction": "higher", "minimum": 0.9}}),
            "error: gate.rules.accuracy has an unknown key 'minimum'",
        ),
        (project_params({}), "error: gate.rules is empty"),
        ("train: {}\n", "prepare: missing"),
        ("gate: [\n", "is not valid YAML"),
    ],
)
def test_bad_params_exit_2(repo, capsys, params, message):
    Path("params.yaml").write_text(params)
    assert main(["gate"]) == 2
    assert message in capsys.readouterr().err


def test_missing_params_file_exits_2(repo, capsys):
    assert main(["gate", "--params", "other.yaml"]) == 2
    assert "error: other.yaml not found" in capsys.readouterr().err


def test_run_gate_is_reusable(repo):
    write_metrics(accuracy=0.95)

    verdict = run_gate("params.yaml", baseline_rev="HEAD", out=None)

    assert isinstance(verdict, Verdict)
    assert not verdict.accepted
    assert verdict.reasons == [REGRESSION]
    assert not Path("reports").exists()  # out=None writes nothing

    verdict = run_gate("params.yaml")  # neither rev nor file: no baseline
    assert verdict.accepted
    assert verdict_file()["baseline"] == {"source": None, "available": False}

    with pytest.raises(ValueError, match="not both"):
        run_gate("params.yaml", baseline_rev="HEAD", baseline_file="x.json")
