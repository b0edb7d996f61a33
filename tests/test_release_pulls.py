"""`mlops release verify-pulls`: the release's DVC remote re-hashes what it sends (real DVC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow  # real DVC commands, about a second each


def run(repo: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """`command` in `repo` with a minimal environment: this venv's dvc first on PATH, nothing
    that earlier tests in the same worker left behind."""
    keep = ("HOME", "LANG", "TMPDIR", "SSL_CERT_FILE")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env |= {"PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    assert run(tmp_path, str(BIN / "dvc"), "init", "--no-scm", "-q").returncode == 0
    return tmp_path


def verify_setting(repo: Path, remote: str, level: str) -> str:
    return run(repo, str(BIN / "dvc"), "config", level, f"remote.{remote}.verify").stdout.strip()


def test_the_default_remote_verifies_in_the_local_config_only(repo: Path) -> None:
    dvc = str(BIN / "dvc")
    assert run(repo, dvc, "remote", "add", "-d", "storage", str(repo / "bucket")).returncode == 0
    assert run(repo, dvc, "remote", "add", "backup", str(repo / "other")).returncode == 0
    committed = (repo / ".dvc" / "config").read_text()

    done = run(repo, str(BIN / "mlops"), "release", "verify-pulls")

    assert done.returncode == 0, done.stderr
    assert "DVC remote 'storage': every pulled object is re-hashed" in done.stdout
    assert verify_setting(repo, "storage", "--local") == "true"
    assert verify_setting(repo, "backup", "--local") == ""  # the release pulls from the default
    assert (repo / ".dvc" / "config").read_text() == committed  # nothing to commit


def test_without_a_remote_it_says_so_and_changes_nothing(repo: Path) -> None:
    done = run(repo, str(BIN / "mlops"), "release", "verify-pulls")
    assert done.returncode == 0, done.stderr
    assert "no DVC remote" in done.stdout
    assert not (repo / ".dvc" / "config.local").exists()


def test_two_remotes_and_no_default_is_a_message_not_a_silent_skip(repo: Path) -> None:
    dvc = str(BIN / "dvc")
    assert run(repo, dvc, "remote", "add", "storage", str(repo / "bucket")).returncode == 0
    assert run(repo, dvc, "remote", "add", "backup", str(repo / "other")).returncode == 0

    done = run(repo, str(BIN / "mlops"), "release", "verify-pulls")

    assert done.returncode == 2
    assert "DVC has 2 remotes (backup, storage) and none is the default" in done.stderr
    assert "fix: choose one: `dvc remote default NAME`" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo / ".dvc" / "config.local").exists()
