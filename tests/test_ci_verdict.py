"""The gate as a CI check: a rejection fails the job with the reasons as annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.records import GateVerdict

REJECTED = {
    "accepted": False,
    "reasons": ["accuracy 0.1022 is below the minimum 0.97"],
    "summary": "not accepted: 1 of 5 rules failed: accuracy",
}


def test_rejected_verdict_fails_with_error_annotations(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(REJECTED))
    assert main(["ci", "verdict", "--file", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "::error title=Acceptance gate::accuracy 0.1022 is below the minimum 0.97",
        "::error title=Acceptance gate::not accepted: 1 of 5 rules failed: accuracy",
    ]


def test_accepted_verdict_passes(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({**REJECTED, "accepted": True, "reasons": []}))
    assert main(["ci", "verdict", "--file", str(path)]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "not found"), ("{", "not valid JSON"), ('{"accepted": "yes"}', "no boolean")],
)
def test_missing_or_broken_verdict_is_a_clear_error(tmp_path: Path, text, message) -> None:
    path = tmp_path / "gate.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError, match=message):
        GateVerdict.read(path)
