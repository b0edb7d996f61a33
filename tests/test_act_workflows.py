"""The real PR, comment and main workflows, run by act on a throwaway fork of the template.

main: the template with the scikit-learn family, reproduced and committed (dvc.lock, metrics).
(a) a PR tuning a hyperparameter, reproduced and committed by its author: the workflow passes,
    the report shows the params and metrics diff and an accepted model;
(b) a PR degrading the model below the gate (lock not even updated): the job fails at the end,
    after uploading a report that names the failed rule;
(c) the comment workflow, given (a)'s artifact and a workflow_run payload, runs the exact
    `cml comment update` on the validated report; a PR that moved on gets no comment;
(d) a PR that changes nothing the pipeline depends on does not retrain;
(e) a push to main without a DVC remote reproduces from the cache and skips the push with a
    notice saying what to configure.
Remote actions, `cml`, `gh` and `npm` are stand-ins (tests/act_harness.py); DVC, git, the
pipeline and the workflow files are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from act_harness import ActRun, clone, event_payload, git, run_in, run_workflow, template_repo
from project import EXAMPLE_ONLY, SKLEARN_FAST, holds_bundled_example, set_params

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not holds_bundled_example(), reason=EXAMPLE_ONLY),
]

PR_NUMBER = 7
FINAL_STEP = "Fail if the model is not accepted or the committed results are stale"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act")


@pytest.fixture(scope="module")
def main_repo(work: Path) -> Path:
    return template_repo(work / "main", params=SKLEARN_FAST)


@pytest.fixture(scope="module")
def dvc_cache(work: Path, main_repo: Path) -> Path:
    """The GitHub cache as main's workflow left it: main's DVC cache under a `dvc-Linux-` key."""
    store = work / "gha-cache"
    shutil.copytree(main_repo / ".dvc" / "cache", store / "dvc-Linux-from-main")
    return store


def open_pr(main_repo: Path, dest: Path, branch: str) -> tuple[Path, str]:
    """A contributor's clone on a new branch; returns it and the base commit."""
    repo = clone(main_repo, dest)
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", branch)
    return repo, base


def run_pr(repo: Path, base: str, work: Path, cache: Path) -> ActRun:
    payload = event_payload(
        "pull_request",
        number=PR_NUMBER,
        head_sha=git(repo, "rev-parse", "HEAD"),
        base_sha=base,
        head_ref=git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
    )
    return run_workflow(repo, "pr.yml", "pull_request", payload, work, job="model", cache=cache)


