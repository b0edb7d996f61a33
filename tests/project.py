"""Helpers for tests that need a real copy of the project: a git repo, DVC, the venv's commands."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# Set by tests/conftest.py: one folder per test run, shared by its xdist workers.
SHARED_BUILDS: Path | None = None


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of the locked environment (dvc, mlops) with the venv on PATH.

    The copy's own `src/` comes first on PYTHONPATH, so its code (a family a test added, an
    edited module) is what runs, not the repository's editable install."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if (cwd / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(cwd / "src"), os.environ.get("PYTHONPATH", "")) if p
        )
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@contextlib.contextmanager
def shared_build(name: str, key: object) -> Iterator[tuple[Path, bool]]:
    """(folder, done) for a build that several modules of one test run need, keyed by what it
    depends on, under a file lock: the first caller builds it (done is False) and the others,
    in any xdist worker, wait and then read the finished folder. A half-made build (its builder
    failed) is removed so the next caller starts clean."""
    from filelock import FileLock

    if SHARED_BUILDS is None:
        raise AssertionError("tests/conftest.py sets project.SHARED_BUILDS for the session")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    folder = SHARED_BUILDS / f"{name}-{digest[:16]}"
    marker = folder.with_name(folder.name + ".done")
    SHARED_BUILDS.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.with_name(folder.name + ".lock")):
        done = marker.exists()
        if not done:
            shutil.rmtree(folder, ignore_errors=True)
        yield folder, done
        marker.touch()


# What `make run` commits on the defaults: a copy made to try another family or other rules
# starts without them, as a fresh fork would, so the gate has no baseline from the keras run.
RESULTS = ("artifacts/", "dvc.lock", "dvclive/", "metrics/", "plots/", "reports/")


def project_files(root: Path = REPO, with_results: bool = False) -> list[str]:
    """The project's files as a commit would hold them: tracked, plus new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(
        rel
        for rel in set(listed)
        if rel
        and (root / rel).is_file()
        and (with_results or not any(rel == r or rel.startswith(r) for r in RESULTS))
    )


def copy_project(
    dest: Path,
    params: dict | None = None,
    overrides: dict[str, str] | None = None,
    with_results: bool = False,
) -> Path:
    """A fresh git repo on `main` holding the project's files (not its outputs), one commit.

    `params` is deep-merged into params.yaml; `overrides` replaces files (path -> text).
    """
    for rel in project_files(with_results=with_results):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)
    for rel, text in (overrides or {}).items():
        (dest / rel).write_text(text)
    if params:
        set_params(dest, params)
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "template"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


class Replace(dict):
    """A mapping that `set_params` puts in place of the old one instead of merging into it
    (a fork's `schema` or `gate.rules` leaves none of the example's keys behind)."""


def set_params(repo: Path, changes: dict) -> None:
    """Deep-merge `changes` into repo/params.yaml (a `Replace` value replaces; None stays)."""

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if (
                isinstance(value, dict)
                and not isinstance(value, Replace)
                and isinstance(into.get(key), dict)
            ):
                merge(into[key], value)
            else:
                into[key] = plain(value)

    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    merge(params, changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


SKLEARN_FAST = {"train": {"family": "sklearn"}, "evaluate": {"latency_repeats": 20}}
KERAS_FAST = {
    "train": {"family": "keras", "keras": {"epochs": 3}},
    "evaluate": {"latency_repeats": 20},
    "gate": {"rules": {"accuracy": {"direction": "higher", "min": 0.5}}},
}


@functools.cache
def holds_bundled_example(root: Path = REPO) -> bool:
    """Whether data.dvc still records the bundled example (the act tests reproduce the
    pipeline from a fresh copy, which only the example's generator can fill without a remote).
    A fork that replaced the data skips them; see the README's "Tests"."""
    import tempfile

    from mlops_template.stages.data import recorded_hash, workspace_hash

    try:
        from mlops_template.custom.dataset import write_example_data
    except ImportError:
        return False
    data_path, md5 = recorded_hash(root / "data.dvc")
    params = yaml.safe_load((root / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / data_path / Path(params["data"]["path"]).relative_to(data_path)
        write_example_data(target)
        return workspace_hash(Path(tmp) / data_path) == md5


EXAMPLE_ONLY = (
    "the act tests reproduce the bundled example; this project's data.dvc records other data"
)
