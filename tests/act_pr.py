"""What the act tests of the PR workflows share: `main` (the template with the scikit-learn
family, reproduced and committed: tests/act_harness.py `template_repo`, made once per test
run), main's DVC cache as main's workflow saved it to GitHub's cache, a contributor's branch,
and the PR workflow's model job run on it by act."""

from __future__ import annotations

import shutil
from pathlib import Path

from act_harness import ActRun, clone, event_payload, git, run_workflow, template_repo
from project import SKLEARN_FAST

from mlops_template.records import ReportData
from mlops_template.report.render import render_report

PR_NUMBER = 7
FINAL_STEP = "Fail if the model is not accepted or the committed results are stale"


def main_repo(work: Path) -> Path:
    return template_repo(work / "main", params=SKLEARN_FAST)


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


def data_of(run: ActRun) -> ReportData:
    return ReportData.read(run.artifacts / "pr-report" / "report.json")


def report_of(run: ActRun) -> str:
    """The uploaded report data, rendered as the comment workflow renders it."""
    return render_report(data_of(run))
