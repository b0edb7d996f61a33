"""`mlops monitor issue`: keep ONE open GitHub issue labelled `model-drift` in step with the
drift checks, through the `gh` CLI.

- drift and no open issue: create it (the label too, if missing);
- drift and an open issue: rewrite its body with the latest window and comment that it persists;
- no drift and an open issue: rewrite its body, close it with a comment;
- no drift and no open issue: nothing, unless the last closed issue's history still holds a
  drifted window (then the clean window is recorded there, so the k-of-n count stays true).

Retraining is proposed only when `k` of the last `n` windows drifted (params.yaml
`monitor.persistence`). That history lives in the issue itself, as JSON in an HTML comment at
the top of its body: durable, visible, no extra store or permission, and carried from a closed
issue to the next one. Only issues the workflow's own bot opened are read; the history is
validated as untrusted input (a broken or edited one restarts the count, it never fails the run).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_template.ci import gha
from mlops_template.errors import UserError, run_checked
from mlops_template.monitor.report import NEXT_STEPS, column_table, verdict_line, window_line
from mlops_template.params import PersistenceParams, load_params
from mlops_template.paths import DRIFT_FILE, PARAMS_FILE
from mlops_template.records import DriftResult
from mlops_template.report.render import md_escape

LABEL = "model-drift"
TITLE = "Model drift in the production inputs"
BOTS = {"app/github-actions", "github-actions[bot]"}  # how gh names the workflow token's author
_HISTORY = re.compile(r"<!-- mlops-drift-history (\{.{0,20000}?\}) -->", re.DOTALL)
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

Action = Literal["created", "commented", "closed", "recorded", "none"]


class WindowMark(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    end: str = Field(max_length=40)
    drifted: bool


class History(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[WindowMark] = Field(max_length=1000)


@dataclass(frozen=True)
class Issue:
    number: int
    open: bool
    history: list[WindowMark]


def parse_history(body: str) -> list[WindowMark]:
    """The windows recorded in an issue body; [] when there are none or they are not ours."""
    match = _HISTORY.search(body or "")
    if not match:
        return []
    try:
        return History.model_validate_json(match.group(1)).windows
    except ValidationError:
        return []


def with_window(history: list[WindowMark], drift: DriftResult, n: int) -> list[WindowMark]:
    """The last `n` windows with this one (a re-run on the same window is not counted twice)."""
    mark = WindowMark(end=drift.window_end, drifted=drift.drifted)
    kept = [w for w in history if w.end != mark.end]
    return [*kept, mark][-n:]


def drifted_count(history: list[WindowMark]) -> int:
    return sum(w.drifted for w in history)


def decide(latest: Issue | None, drift: DriftResult) -> Action:
    is_open = latest is not None and latest.open
    if drift.drifted:
        return "commented" if is_open else "created"
    if is_open:
        return "closed"
    if latest is not None and drifted_count(latest.history):
        return "recorded"
    return "none"


def persistence_line(history: list[WindowMark], rule: PersistenceParams) -> str:
    count = drifted_count(history)
    line = (
        f"Drift in {count} of the last {len(history)} checked window(s); retraining is proposed "
        f"when {rule.k} of the last {rule.n} drift."
    )
    if count >= rule.k:
        line += (
            f"\n\n**Retraining proposed**: drift persisted in {count} of the last {len(history)} "
            "windows. Relabel a sample of recent production inputs and retrain (step 3)."
        )
    return line


def run_link() -> str:
    server, repo, run = (
        os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and _REPO.match(repo) and run.isdigit():
        return f"[monitor run {run}]({server}/{repo}/actions/runs/{run})"
    return "a local `mlops monitor issue`"


def body(drift: DriftResult, history: list[WindowMark], rule: PersistenceParams) -> str:
    marker = json.dumps(History(windows=history).model_dump(mode="json"), sort_keys=True)
    parts = [
        f"<!-- mlops-drift-history {marker} -->",
        f"## {TITLE}",
        "",
        f"**Latest window**: {verdict_line(drift)}",
        "",
        window_line(drift) + ".",
        "",
    ]
    if drift.drifted_columns:
        parts += [column_table(drift.drifted_columns), ""]
    parts += [persistence_line(history, rule), "", NEXT_STEPS, ""]
    parts.append(
        f"_Kept up to date by the Monitor workflow (last: {run_link()}); it closes this issue "
        "when a window shows no drift. Thresholds: params.yaml `monitor`._"
    )
    return "\n".join(parts) + "\n"


def comment(
    action: Action, drift: DriftResult, history: list[WindowMark], rule: PersistenceParams
) -> str:
    end = md_escape(drift.window_end)
    if action == "closed":
        return (
            f"No drift in the window ending {end}: closing. {drifted_count(history)} of the last "
            f"{len(history)} windows drifted. ({run_link()})\n"
        )
    names = ", ".join(md_escape(c.column) for c in drift.drifted_columns)
    return (
        f"Drift persists in the window ending {end}: {names}.\n\n"
        f"{persistence_line(history, rule)}\n\n({run_link()})\n"
    )


class Gh:
    """The few `gh` calls this needs; a failure is a UserError with gh's own message."""

    def __init__(self, repo: str) -> None:
        if not _REPO.match(repo or ""):
            raise UserError(f"repository {repo!r} is not owner/name", "pass --repo OWNER/NAME")
        self.repo = repo

    def run(self, *args: str, text: str | None = None) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["gh", *args, "--repo", self.repo]
            if text is not None:
                path = Path(tmp) / "body.md"
                path.write_text(text, encoding="utf-8")
                argv += ["--body-file", str(path)]
            done = run_checked(
                argv,
                "give the job `issues: write` and GH_TOKEN: ${{ github.token }}",
                missing="install gh (GitHub's CLI)",
                timeout=120,
            )
        return done.stdout

    def latest_issue(self) -> Issue | None:
        """The newest `model-drift` issue the workflow's bot opened, open or closed."""
        out = self.run(
            "issue", "list", "--label", LABEL, "--state", "all", "--limit", "30",
            "--json", "number,state,author,body",
        )  # fmt: skip
        try:
            found = json.loads(out or "[]")
        except json.JSONDecodeError:
            raise UserError("`gh issue list` did not answer JSON", "update gh") from None
        ours = [
            item
            for item in found if isinstance(item, dict)
            and (item.get("author") or {}).get("login") in BOTS
            and isinstance(item.get("number"), int)
        ]  # fmt: skip
        if not ours:
            return None
        newest: dict[str, Any] = max(ours, key=lambda item: item["number"])
        return Issue(
            number=newest["number"],
            open=str(newest.get("state", "")).upper() == "OPEN",
            history=parse_history(str(newest.get("body") or "")),
        )


