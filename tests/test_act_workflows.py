"""The real PR and main workflows, run by act on a throwaway fork of the template (main: the
template with the scikit-learn family, reproduced and committed; tests/act_pr.py):

(b) a PR degrading the model below the gate (lock not even updated): the job fails at the end,
    after uploading a report that names the failed rule; a PR changing params without
    reproducing fails as stale even when its model is accepted;
(d) a PR that changes nothing the pipeline depends on does not retrain;
(e) a push to main without a DVC remote reproduces from the cache and skips the push with a
    notice saying what to configure.
(a) and (c), an accepted PR and the comment workflow, are in tests/test_act_comment.py.
Remote actions, `cml`, `gh` and `npm` are stand-ins (tests/act_harness.py); DVC, git, the
pipeline and the workflow files are real.
"""

from __future__ import annotations

from pathlib import Path

import act_pr
import pytest
from act_harness import event_payload, git, run_workflow
from act_pr import FINAL_STEP, open_pr, report_of, run_pr
from project import EXAMPLE_ONLY, holds_bundled_example, set_params

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not holds_bundled_example(), reason=EXAMPLE_ONLY),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act")


@pytest.fixture(scope="module")
def main_repo(work: Path) -> Path:
    return act_pr.main_repo(work)


@pytest.fixture(scope="module")
def dvc_cache(work: Path, main_repo: Path) -> Path:
    return act_pr.dvc_cache(work, main_repo)


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