def report_of(run: ActRun) -> str:
    return (run.artifacts / "pr-report" / "report.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tuned(work: Path, main_repo: Path, dvc_cache: Path) -> dict[str, Any]:
    """(a): C 1 -> 2, reproduced locally and committed, as the README asks contributors."""
    repo, base = open_pr(main_repo, work / "pr-tuned", "tune-svc-c")
    shutil.copytree(main_repo / ".dvc" / "cache", repo / ".dvc" / "cache", dirs_exist_ok=True)
    set_params(repo, {"train": {"sklearn": {"logreg": {"C": 2.0}}}})
    run_in(repo, ["uv", "sync", "--locked", "--no-dev", "--quiet"])
    run_in(repo, ["mlops", "data"])
    run_in(repo, ["dvc", "repro"])
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Tune the regularisation")
    run = run_pr(repo, base, work / "run-tuned", dvc_cache)
    return {"run": run, "head": git(repo, "rev-parse", "HEAD"), "base": base}


def test_a_tuned_model_passes_with_params_and_metrics_diff(tuned: dict[str, Any]) -> None:
    run: ActRun = tuned["run"]
    assert run.returncode == 0, run.log[-5000:]
    assert run.step_succeeded(FINAL_STEP)  # accepted, and the committed results reproduced
    report = report_of(run)
    assert "**Accepted**" in report
    assert "train.sklearn.logreg.C" in report and "1" in report and "2" in report
    assert "| log_loss |" in report  # the metrics table
    assert "`dvc.lock` is up to date" in report
    assert "Committed metrics reproduced in CI" in report
    meta = json.loads((run.artifacts / "pr-report" / "pr.json").read_text())
    assert meta == {"pr_number": PR_NUMBER, "head_sha": tuned["head"], "base_sha": tuned["base"]}
    (restore,) = run.calls_of("cache")
    assert restore["restored"] == "dvc-Linux-from-main"  # data and split from main's cache
    assert "data: cache" in run.log


def test_b_degraded_model_fails_the_check_after_uploading_the_report(
    work: Path, main_repo: Path, dvc_cache: Path
) -> None:
    repo, base = open_pr(main_repo, work / "pr-degraded", "strong-regularisation")
    set_params(repo, {"train": {"sklearn": {"logreg": {"C": 0.001}}}})
    git(repo, "commit", "-q", "-am", "Try a much smaller C (no dvc repro)")
    run = run_pr(repo, base, work / "run-degraded", dvc_cache)

    assert run.returncode != 0
    assert run.step_failed(FINAL_STEP), run.log[-5000:]
    assert run.step_succeeded("Upload the report")
    report = report_of(run)
    assert "Not accepted" in report
    assert "accuracy" in report and "is below the minimum 0.97" in report
    assert "`dvc.lock` is out of date" in report
    assert "::error title=Acceptance gate::accuracy" in run.log


def test_b_stale_results_fail_the_check_even_when_the_model_is_accepted(
    work: Path, main_repo: Path, dvc_cache: Path
) -> None:
    repo, base = open_pr(main_repo, work / "pr-stale", "untested-params")
    set_params(repo, {"train": {"sklearn": {"logreg": {"C": 0.5}}}})
    git(repo, "commit", "-q", "-am", "Change C, forget dvc repro")
    run = run_pr(repo, base, work / "run-stale", dvc_cache)

    assert run.returncode != 0
    assert run.step_succeeded("Upload the report")
    assert run.step_failed(FINAL_STEP), run.log[-5000:]
    report = report_of(run)
    assert "**Accepted**" in report
    assert "train: params changed" in report and "This check fails the PR" in report
    assert "::error title=Committed results are stale::dvc.lock out of date: train" in run.log
    assert "commit dvc.lock with the metrics" in run.log


def test_c_comment_workflow_posts_the_validated_report_with_cml(
    work: Path, main_repo: Path, tuned: dict[str, Any]
) -> None:
    pr_run: ActRun = tuned["run"]
    payload = event_payload(
        "workflow_run", conclusion="success", head_sha=tuned["head"], head_ref="tune-svc-c"
    )
    run = run_workflow(
        main_repo,  # workflow_run runs the default branch's code: main is checked out
        "comment.yml",
        "workflow_run",
        payload,
        work / "run-comment",
        artifacts=pr_run.artifacts,
        gh_answers={
            f"repos/acme/digits/pulls/{PR_NUMBER}": {
                "number": PR_NUMBER,
                "head": {"sha": tuned["head"]},
            }
        },
    )
    assert run.returncode == 0, run.log[-5000:]
    (download,) = run.calls_of("download-artifact")
    assert download["inputs"]["name"] == "pr-report"
    assert download["inputs"]["run-id"] == "4242" and download["token_given"]
    assert run.calls_of("gh") == [
        {"kind": "gh", "argv": ["api", f"repos/acme/digits/pulls/{PR_NUMBER}"], "token": True}
    ]
    assert [c["argv"] for c in run.calls_of("npm")] == [
        ["install", "--global", "--ignore-scripts", "@dvcorg/cml@0.20.6"]
    ]
    (cml,) = run.calls_of("cml")
    *argv, report_path = cml["argv"]
    assert argv == [
        "comment",
        "update",
        f"--target=pr/{PR_NUMBER}",
        "--watermark-title=mlops-template report",
        "--no-publish",
    ]
    assert report_path.endswith("/pr-report/report.md")
    assert cml["report"] == report_of(pr_run)
    assert cml["env"] == {"repo_token": True, "do_not_track": "1"}


def test_c_no_comment_for_a_pr_that_moved_on(
    work: Path, main_repo: Path, tuned: dict[str, Any]
) -> None:
    payload = event_payload(
        "workflow_run", conclusion="success", head_sha=tuned["head"], head_ref="tune-svc-c"
    )
    run = run_workflow(
        main_repo,
        "comment.yml",
        "workflow_run",
        payload,
        work / "run-comment-stale",
        artifacts=tuned["run"].artifacts,
        gh_answers={
            f"repos/acme/digits/pulls/{PR_NUMBER}": {"number": PR_NUMBER, "head": {"sha": "f" * 40}}
        },
    )
    assert run.returncode == 0, run.log[-5000:]
    assert run.calls_of("cml") == []
    assert "::notice title=Newer commit::PR #7 is now at ffffffffffff" in run.log


def test_d_a_change_outside_the_pipeline_does_not_retrain(
    work: Path, main_repo: Path, dvc_cache: Path
) -> None:
    repo, base = open_pr(main_repo, work / "pr-docs", "docs")
    (repo / "README.md").write_text("# Digits\n\nA better README.\n")
    git(repo, "commit", "-q", "-am", "Docs only")
    run = run_pr(repo, base, work / "run-docs", dvc_cache)
    assert run.returncode == 0, run.log[-5000:]
    assert "Running stage 'train'" not in run.log
    assert "Running stage 'prepare'" not in run.log
    report = report_of(run)
    assert "`dvc.lock` is up to date" in report
    assert "nothing re-ran" in report
    assert "Committed metrics reproduced in CI" in report  # evaluate re-checked, no training


def test_e_main_push_without_a_remote_reproduces_and_skips_the_push(
    work: Path, main_repo: Path, dvc_cache: Path
) -> None:
    head = git(main_repo, "rev-parse", "HEAD")
    payload = event_payload("push_main", before=git(main_repo, "rev-parse", "HEAD~1"), after=head)
    run = run_workflow(main_repo, "main.yml", "push", payload, work / "run-main", cache=dvc_cache)
    assert run.returncode == 0, run.log[-5000:]
    assert run.log.count("::notice title=DVC remote::No DVC remote configured") == 1
    assert "::notice title=DVC remote::Skipping dvc push. No DVC remote configured" in run.log
    assert "Running stage 'train'" not in run.log  # main's own cache: nothing to retrain
    (uv,) = run.calls_of("setup-uv")
    assert (uv["inputs"]["enable-cache"], uv["inputs"]["save-cache"]) == ("true", "true")
    assert "+ uv sync --locked --extra s3 --no-dev" in run.log
