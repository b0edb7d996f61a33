"""The workflows and composite actions, read as files: secure defaults and valid schemas."""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / "actions").glob("*/action.yml"))
STUB_ACTIONS = sorted((ROOT / "tests" / "act" / "actions").rglob("action.yml"))
PINNED = ROOT / ".github" / "pinned-actions.md"  # the vetted pins, kept in the repository
BIN = Path(sys.executable).parent
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(?:#\s*(\S+))?")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as True
        data["on"] = data.pop(True)
    return data


def steps(path: Path) -> list[dict[str, Any]]:
    data = load(path)
    if "jobs" in data:
        return [step for job in data["jobs"].values() for step in job.get("steps", [])]
    return data["runs"].get("steps", [])


def pins() -> dict[str, tuple[str, str]]:
    """owner/repo -> (tag, sha) from the repository's table of vetted pins."""
    table = {}
    for line in PINNED.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[0-9a-f]{40}", cells[2]):
            table[cells[0]] = (cells[1], cells[2])
    return table


def test_the_pin_table_is_in_the_repository_and_well_formed() -> None:
    table = pins()
    assert "actions/checkout" in table and len(table) >= 5
    rows = [line for line in PINNED.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == len(table) + 1  # the header, then one row per action, none malformed
    for repo, (tag, _) in table.items():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo), repo
        assert re.fullmatch(r"v\d+(\.\d+)*", tag), f"{repo}: {tag}"


def test_workflows_and_actions_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"pr.yml", "comment.yml", "main.yml", "lint.yml"} <= names
    assert {path.parent.name for path in ACTIONS} >= {"setup", "repro", "gate", "report", "comment"}


def test_zizmor_pedantic_finds_nothing() -> None:
    done = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--persona", "pedantic", "--no-progress", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", ACTIONS + STUB_ACTIONS),
    ],
    ids=["workflows", "actions"],
)
def test_schemas(schema: str, files: list[Path]) -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_uses_is_local_or_a_vetted_sha_with_its_tag(path: Path) -> None:
    table = pins()
    for line in path.read_text().splitlines():
        match = USES_LINE.match(line)
        if not match:
            continue
        uses, tag = match.groups()
        if uses.startswith("./"):
            assert (ROOT / uses[2:] / "action.yml").exists(), uses
            continue
        name, _, sha = uses.partition("@")
        repo = "/".join(name.split("/")[:2])
        assert repo in table, f"{path.name}: {uses} is not in .github/pinned-actions.md"
        assert (tag, sha) == table[repo], f"{path.name}: {uses} # {tag} != {table[repo]}"


def test_top_level_permissions_are_empty_and_jobs_have_timeouts() -> None:
    for path in WORKFLOWS:
        data = load(path)
        assert data["permissions"] == {}, path.name
        assert "pull_request_target" not in data["on"], path.name
        for name, job in data["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name}"
            assert "permissions" in job, f"{path.name}:{name} must declare its permissions"


def test_checkouts_never_persist_credentials() -> None:
    for path in WORKFLOWS + ACTIONS:
        for step in steps(path):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, path.name


def test_untrusted_values_reach_shells_only_through_env() -> None:
    """No `${{ }}` inside any `run:` script: values go through `env:` (template injection)."""
    for path in WORKFLOWS + ACTIONS + STUB_ACTIONS:
        for step in steps(path):
            assert "${{" not in str(step.get("run", "")), f"{path}: {step.get('name')}"


def test_actions_document_every_input_and_output_and_never_read_secrets() -> None:
    for path in ACTIONS:
        text = path.read_text()
        assert "secrets." not in text, path
        data = load(path)
        assert data.get("description"), path
        for kind in ("inputs", "outputs"):
            for name, spec in (data.get(kind) or {}).items():
                assert spec.get("description"), f"{path.parent.name}: {kind} {name}"
        for step in data["runs"]["steps"]:
            if "run" in step:
                assert step.get("shell") == "bash", f"{path.parent.name}: {step.get('name')}"


def test_pr_workflow_is_read_only_and_secret_free() -> None:
    path = ROOT / ".github" / "workflows" / "pr.yml"
    assert "secrets." not in path.read_text()
    data = load(path)
    assert list(data["on"]) == ["pull_request"]
    assert data["concurrency"]["cancel-in-progress"] is True
    for job in data["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
    model = steps(path)
    upload = next(s for s in model if str(s.get("uses", "")).startswith("actions/upload-"))
    fail = model[-1]
    assert model.index(upload) < len(model) - 1, "the report is uploaded before the job fails"
    assert fail["run"].startswith("mlops ci verdict")
    assert "--repro build/ci/repro.json" in fail["run"], "stale committed results fail the PR"
    assert "if" not in fail, "the last step always judges (the gate and the reproducibility)"


def test_comment_workflow_never_checks_out_pr_code() -> None:
    path = ROOT / ".github" / "workflows" / "comment.yml"
    data = load(path)
    assert list(data["on"]) == ["workflow_run"]
    (job,) = data["jobs"].values()
    assert job["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "write",
    }
    checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/c"))
    assert set(checkout["with"]) == {"persist-credentials"}  # no ref/repository: default branch
    assert "ref:" not in path.read_text()
    download = next(s for s in job["steps"] if "download-artifact" in str(s.get("uses", "")))
    assert download["with"]["path"].startswith("${{ runner.temp }}")  # outside the workspace


def test_no_pr_facing_workflow_gets_an_oidc_token() -> None:
    """Cloud access (OIDC) only where main's or a release's trusted code runs."""
    for name in ("pr.yml", "comment.yml", "lint.yml"):
        for job in load(ROOT / ".github" / "workflows" / name)["jobs"].values():
            assert "id-token" not in job["permissions"], name


def test_every_command_the_yaml_runs_exists() -> None:
    """The actions and workflows run `mlops ...`: each command they name is wired into the CLI,
    and every command the CLI lists imports to a click command."""
    import click

    from mlops_template import cli

    groups = {  # every command group the CLI has (ci, release, deploy, ...)
        name: group.lazy
        for name, group in cli.mlops.commands.items()
        if isinstance(group, cli.LazyGroup)
    }
    files = [*ROOT.glob("actions/*/action.yml"), *(ROOT / ".github" / "workflows").glob("*.yml")]
    used = set()
    for path in files:
        for match in re.finditer(r"\bmlops ([a-z]+)(?: ([a-z][a-z-]*))?", path.read_text()):
            name, sub = match.groups()
            assert name in cli.COMMANDS or name in groups, f"{path}: mlops {name}"
            if name in groups:
                assert sub in groups[name], f"{path}: mlops {name} {sub}"
            used.add(name)
    assert {"ci", "release", "report"} <= used
    for table in (cli.COMMANDS, *groups.values()):
        for target, _ in table.values():
            module, _, attribute = target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command), target


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.production",
        "deploy.pem",
        "tls.key",
        "credentials.json",
        "gcp-credentials.json",
    ],
)
def test_secret_files_are_never_committed_by_accident(name: str) -> None:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", name], cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, f"{name} is not in .gitignore"


