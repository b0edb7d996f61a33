"""`mlops`: exit codes, and commands imported only when used (so the light ones stay fast)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from mlops_template import cli
from mlops_template.errors import UserError

HEAVY = ("pandas", "sklearn", "bentoml", "tensorflow", "lightgbm")


def test_help_summary_and_ci_verdict_import_no_heavy_library(tmp_path) -> None:
    code = (
        "import sys\n"
        "from mlops_template import cli\n"
        "assert cli.main(['--help']) == 0\n"
        "assert cli.main(['ci', 'verdict', '--help']) == 0\n"
        "assert cli.main(['summary']) == 0\n"
        "assert cli.main(['ci', 'verdict', '--file', 'none.json']) == 2\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert "error: none.json not found" in done.stderr and "Traceback" not in done.stderr


def test_the_listing_names_every_command_without_importing_it() -> None:
    listed = cli.mlops.list_commands(click.Context(cli.mlops))
    assert listed == [*cli.COMMANDS, *sorted(cli.mlops.commands)]  # then the groups, sorted
    assert {"ci", "release", "deploy"} <= set(cli.mlops.commands)


@pytest.mark.parametrize(
    ("raised", "status"),
    [(UserError("broken", "mend it"), 2), (KeyboardInterrupt(), 130)],
)
def test_exit_status_of_mistakes_and_ctrl_c(monkeypatch, capsys, raised, status) -> None:
    from mlops_template.stages import summary

    def fail(stale: object = None) -> None:
        raise raised

    monkeypatch.setattr(summary, "summary_lines", fail)
    assert cli.main(["summary"]) == status
    err = capsys.readouterr().err
    if status == 2:
        assert err == "error: broken\nfix: mend it\n"
