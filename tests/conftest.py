"""Shared test settings: telemetry off, git isolated from the user's configuration."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlops_template.contract import ModelFamily

os.environ.update(
    {
        "BENTOML_DO_NOT_TRACK": "true",
        "DVC_NO_ANALYTICS": "1",
        "ITERATIVE_DO_NOT_TRACK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Commits made by tests (module fixtures included) never depend on, or touch, the
        # machine's git configuration.
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        # The locked environment's commands (dvc, mlops, bentoml) come first, also when pytest
        # runs as `.venv/bin/python -m pytest` without an activated venv.
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
)


@pytest.fixture(scope="session", autouse=True)
def _shared_builds(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where a build several test modules need (a reproduced template repo) is made once per
    run: the temp root all xdist workers of this run share, else this session's own."""
    import project

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    project.SHARED_BUILDS = shared / "shared-builds"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> type[ModelFamily]:
    """The tests' own model family (tests/tiny_family.py), registered as `tiny` for one test."""
    import tiny_family

    from mlops_template import contract

    monkeypatch.setitem(contract._REGISTERED, "tiny", tiny_family.Family)
    return tiny_family.Family
