"""The real monitor workflow, run by act three times on a throwaway fork of the template, with the
prediction log in a local folder (PREDICTION_LOG_URL) and `gh` a stand-in holding the issues:

1. the predictions shifted to one class: drift; the issue is created, once, with the label;
2. every feature shifted: drift again; the same issue is rewritten and commented, and retraining
   is proposed (persistence k=2 of n=3 here);
3. a window like the training data: no drift; the issue is closed with a comment.

The check job fetches the log with `dvc get-url`, builds the training split with `mlops data`
and `dvc repro prepare` and runs Evidently; only the issue job holds the token. Real: git, DVC,
Evidently, the workflow file; stand-ins: the remote actions and `gh` (tests/act/stub.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from act_harness import ActRun, event_payload, run_workflow, template_repo
from helpers_monitor import records, write_log
from project import EXAMPLE_ONLY, holds_bundled_example

from mlops_template.custom.dataset import write_example_data
from mlops_template.monitor.issue import LABEL, TITLE, parse_history

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not holds_bundled_example(), reason=EXAMPLE_ONLY),
]

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
TARGET = PARAMS["data"]["target"]
PERSISTENCE = {"k": 2, "n": 3}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act-monitor")


@pytest.fixture(scope="module")
def repo(work: Path) -> Path:
    return template_repo(
        work / "repo", params={"monitor": {"persistence": PERSISTENCE}}, reproduce=False
    )


@pytest.fixture(scope="module")
def sample(work: Path) -> pd.DataFrame:
    """500 seeded rows of the project's data: a window that looks like the training split."""
    path = work / "data.csv"
    write_example_data(path)
    return pd.read_csv(path).sample(500, random_state=1).reset_index(drop=True)


def monitor(repo: Path, work: Path, name: str, lines: list[dict], issues: list | None) -> ActRun:
    log = write_log(work / name / "log", lines, files=2)
    return run_workflow(
        repo,
        "monitor.yml",
        "workflow_dispatch",
        event_payload("monitor_dispatch"),
        work / name / "act",
        variables={"PREDICTION_LOG_URL": str(log)},
        gh_answers={"issues": issues} if issues is not None else None,
    )


def issues_after(run: ActRun) -> list[dict[str, Any]]:
    return json.loads((run.stub_dir / "gh" / "issues.json").read_text())


def gh_calls(run: ActRun) -> list[dict[str, Any]]:
    return run.calls_of("gh")


def test_created_once_updated_while_drift_persists_closed_when_it_is_gone(repo, work, sample):
    features = [c for c in sample.columns if c != TARGET]
    first_class = PARAMS["schema"]["classes"][0]

    # 1. every prediction is one class: the prediction drifts
    run = monitor(
        repo, work, "one-class", records(sample, [first_class] * len(sample), target=TARGET), None
    )
    assert run.returncode == 0, run.log[-5000:]
    calls = gh_calls(run)
    assert [c["argv"][:2] for c in calls] == [
        ["issue", "list"],
        ["label", "create"],
        ["issue", "create"],
    ]
    assert calls[2]["argv"] == [
        "issue", "create", "--title", TITLE, "--label", LABEL,
        "--repo", "acme/digits", "--body-file", calls[2]["argv"][-1],
    ]  # fmt: skip
    assert all(c["token"] for c in calls)  # GH_TOKEN in the issue job
    created = calls[2]["body"]
    assert "**Latest window**: **Drift detected** in " in created
    prediction_row = r"\n\| prediction \| prediction \| [^|]+ \| [^|]+ \| [^|]+ \| \*\*yes\*\* \|"
    assert re.search(prediction_row, created), created
    assert "Drift in 1 of the last 1 checked window(s)" in created
    assert "Retraining proposed" not in created
    drift = json.loads((run.artifacts / "drift-report" / "drift.json").read_text())
    assert drift["drifted"] is True and drift["window_records"] == len(sample)
    (issue,) = issues_after(run)
    assert issue["state"] == "OPEN" and issue["labels"] == [LABEL]

    # 2. every feature shifted: drift persists; the same issue is rewritten and commented
    shifted = sample.copy()
    shifted[features] = shifted[features] + 8
    run = monitor(repo, work, "shifted", records(shifted, target=TARGET), issues_after(run))
    assert run.returncode == 0, run.log[-5000:]
    calls = gh_calls(run)
    assert [c["argv"][:3] for c in calls] == [
        ["issue", "list", "--label"],
        ["issue", "edit", "1"],
        ["issue", "comment", "1"],
    ]
    comment = calls[2]["body"]
    assert comment.startswith("Drift persists in the window ending ")
    assert "**Retraining proposed**: drift persisted in 2 of the last 2 windows" in comment
    assert "Retraining proposed" in calls[1]["body"]
    (issue,) = issues_after(run)
    assert issue["state"] == "OPEN" and len(issue["comments"]) == 1

    # 3. a window like the training data: no drift; the issue is closed with a comment
    run = monitor(repo, work, "clean", records(sample, target=TARGET), issues_after(run))
    assert run.returncode == 0, run.log[-5000:]
    calls = gh_calls(run)
    assert [c["argv"][:3] for c in calls] == [
        ["issue", "list", "--label"],
        ["issue", "edit", "1"],
        ["issue", "close", "1"],
    ]
    assert calls[2]["argv"][3] == "--comment"
    assert calls[2]["argv"][4].startswith("No drift in the window ending ")
    (issue,) = issues_after(run)
    assert issue["state"] == "CLOSED" and len(issue["comments"]) == 2
    assert [w.drifted for w in parse_history(issue["body"])] == [True, True, False]
