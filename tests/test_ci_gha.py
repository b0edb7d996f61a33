"""Step outputs and annotations: values from a PR can never forge another output or command."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_template.ci import gha
from mlops_template.cli import main


def test_multiline_output_cannot_inject_another_output(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    gha.set_output("summary", "line one\naccepted=true")
    lines = target.read_text().splitlines()
    assert lines[0].startswith("summary<<ghadelimiter_") and len(lines[0]) > 40
    assert lines[1:3] == ["line one", "accepted=true"]
    assert lines[3] == lines[0].split("<<", 1)[1]


def test_annotation_text_is_escaped(monkeypatch, capsys) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    gha.annotate("error", "50% worse\n::add-mask::x", title="a: b, c")
    out = capsys.readouterr().out
    assert out == "::error title=a%3A b%2C c::50%25 worse%0A:%3Aadd-mask:%3Ax\n"
    assert out.count("\n") == 1


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("", ""),
        ("accuracy 0.97: ok", "accuracy 0.97: ok"),  # one colon, no command
        ("a\n::warning::forged", "a%0A:%3Awarning:%3Aforged"),
        ("::error::x", ":%3Aerror:%3Ax"),
        (":::", ":%3A:"),
        ("\r\n", "%0D%0A"),
        ("100%0A", "100%250A"),  # already-encoded text stays literal
        ("##[set-output name=x]y", "#%23[set-output name=x]y"),
        ("#1 and ## heading", "#1 and ## heading"),
    ],
)
def test_escape_keeps_text_on_one_line_with_no_command(raw: str, shown: str) -> None:
    assert gha.escape(raw) == shown
    assert "\n" not in shown and "\r" not in shown and "::" not in shown and "##[" not in shown


def test_escape_takes_any_value() -> None:
    assert gha.escape({"k\n::x": 1}) == "{'k\\n:%3Ax': 1}"


def test_env_values_must_be_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ENV", str(tmp_path / "env"))
    with pytest.raises(ValueError, match="one line"):
        gha.add_env("X", "a\nEVIL=1")
    assert not (tmp_path / "env").exists()


def test_ci_mistakes_become_error_annotations(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["ci", "verdict", "--file", str(tmp_path / "gate.json")]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(
        f"::error title=mlops ci verdict::{tmp_path}/gate.json not found"
    )
    assert "Fix: run the gate" in captured.out
    assert "error: " in captured.err and "Traceback" not in captured.err