def keep(gh: Gh, drift: DriftResult, rule: PersistenceParams) -> tuple[Action, int | None]:
    latest = gh.latest_issue()
    action = decide(latest, drift)
    history = with_window(latest.history if latest else [], drift, rule.n)
    text = body(drift, history, rule)
    if action == "created":
        gh.run("label", "create", LABEL, "--color", "D93F0B", "--force",
               "--description", "Production inputs drifted from the training data")  # fmt: skip
        url = gh.run("issue", "create", "--title", TITLE, "--label", LABEL, text=text).strip()
        number = url.rsplit("/", 1)[-1]
        return action, int(number) if number.isdigit() else None
    if action == "none" or latest is None:
        return action, None
    number = str(latest.number)
    gh.run("issue", "edit", number, text=text)
    if action == "commented":
        gh.run("issue", "comment", number, text=comment(action, drift, history, rule))
    elif action == "closed":
        gh.run("issue", "close", number, "--comment", comment(action, drift, history, rule))
    return action, latest.number


@click.command("issue", help=__doc__)
@click.option("--drift", "drift_file", type=click.Path(path_type=Path), default=DRIFT_FILE,
              show_default=True, help="the drift result of `mlops monitor drift`")  # fmt: skip
@click.option("--repo", envvar="GITHUB_REPOSITORY", help="owner/name (default: $GITHUB_REPOSITORY)")
@click.option("--params", type=click.Path(path_type=Path), default=PARAMS_FILE, show_default=True)
@gha.annotated("mlops monitor issue")
def issue(drift_file: Path, repo: str | None, params: Path) -> None:
    rule = load_params(params).monitor.persistence
    drift = DriftResult.read(drift_file)
    action, number = keep(Gh(repo or ""), drift, rule)
    gha.set_output("action", action)
    gha.set_output("issue", str(number or ""))
    where = f" #{number}" if number else ""
    print(f"drift issue: {action}{where}")