def test_an_example_env_file_may_be_committed() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", ".env.example"], cwd=ROOT
    )
    assert done.returncode == 1


RULESETS = ROOT / ".github" / "rulesets"


def ruleset(name: str) -> dict[str, Any]:
    return json.loads((RULESETS / name).read_text())


def ref_matches(ref: str, patterns: list[str]) -> bool:
    """A ruleset ref pattern (fnmatch, `*` not crossing `/`) against a full ref."""
    return any(fnmatch.fnmatchcase(ref, p) and ref.count("/") == p.count("/") for p in patterns)


@pytest.mark.parametrize("name", ["release-tags.json", "release-tags-immutable.json"])
def test_release_tag_rulesets_cover_every_release_tag_and_no_stage_tag(name: str) -> None:
    from mlops_template.release.tags import try_parse

    data = ruleset(name)
    assert data["target"] == "tag" and data["enforcement"] == "active"
    patterns = data["conditions"]["ref_name"]["include"]
    for tag in ("v1.0.0", "v10.2.33", "wine@v1.0.0", "churn-model@v2.3.4"):
        assert try_parse(tag) is not None
        assert ref_matches(f"refs/tags/{tag}", patterns), tag
    for tag in ("wine#prod#1", "wine#staging#12", "nightly"):
        assert try_parse(tag) is None
        assert not ref_matches(f"refs/tags/{tag}", patterns), tag


def test_only_admins_create_release_tags_and_nobody_moves_or_deletes_them() -> None:
    create = ruleset("release-tags.json")
    assert [rule["type"] for rule in create["rules"]] == ["creation"]
    assert create["bypass_actors"] == [
        {"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}
    ]
    fixed = ruleset("release-tags-immutable.json")
    assert {rule["type"] for rule in fixed["rules"]} == {"update", "deletion", "non_fast_forward"}
    assert fixed["bypass_actors"] == []  # no one re-points a released version


def test_main_takes_reviewed_pull_requests_whose_checks_exist() -> None:
    data = ruleset("main.json")
    assert data["target"] == "branch"
    assert data["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]
    rules = {rule["type"]: rule.get("parameters", {}) for rule in data["rules"]}
    assert {"deletion", "non_fast_forward", "pull_request"} <= set(rules)
    assert rules["pull_request"]["required_approving_review_count"] >= 1
    assert data["bypass_actors"] == []
    job_names = {
        job.get("name", key)
        for path in (ROOT / ".github" / "workflows").glob("*.yml")
        if "pull_request" in load(path)["on"]
        for key, job in load(path)["jobs"].items()
    }
    checks = rules["required_status_checks"]["required_status_checks"]
    assert checks, "no required checks"
    for check in checks:
        assert check["context"] in job_names, f"{check['context']} is no job of a PR workflow"
        assert check["integration_id"] == 15368  # GitHub Actions
