"""Run the project's real workflow files with act, on this machine, in a throwaway git repo.

`template_repo` makes a copy of the project (its tracked and new, not ignored, files) as a git
repo with a `main` branch; `run_workflow` runs one workflow of it with act in host mode
(`-P ubuntu-latest=-self-hosted`, no Docker) for an event payload, and returns the exit status,
the log, the artifacts uploaded and every call made to a stand-in.

What cannot exist here is replaced, never the workflow files:
- remote actions (setup-python, setup-uv, cache, upload/download-artifact) by the folders in
  tests/act/actions/, through act's `--local-repository owner/repo@sha=folder`. Each SHA is
  read from the workflows and actions themselves, so a new pin needs no change here;
- `cml`, `gh` (GitHub's API) and `npm` by tests/act/bin/, first on PATH; they record what
  they were asked (tests/act/stub.py).

The repo under test is never /work/main: act copies the temp repo into its own workspace, the
runner's caches live in the test's folder, and PATH/VIRTUAL_ENV are cleaned so no step can
reach the project's own .venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACT_DIR = Path(__file__).resolve().parent / "act"
STUB_ACTIONS = ACT_DIR / "actions"
STUB_BIN = ACT_DIR / "bin"
STUB_SCRIPT = ACT_DIR / "stub.py"
EVENTS = ACT_DIR / "events"
REPO_SLUG = "acme/digits"
FAKE_TOKEN = "ghs_test_token_not_real"
# owner/repo[/subpath] of every remote action the workflows may use -> its stand-in folder.
STUBS = {
    "actions/setup-python": STUB_ACTIONS / "setup-python",
    "astral-sh/setup-uv": STUB_ACTIONS / "setup-uv",
    "actions/cache": STUB_ACTIONS / "cache",
    "actions/upload-artifact": STUB_ACTIONS / "upload-artifact",
    "actions/download-artifact": STUB_ACTIONS / "download-artifact",
}
# act itself copies the repo in place of actions/checkout (no network, no token).
BUILT_IN = {"actions/checkout"}
_USES = re.compile(r"^([\w.-]+/[\w.-]+)(/[\w./-]+)?@([0-9a-f]{40})$")
# Commits in test repos never depend on (or touch) the machine's git configuration.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
TELEMETRY_OFF = {
    "BENTOML_DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "ITERATIVE_DO_NOT_TRACK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


@dataclass
class ActRun:
    """What one act run left behind."""

    returncode: int
    log: str
    stub_dir: Path
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def artifacts(self) -> Path:
        """Uploaded artifacts, one folder per artifact name."""
        return self.stub_dir / "artifacts"

    def calls_of(self, kind: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["kind"] == kind]

    def step_failed(self, name: str) -> bool:
        return any("Failure - Main" in line and name in line for line in self.log.splitlines())

    def step_succeeded(self, name: str) -> bool:
        return any("Success - Main" in line and name in line for line in self.log.splitlines())


# --------------------------------------------------------------------------- git repos


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=clean_env())
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


UV_BIN = shutil.which("uv")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without the project's venv, outer CI variables or user config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "UV_", "PYTEST_"))
        and key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "CI"}
    }
    path = [
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if entry and not Path(entry).resolve().is_relative_to(ROOT)
    ]
    if UV_BIN:  # uv itself stays reachable, last, even when `make` bootstrapped it in the repo
        path.append(str(Path(UV_BIN).parent))
    env["PATH"] = os.pathsep.join(path)
    env.update(TELEMETRY_OFF)
    env.update(GIT_IDENTITY)
    env.update(extra or {})
    return env


def uv_cache_dir() -> str:
    found = (
        os.environ.get("UV_CACHE_DIR")
        or subprocess.run(
            ["uv", "cache", "dir"], capture_output=True, text=True, env=clean_env()
        ).stdout.strip()
    )
    return found


def run_in(repo: Path, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command in `repo` with that repo's own .venv first on PATH (never the project's)."""
    env = clean_env({"UV_CACHE_DIR": uv_cache_dir()})
    env["PATH"] = f"{repo / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def template_repo(
    dest: Path,
    params: Mapping[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    reproduce: bool = True,
) -> Path:
    """A git repo at `dest` holding the project, on `main`, like a fresh fork of the template.

    `params` is deep-merged into params.yaml; `overrides` replaces files (path -> text). With
    `reproduce`, the repo got its own locked environment, the data, a real `dvc repro`, and a
    second commit with dvc.lock and the results, as the template's maintainers commit them.
    That reproduction is made once per test run for the same params and overrides (the act
    modules share it, tests/project.py `shared_build`); `dest` is a private copy of it (git
    history, data, DVC cache and outputs; not the environment, which act runs install anew).
    """
    from project import copy_project, shared_build  # tests/ (pytest puts it on sys.path)

    if not reproduce:
        dest.mkdir(parents=True, exist_ok=True)
        copy_project(dest, dict(params or {}), dict(overrides or {}))
        git(dest, "remote", "add", "origin", f"https://github.com/{REPO_SLUG}.git")
        return dest
    with shared_build("template", [params, overrides]) as (built, done):
        if not done:
            template_repo(built, params, overrides, reproduce=False)
            run_in(built, ["uv", "sync", "--locked", "--no-dev", "--quiet"])
            run_in(built, ["mlops", "data"])
            run_in(built, ["dvc", "repro"])
            git(built, "add", "-A")
            git(built, "commit", "-q", "-m", "reproduce the pipeline")
    shutil.copytree(built, dest, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    return dest


def clone(src: Path, dest: Path) -> Path:
    """A clone of `src` (all branches) with the same `origin` URL, so act sees the same repo."""
    git(src.parent, "clone", "-q", "--no-local", str(src), str(dest))
    git(dest, "remote", "set-url", "origin", f"https://github.com/{REPO_SLUG}.git")
    return dest


# --------------------------------------------------------------------------- events


def event_payload(name: str, **values: Any) -> dict[str, Any]:
    """tests/act/events/<name>.json with each "{key}" string replaced by values[key]."""
    text = (EVENTS / f"{name}.json").read_text()

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        if isinstance(node, str) and node.startswith("{") and node.endswith("}"):
            return values[node[1:-1]]
        return node

    return fill(json.loads(text))


# --------------------------------------------------------------------------- act


def remote_uses(repo: Path, workflow: str) -> set[tuple[str, str]]:
    """(owner/repo, sha) of every remote action the workflow and its local actions use."""
    found: set[tuple[str, str]] = set()
    pending = [repo / ".github" / "workflows" / workflow]
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for uses in _all_uses(yaml.safe_load(path.read_text())):
            if uses.startswith("./"):
                pending.append(repo / uses[2:] / "action.yml")
            elif match := _USES.match(uses):
                found.add((match.group(1), match.group(3)))
            elif not uses.startswith("docker://"):
                raise AssertionError(f"{path}: `uses: {uses}` is neither local nor SHA-pinned")
    return found


def _all_uses(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from _all_uses(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_uses(value)


def run_workflow(
    repo: Path,
    workflow: str,
    event: str,
    payload: Mapping[str, Any],
    work: Path,
    *,
    job: str | None = None,
    artifacts: Path | None = None,
    cache: Path | None = None,
    gh_answers: Mapping[str, Any] | None = None,
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    act_env: Mapping[str, str] | None = None,
    token: str | None = FAKE_TOKEN,
    stubs: Mapping[str, Path] | None = None,
    secrets: Mapping[str, str] | None = None,
    seed: Path | None = None,
    timeout: float = 900,
) -> ActRun:
    """Run .github/workflows/<workflow> of `repo` (as checked out) with act for `event`.

    `work` is a fresh folder the test owns: stand-in records, artifacts and act's own caches go
    there. `artifacts` (folder of <name>/ folders) and `cache` (folder of <key>/ folders) seed
    the download-artifact and cache stand-ins; `gh_answers` maps an API path
    (`repos/acme/digits/pulls/7`) to the JSON `gh api` answers. `stubs` adds stand-in
    folders for more remote actions (owner/repo -> folder with an action.yml), e.g. for a
    release workflow's docker or release actions. `variables` are repository variables
    (`vars.X`), `secrets` more secrets (`secrets.X`), `env` extra environment for the run,
    `act_env` variables act sets in the job as GitHub would (`GITHUB_API_URL` pointed at a fake
    API), `token` the job's GITHUB_TOKEN. `seed` is a folder copied into the stand-ins' folder first
    (e.g. `releases/<tag>/` for `gh release download`, `attested.json` for `gh attestation`).
    """
    stub_dir = work / "stubs"
    stub_dir.mkdir(parents=True)
    if seed is not None:
        shutil.copytree(seed, stub_dir, dirs_exist_ok=True)
    if artifacts is not None:
        shutil.copytree(artifacts, stub_dir / "artifacts")
    if cache is not None:
        shutil.copytree(cache, stub_dir / "cache", symlinks=True)
    for path, answer in (gh_answers or {}).items():
        (stub_dir / "gh").mkdir(exist_ok=True)
        (stub_dir / "gh" / (path.replace("/", "_") + ".json")).write_text(json.dumps(answer))
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))

    act = Path(sys.executable).parent / "act"
    cmd = [
        str(act),
        event,
        "-W",
        f".github/workflows/{workflow}",
        "-e",
        str(event_file),
        "-P",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--action-offline-mode",
        "--env",
        f"ACT_STUB_DIR={stub_dir}",
        "--env",
        f"ACT_STUB_SCRIPT={STUB_SCRIPT}",
    ]
    folders = {**STUBS, **(stubs or {})}
    for name, sha in sorted(remote_uses(repo, workflow)):
        if name in BUILT_IN:
            continue
        if name not in folders:
            raise AssertionError(f"no stand-in for {name}: pass one in `stubs`")
        cmd += ["--local-repository", f"{name}@{sha}={folders[name]}"]
    if job:
        cmd += ["-j", job]
    if token:
        cmd += ["-s", f"GITHUB_TOKEN={token}"]
    for name, value in (secrets or {}).items():
        cmd += ["-s", f"{name}={value}"]
    for name, value in (variables or {}).items():
        cmd += ["--var", f"{name}={value}"]
    for name, value in (act_env or {}).items():
        cmd += ["--env", f"{name}={value}"]
    run_env = clean_env(
        {
            "XDG_CACHE_HOME": str(work / "xdg-cache"),  # act's workspaces and DVC's site cache
            "UV_CACHE_DIR": uv_cache_dir(),  # a warm uv cache: `uv sync` links, not downloads
            **(env or {}),
        }
    )
    run_env["PATH"] = f"{STUB_BIN}{os.pathsep}{run_env['PATH']}"
    done = subprocess.run(
        cmd,
        cwd=repo,
        env=run_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = done.stdout + done.stderr
    (work / "act.log").write_text(log)
    calls_file = stub_dir / "calls.jsonl"
    calls = (
        [json.loads(line) for line in calls_file.read_text().splitlines()]
        if calls_file.exists()
        else []
    )
    return ActRun(returncode=done.returncode, log=log, stub_dir=stub_dir, calls=calls)
