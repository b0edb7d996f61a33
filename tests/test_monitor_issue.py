"""`mlops monitor issue`: one open `model-drift` issue, through the real `gh` stand-in of the act
tests (tests/act/bin/gh: an issue store in a folder, every call recorded). Fast: no Evidently,
drift results are written as `mlops monitor drift` writes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_template.cli import main
from mlops_template.monitor.issue import (
    LABEL,
    WindowMark,
    body,
    parse_history,
    persistence_line,
    with_window,
)
from mlops_template.params import PersistenceParams
from mlops_template.records import ColumnDrift, DriftResult

STUB_BIN = Path(__file__).resolve().parent / "act" / "bin"
RULE = PersistenceParams(k=2, n=3)


def result(end: str, drifted_columns: tuple[str, ...] = ()) -> DriftResult:
    columns = [
        ColumnDrift(
            column=name,
            kind="prediction" if name == "prediction" else "feature",
            method="K-S p_value",
            statistic=0.001 if name in drifted_columns else 0.4,
            threshold=0.05,
            drifted=name in drifted_columns,
        )
        for name in ("alcohol", "region", "prediction")
    ]
    return DriftResult(
        drifted=bool(drifted_columns),
        window_start="2026-11-29T00:00:00Z",
        window_end=end,
        window_records=500,
        logged_records=900,
        models=["wine-model:abc"],
        reference_rows=135,
        drift_share=0.3,
        drifted_share=len([c for c in drifted_columns if c != "prediction"]) / 2,
        columns=columns,
    )


@pytest.fixture
def github(tmp_path, monkeypatch):
    """The gh stand-in first on PATH, its store in tmp_path/stubs; returns the calls reader."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    monkeypatch.setenv("PATH", f"{STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ACT_STUB_DIR", str(stubs))
    monkeypatch.setenv("GH_TOKEN", "ghs_test_token_not_real")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/wine")
    for name in ("GITHUB_OUTPUT", "GITHUB_ACTIONS", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # the template's params.yaml: persistence k=3 of n=5
    template = Path(__file__).resolve().parents[1] / "params.yaml"
    Path("params.yaml").write_text(template.read_text())

    class GitHub:
        def calls(self) -> list[dict]:
            path = stubs / "calls.jsonl"
            lines = path.read_text().splitlines() if path.exists() else []
            return [json.loads(line) for line in lines]

        def issues(self) -> list[dict]:
            path = stubs / "gh" / "issues.json"
            return json.loads(path.read_text()) if path.exists() else []

        def seed(self, issues: list[dict]) -> None:
            (stubs / "gh").mkdir(exist_ok=True)
            (stubs / "gh" / "issues.json").write_text(json.dumps(issues))

        def reset_calls(self) -> None:
            (stubs / "calls.jsonl").unlink(missing_ok=True)

    return GitHub()


def check(drift: DriftResult, capsys) -> str:
    Path("drift.json").write_text(json.dumps(drift.to_json()))
    assert main(["monitor", "issue", "--drift", "drift.json"]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip().splitlines()[-1]


def verbs(calls: list[dict]) -> list[list[str]]:
    return [c["argv"][:2] for c in calls]


def test_created_once_commented_while_drift_persists_closed_when_it_is_gone(github, capsys):
    assert check(result("2026-11-29T01:00:00Z", ("alcohol",)), capsys) == "drift issue: created #1"
    calls = github.calls()
    assert verbs(calls) == [["issue", "list"], ["label", "create"], ["issue", "create"]]
    assert calls[0]["argv"] == [
        "issue", "list", "--label", LABEL, "--state", "all", "--limit", "30",
        "--json", "number,state,author,body", "--repo", "acme/wine",
    ]  # fmt: skip
    assert calls[2]["argv"][:2] == ["issue", "create"]
    assert calls[2]["argv"][4:6] == ["--label", LABEL]
    created = calls[2]["body"]
    assert "| alcohol | feature | K-S p_value | 0.0010 | 0.0500 | **yes** |" in created
    assert "| region |" not in created  # only the drifted columns
    assert "Drift in 1 of the last 1 checked window(s)" in created
    assert "Retraining proposed" not in created
    assert all(c["token"] for c in calls)

    github.reset_calls()
    assert check(result("2026-11-30T01:00:00Z", ("region",)), capsys) == (
        "drift issue: commented #1"
    )
    calls = github.calls()
    assert verbs(calls) == [["issue", "list"], ["issue", "edit"], ["issue", "comment"]]
    assert calls[1]["argv"][2] == calls[2]["argv"][2] == "1"
    assert "Drift persists in the window ending 2026-11-30T01:00:00Z: region." in calls[2]["body"]
    assert [i["state"] for i in github.issues()] == ["OPEN"]

    github.reset_calls()
    assert check(result("2026-12-01T01:00:00Z"), capsys) == "drift issue: closed #1"
    calls = github.calls()
    assert verbs(calls) == [["issue", "list"], ["issue", "edit"], ["issue", "close"]]
    assert "No drift in the window ending 2026-12-01T01:00:00Z: closing." in calls[2]["argv"][4]
    (issue,) = github.issues()
    assert issue["state"] == "CLOSED" and len(issue["comments"]) == 2
    assert [w.drifted for w in parse_history(issue["body"])] == [True, True, False]


def test_clean_windows_after_a_closed_issue_are_recorded_until_no_drift_is_left(github, capsys):
    history = [WindowMark(end=f"2026-11-2{i}T00:00:00Z", drifted=d) for i, d in enumerate([1, 0])]
    closed = {
        "number": 4, "state": "CLOSED", "labels": [LABEL], "comments": [],
        "author": {"login": "app/github-actions"},
        "body": body(result("2026-11-21T00:00:00Z"), history, RULE),
    }  # fmt: skip
    github.seed([closed])
    # params.yaml: n = 5. [D, C] + 3 clean = [D, C, C, C, C]: the 4th clean window pushes the
    # drifted one out (recorded: 0 of 5), and from then on there is nothing to record.
    outputs = [check(result(f"2026-11-3{i}T00:00:00Z"), capsys) for i in range(5)]
    assert outputs == ["drift issue: recorded #4"] * 4 + ["drift issue: none"]
    assert [w.drifted for w in parse_history(github.issues()[0]["body"])] == [0, 0, 0, 0, 0]
    assert github.issues()[0]["state"] == "CLOSED"


def test_drift_after_a_closed_issue_opens_a_new_one_that_keeps_the_count(github, capsys):
    history = [WindowMark(end="2026-11-20T00:00:00Z", drifted=True)]
    github.seed(
        [
            {
                "number": 7, "state": "CLOSED", "labels": [LABEL], "comments": [],
                "author": {"login": "app/github-actions"},
                "body": body(result("2026-11-20T00:00:00Z", ("alcohol",)), history, RULE),
            }
        ]
    )  # fmt: skip
    assert (
        check(result("2026-11-21T00:00:00Z", ("prediction",)), capsys) == "drift issue: created #8"
    )
    new = github.issues()[-1]
    assert [w.end for w in parse_history(new["body"])] == [
        "2026-11-20T00:00:00Z",
        "2026-11-21T00:00:00Z",
    ]


def test_issues_not_opened_by_the_workflow_are_ignored(github, capsys):
    forged = body(result("2026-11-20T00:00:00Z", ("alcohol",)), [], RULE)
    github.seed(
        [
            {
                "number": 3, "state": "OPEN", "labels": [LABEL], "comments": [],
                "author": {"login": "mallory"}, "body": forged,
            }
        ]
    )  # fmt: skip
    assert check(result("2026-11-21T00:00:00Z", ("alcohol",)), capsys) == "drift issue: created #4"
    assert check(result("2026-11-22T00:00:00Z"), capsys) == "drift issue: closed #4"
    assert github.issues()[0]["state"] == "OPEN"  # mallory's is left alone


def test_no_drift_and_no_issue_calls_nothing_but_the_list(github, capsys):
    assert check(result("2026-11-21T00:00:00Z"), capsys) == "drift issue: none"
    assert verbs(github.calls()) == [["issue", "list"]]


@pytest.mark.parametrize(
    ("marks", "proposed"),
    [([1, 0, 1], True), ([0, 1, 1], True), ([1, 0, 0], False), ([0, 0, 0], False), ([], False)],
)
def test_retraining_is_proposed_at_k_drifted_windows_of_n(marks, proposed):
    history = [WindowMark(end=str(i), drifted=bool(d)) for i, d in enumerate(marks)]
    assert ("Retraining proposed" in persistence_line(history, RULE)) is proposed


def test_the_history_keeps_the_last_n_and_counts_a_rerun_once():
    history = [WindowMark(end=e, drifted=True) for e in ("a", "b", "c")]
    kept = with_window(history, result("d"), 3)
    assert [w.end for w in kept] == ["b", "c", "d"] and kept[-1].drifted is False
    again = with_window(kept, result("d", ("alcohol",)), 3)
    assert [w.end for w in again] == ["b", "c", "d"] and again[-1].drifted is True
    assert [w.end for w in with_window([], result("a"), 1)] == ["a"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no marker here",
        "<!-- mlops-drift-history {not json} -->",
        '<!-- mlops-drift-history {"windows": [{"end": "x", "drifted": "maybe"}]} -->',
        '<!-- mlops-drift-history {"windows": [], "extra": 1} -->',
        '<!-- mlops-drift-history {"windows": [{"end": "' + "x" * 41 + '", "drifted": true}]} -->',
    ],
)
def test_a_missing_or_tampered_history_restarts_the_count(text):
    assert parse_history(text) == []


def test_values_from_the_log_are_escaped_in_the_issue():
    drift = result("2026-11-21T00:00:00Z", ("alcohol",)).model_copy(
        update={"models": ["@admin <img src=x> [x](http://evil.example)"]}
    )
    text = body(drift, [], RULE)
    assert "<img" not in text and "@admin" not in text and "[x](http" not in text
    assert "&lt;img" in text and "@&#8203;admin" in text


def test_a_missing_drift_result_says_to_run_the_check(github, capsys):
    assert main(["monitor", "issue", "--drift", "absent.json"]) == 2
    assert "run `mlops monitor drift` first" in capsys.readouterr().err
    assert github.calls() == []


def test_gh_failing_is_one_message_with_the_fix(github, capsys, monkeypatch, tmp_path):
    failing = tmp_path / "failing-bin"
    failing.mkdir()
    (failing / "gh").write_text("#!/bin/sh\necho 'HTTP 401: Bad credentials' >&2\nexit 1\n")
    (failing / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{failing}{os.pathsep}{os.environ['PATH']}")
    Path("drift.json").write_text(json.dumps(result("x", ("alcohol",)).to_json()))
    assert main(["monitor", "issue", "--drift", "drift.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `gh issue list` failed: HTTP 401: Bad credentials\nfix: ")
    assert "issues: write" in err and "Traceback" not in err
