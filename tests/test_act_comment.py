"""The real PR and comment workflows, run by act on a throwaway fork of the template (main: the
template with the scikit-learn family, reproduced and committed; tests/act_pr.py):

(a) a PR tuning a hyperparameter, reproduced and committed by its author: the workflow passes,
    the report shows the params and metrics diff and an accepted model;
(c) the comment workflow, given (a)'s artifact (report data, not markdown) and a workflow_run
    payload, renders the report with main's renderer and posts it through GitHub's REST API
    (a fake API on 127.0.0.1): every page of comments read, a foreign comment carrying the
    marker left alone, the bot's comment created once, then updated in place; a forged fork
    artifact is rendered harmless and shown failed; a PR that moved on gets no comment.
(b), (d) and (e), the failing checks and main's workflow, are in tests/test_act_workflows.py.
Remote actions, GitHub's API (tests/fake_github.py), `cml`, `gh` and `npm` are stand-ins
(tests/act_harness.py); DVC, git, the pipeline and the workflow files are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import act_pr
import pytest
from act_harness import ActRun, event_payload, git, run_in, run_workflow
from act_pr import FINAL_STEP, PR_NUMBER, data_of, open_pr, report_of, run_pr
from fake_github import BOT, FakeGitHub, serve, user
from harmless import assert_harmless
from project import EXAMPLE_ONLY, holds_bundled_example, set_params

from mlops_template.records import GateVerdict, ReportData
from mlops_template.report.render import ReportOrigin, render_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not holds_bundled_example(), reason=EXAMPLE_ONLY),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act-comment")


@pytest.fixture(scope="module")
def main_repo(work: Path) -> Path:
    return act_pr.main_repo(work)


@pytest.fixture(scope="module")
def dvc_cache(work: Path, main_repo: Path) -> Path:
    return act_pr.dvc_cache(work, main_repo)


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
    assert sorted(p.name for p in (run.artifacts / "pr-report").iterdir()) == [
        "pr.json",
        "report.json",
    ]
    assert data_of(run).gate is not None and data_of(run).gate.accepted
    (restore,) = run.calls_of("cache")
    assert restore["restored"] == "dvc-Linux-from-main"  # data and split from main's cache
    assert "data: cache" in run.log


MARKER = "<!-- mlops-template report -->"
RUN_URL = "https://github.com/acme/digits/actions/runs/4242"


def run_comment(
    main_repo: Path, work: Path, artifacts: Path, api: FakeGitHub, head: str, conclusion: str
) -> ActRun:
    payload = event_payload(
        "workflow_run", conclusion=conclusion, head_sha=head, head_ref="tune-svc-c"
    )
    return run_workflow(
        main_repo,  # workflow_run runs the default branch's code: main is checked out
        "comment.yml",
        "workflow_run",
        payload,
        work,
        artifacts=artifacts,
        act_env={"GITHUB_API_URL": api.url},
    )


def test_c_comment_workflow_renders_the_data_and_posts_one_comment_through_the_api(
    work: Path, main_repo: Path, tuned: dict[str, Any]
) -> None:
    pr_run: ActRun = tuned["run"]
    with serve(FakeGitHub(heads={PR_NUMBER: tuned["head"]})) as api:
        api.add_comment(PR_NUMBER, f"{MARKER}\nforged: ✅ Accepted", user("mallory"))
        api.add_comment(PR_NUMBER, "Nice work", user("reviewer"))
        api.add_comment(PR_NUMBER, "Thanks", user("contributor"))
        first = run_comment(
            main_repo, work / "run-comment", pr_run.artifacts, api, tuned["head"], "success"
        )
        calls_first = api.calls()
        api.requests.clear()
        second = run_comment(
            main_repo, work / "run-comment-2", pr_run.artifacts, api, tuned["head"], "success"
        )
        calls_second = api.calls()

    assert first.returncode == 0, first.log[-5000:]
    assert second.returncode == 0, second.log[-5000:]
    (download,) = first.calls_of("download-artifact")
    assert download["inputs"]["name"] == "pr-report"
    assert download["inputs"]["run-id"] == "4242" and download["token_given"]
    prefix = f"/repos/acme/digits/issues/{PR_NUMBER}/comments"
    assert calls_first == [
        ("GET", f"/repos/acme/digits/pulls/{PR_NUMBER}"),
        ("GET", f"{prefix}?per_page=100"),
        ("GET", f"{prefix}?per_page=2&page=2"),
        ("POST", prefix),
    ]
    ours = api.comments[PR_NUMBER][-1]
    assert calls_second == [
        ("GET", f"/repos/acme/digits/pulls/{PR_NUMBER}"),
        ("GET", f"{prefix}?per_page=100"),
        ("GET", f"{prefix}?per_page=2&page=2"),
        ("PATCH", f"/repos/acme/digits/issues/comments/{ours['id']}"),
    ]
    assert len(api.comments[PR_NUMBER]) == 4 and ours["user"] == BOT
    assert api.comments[PR_NUMBER][0]["body"] == f"{MARKER}\nforged: ✅ Accepted"
    # the body is main's rendering of the uploaded data; the PR comes from a fork
    expected = render_report(
        data_of(pr_run), origin=ReportOrigin(conclusion="success", fork=True, run_url=RUN_URL)
    )
    assert ours["body"] == f"{MARKER}\n{expected}"
    assert "**Built by the PR's own code.**" in expected and "✅ **Accepted**" in expected
    for run in (first, second):  # the default engine: no npm, no CML, no gh
        assert run.calls_of("npm") == [] and run.calls_of("cml") == []


FORGED = ReportData(
    metrics_diff={
        "metrics/quality.json": {
            "accuracy": {"old": 0.97, "new": 0.99},
            "@acme/maintainers <img src=x onerror=alert(1)>": {"old": 1, "new": 2},
            "x\n::warning::forged": {"old": 1, "new": 1},
        }
    },
    params_diff={"params.yaml": {"lr": {"old": 0.1, "new": "[go](javascript:alert(1)) #1"}}},
    gate=GateVerdict(accepted=True, summary="accepted", reasons=["\n\n✅ **Accepted**\n## LGTM"]),
)


def forged_artifact(dest: Path, head: str, meta_extra: dict[str, Any] | None = None) -> Path:
    folder = dest / "pr-report"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(FORGED.to_json()))
    meta = {"pr_number": PR_NUMBER, "head_sha": head, "base_sha": None, **(meta_extra or {})}
    (folder / "pr.json").write_text(json.dumps(meta))
    return dest


def test_c_a_forged_fork_report_is_rendered_harmless_and_shown_failed(
    work: Path, main_repo: Path
) -> None:
    head = "c" * 40
    artifacts = forged_artifact(work / "forged", head)
    with serve(FakeGitHub(heads={PR_NUMBER: head})) as api:
        run = run_comment(main_repo, work / "run-forged", artifacts, api, head, "failure")
    assert run.returncode == 0, run.log[-5000:]
    (posted,) = api.comments[PR_NUMBER]
    body = posted["body"]
    assert "❌ **PR check failed**: the PR workflow run ended in `failure`" in body
    assert "✅ **Accepted**" not in body and "**Built by the PR's own code.**" in body
    assert "<img" not in body and "@acme/maintainers" not in body
    assert_harmless(body, "acme/digits")
    assert [line for line in body.splitlines() if line.startswith("#")] == [
        "## 🔬 Model report",
        "### Metrics",
        "### Serving cost",
        "### Params changed",
        "### Data",
        "### Plots",
        "#### Training curves",
        "### Reproducibility",
    ]


def test_c_a_forged_key_reaches_the_log_escaped_and_nothing_is_posted(
    work: Path, main_repo: Path
) -> None:
    head = "c" * 40
    artifacts = forged_artifact(work / "forged-key", head, {"x\n::warning::forged": 1})
    with serve(FakeGitHub(heads={PR_NUMBER: head})) as api:
        run = run_comment(main_repo, work / "run-forged-key", artifacts, api, head, "success")
    assert run.returncode != 0
    assert run.step_failed("Validate the report and the PR it names, and render it")
    assert "pr.json has unexpected keys: x%0A:%3Awarning:%3Aforged" in run.log
    assert "::warning::forged" not in run.log
    assert not any(line.rstrip().endswith("| forged") for line in run.log.splitlines())
    assert api.requests == []


def test_c_no_comment_for_a_pr_that_moved_on(
    work: Path, main_repo: Path, tuned: dict[str, Any]
) -> None:
    with serve(FakeGitHub(heads={PR_NUMBER: "f" * 40})) as api:
        run = run_comment(
            main_repo,
            work / "run-comment-stale",
            tuned["run"].artifacts,
            api,
            tuned["head"],
            "success",
        )
    assert run.returncode == 0, run.log[-5000:]
    assert api.calls() == [("GET", f"/repos/acme/digits/pulls/{PR_NUMBER}")]
    assert "::notice title=Newer commit::PR #7 is now at ffffffffffff" in run.log
