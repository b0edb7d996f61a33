"""`mlops gate` end to end, in a real temporary git repository, with a fork's params.yaml
(tests/fork.py) and the tiny family: nothing here depends on the example."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fork import fork_params
from project import REPO, set_params

from mlops_template.cli import main
from mlops_template.gate import Verdict
from mlops_template.stages.gate import run_gate

RULES = {
    "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01},
    "log_loss": {"direction": "lower", "max": 0.5, "max_relative_regression": 0.5},
    "latency.single_p95_ms": {"direction": "lower", "max": 100},
}


def _fork_params_text() -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "params.yaml").write_text((REPO / "params.yaml").read_text())
        set_params(Path(scratch), fork_params("tiny"))
        return (Path(scratch) / "params.yaml").read_text()


FORK_PARAMS = _fork_params_text()


def project_params(rules: Any) -> str:
    """A fork's params.yaml with these gate rules."""
    params = yaml.safe_load(FORK_PARAMS)
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
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny) -> Path:
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
    assert verdict["baseline"] == {"source": "git:HEAD", "available": True, "note": None}
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
    assert main(["gate", "--baseline", "HEAD~1"]) == 1  # worse than the commit before
    assert verdict_file()["baseline"] == {"source": "git:HEAD~1", "available": True, "note": None}
    assert REGRESSION in capsys.readouterr().out


def test_unknown_baseline_rev_exits_2_without_traceback(repo, capsys):
    assert main(["gate", "--baseline", "no-such-branch"]) == 2

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
    assert verdict_file()["baseline"] == {"source": None, "available": False, "note": None}


def test_first_commit_without_metrics_skips_change_bounds(workdir, capsys):
    git("init", "-q", "-b", "main")
    Path("params.yaml").write_text(PARAMS)
    commit("template, no model yet")
    write_metrics(accuracy=0.5)  # would be a huge regression, if there were a baseline

    assert main(["gate"]) == 1  # ...but only the value bound (min 0.9) fails

    verdict = verdict_file()
    assert verdict["baseline"] == {"source": "git:HEAD", "available": False, "note": None}
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
    assert verdict_file()["baseline"] == {"source": "git:HEAD", "available": False, "note": None}


def test_baseline_file(repo, capsys):
    Path("baseline.json").write_text(json.dumps({**QUALITY, "accuracy": 0.99, **SERVING}))
    write_metrics(accuracy=0.97)

    assert main(["gate", "--baseline-file", "baseline.json"]) == 1

    verdict = verdict_file()
    assert verdict["baseline"] == {"source": "file:baseline.json", "available": True, "note": None}
    reason = "accuracy got worse by 0.02 (2.02%) against the baseline 0.99; allowed 0.01"
    assert verdict["reasons"] == [reason]
    assert reason in capsys.readouterr().out


def test_missing_baseline_file_exits_2(repo, capsys):
    assert main(["gate", "--baseline-file", "nope.json"]) == 2
    assert "error: baseline file nope.json not found" in capsys.readouterr().err


def test_baseline_options_exclude_each_other(repo, capsys):
    assert main(["gate", "--no-baseline", "--baseline", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert "use one of --baseline, --baseline-file and --no-baseline" in err
    assert "Traceback" not in err
    assert not Path("reports/gate.json").exists()


def test_an_empty_baseline_means_none(repo, capsys):
    """`--baseline ""` is how a first release says it has no previous one."""
    assert main(["gate", "--baseline", ""]) == 0
    assert verdict_file()["baseline"] == {"source": None, "available": False, "note": None}


def test_usage_mistakes_exit_2_and_help_exits_0(capsys):
    assert main(["gate", "--no-such-option"]) == 2
    assert "No such option" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2
    assert main(["ci", "gate"]) == 2  # --baseline is required there
    assert "Missing option '--baseline'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "release" in capsys.readouterr().out


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
    assert verdict_file()["baseline"] == {"source": None, "available": False, "note": None}

    with pytest.raises(ValueError, match="not both"):
        run_gate("params.yaml", baseline_rev="HEAD", baseline_file="x.json")


# --------------------------------------------------------------------------- the task fingerprint


def write_task(**changes: Any) -> dict[str, Any]:
    """reports/task.json as prepare writes it for the fork's params (with `changes`)."""
    from mlops_template.params import parse_params
    from mlops_template.task import task_record

    record = task_record(parse_params(yaml.safe_load(FORK_PARAMS)))
    if changes:
        record = record.model_copy(update=changes).with_fingerprint()
    Path("reports").mkdir(exist_ok=True)
    Path("reports/task.json").write_text(record.model_dump_json())
    return record.model_dump(mode="json")


def change_checks(verdict: dict[str, Any]) -> list[tuple[Any, str]]:
    return [
        (check["passed"], check["reason"])
        for rule in verdict["rules"]
        for check in rule["checks"]
        if check["kind"].startswith("max_re")
    ]


def test_a_baseline_of_the_same_task_is_used(repo, capsys):
    write_task()
    commit("the task")
    write_metrics(accuracy=0.95)

    assert main(["gate"]) == 1
    verdict = verdict_file()
    assert verdict["baseline"] == {"source": "git:HEAD", "available": True, "note": None}
    assert verdict["reasons"] == [REGRESSION]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"classes": [0, 1, 2]}, "classes [0, 1, 2] -> ['barolo', 'grignolino', 'barbera']"),
        ({"target": "label"}, "target 'label' -> 'cultivar'"),
        ({"split_seed": 7}, "split_seed 7 -> 42"),
        ({"test_size": 0.2}, "test_size 0.2 -> 0.25"),
    ],
)
def test_a_baseline_of_another_task_is_not_used_and_the_verdict_says_why(
    repo, capsys, changes, why
):
    """A fork's first model is not judged against the example's (or any other task's) metrics."""
    write_task(**changes)
    commit("the template's task")
    write_task()
    write_metrics(accuracy=0.91, log_loss=0.4)  # much worse than the committed metrics

    assert main(["gate"]) == 0  # only the value bounds apply

    verdict = verdict_file()
    note = f"the baseline measured a different task ({why})"
    assert verdict["baseline"] == {"source": "git:HEAD", "available": False, "note": note}
    assert change_checks(verdict) == [(None, "skipped: no baseline")] * 2
    assert verdict["summary"] == f"accepted: 3 rules passed (change bounds skipped: {note})"
    assert note in capsys.readouterr().out


def test_a_baseline_without_a_task_record_is_not_used(repo):
    write_task()  # HEAD (the fixture's commit) has metrics but no reports/task.json
    write_metrics(accuracy=0.91)

    assert main(["gate"]) == 0
    note = verdict_file()["baseline"]["note"]
    assert note == "the baseline records no task (it predates task fingerprints)"


def test_without_a_current_task_record_the_named_baseline_is_trusted(repo):
    write_task(split_seed=7)
    commit("some task")
    Path("reports/task.json").unlink()
    write_metrics(accuracy=0.95)

    assert main(["gate"]) == 1
    assert verdict_file()["baseline"]["available"] is True


def test_a_baseline_file_is_trusted_whatever_the_task(repo):
    write_task(split_seed=7)
    commit("some task")
    write_task()
    Path("baseline.json").write_text(json.dumps({**QUALITY, **SERVING}))
    write_metrics(accuracy=0.95)

    assert main(["gate", "--baseline-file", "baseline.json"]) == 1
    assert verdict_file()["baseline"]["available"] is True
