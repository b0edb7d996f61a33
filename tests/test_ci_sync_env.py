"""The setup action's `uv sync` command: decided from params.yaml before anything is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_template import envspec
from mlops_template.ci import sync_env

SCRIPT = Path(sync_env.__file__)
PARAMS = "train:\n  family: {family}   # a comment\n  seed: 1\nci:\n  family: x\n"
# Whatever families the project has (a fork may replace them all): one that needs an extra of
# its own, one that needs none.
_EXTRAS = envspec.extras()
HEAVY = next((f for f in envspec.family_names() if f in _EXTRAS), None)
LIGHT = next((f for f in envspec.family_names() if f not in _EXTRAS), None)
needs_both = pytest.mark.skipif(
    HEAVY is None or LIGHT is None,
    reason="needs a family with an extra and one without",
)


@pytest.fixture
def params(tmp_path: Path):
    def write(family: str) -> Path:
        path = tmp_path / "params.yaml"
        path.write_text(PARAMS.format(family=family))
        return path

    return write


@needs_both
def test_auto_adds_an_extra_only_for_the_family_that_needs_it(params) -> None:
    assert sync_env.sync_argv("auto", True, params(HEAVY)) == [
        "uv",
        "sync",
        "--locked",
        "--extra",
        HEAVY,
    ]
    assert sync_env.sync_argv("auto", True, params(LIGHT)) == ["uv", "sync", "--locked"]


@needs_both
def test_named_extras_none_and_no_dev(params) -> None:
    argv = sync_env.sync_argv(f"auto s3 {HEAVY}", False, params(HEAVY))
    assert argv == ["uv", "sync", "--locked", "--extra", HEAVY, "--extra", "s3", "--no-dev"]
    assert sync_env.sync_argv("none", True, params(HEAVY)) == ["uv", "sync", "--locked"]


def test_auto_with_an_unknown_family_is_refused_before_uv_runs(params) -> None:
    with pytest.raises(SystemExit, match=r"train\.family 'torch'"):
        sync_env.sync_argv("auto", True, params("torch"))


@needs_both
def test_an_extra_that_is_not_a_name_is_refused(params) -> None:
    with pytest.raises(SystemExit, match="not a valid name"):
        sync_env.sync_argv("auto --index-url=http://evil", True, params(LIGHT))


@needs_both
def test_runs_as_a_plain_file_with_the_standard_library_only(params, tmp_path: Path) -> None:
    """`python -I` (no site-packages): what the setup action runs before `uv sync`."""
    params(HEAVY)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uv").write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" > "$(dirname "$0")/argv"\n')
    (fake_bin / "uv").chmod(0o755)
    env = {
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_PATH": str(tmp_path / "path.txt"),
        "GITHUB_OUTPUT": str(tmp_path / "out.txt"),
    }
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), "--extras", "auto", "--dev", "false"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (fake_bin / "argv").read_text().split() == [
        "sync",
        "--locked",
        "--extra",
        HEAVY,
        "--no-dev",
    ]
    assert (tmp_path / "path.txt").read_text() == f"{tmp_path / '.venv' / 'bin'}\n"
    assert "extras<<" in (tmp_path / "out.txt").read_text()
    assert HEAVY in (tmp_path / "out.txt").read_text().splitlines()[1]
