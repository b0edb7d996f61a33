"""`mlops monitor fetch`: the shipped prediction log copied here with `dvc get-url` (a local
folder stands in for the bucket; the same command reads s3://, gs://, azure://)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_monitor import write_log

from mlops_template.cli import main


def test_no_url_says_which_variable_to_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREDICTION_LOG_URL", raising=False)
    assert main(["monitor", "fetch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no prediction log to fetch: PREDICTION_LOG_URL is not set\n")
    assert "repository variable PREDICTION_LOG_URL" in err


def test_an_option_like_url_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREDICTION_LOG_URL", "--help")
    assert main(["monitor", "fetch"]) == 2
    assert "is not a URL or path" in capsys.readouterr().err


@pytest.mark.slow
def test_the_log_folder_replaces_the_old_copy_whole_and_a_bad_url_keeps_it(
    tmp_path, monkeypatch, capsys
):
    """Two real `dvc get-url` calls (~5 s each)."""
    source = write_log(tmp_path / "bucket", ["{}", "{}", "{}"], files=3)
    monkeypatch.chdir(tmp_path)
    out = Path("build/monitor/log")
    out.mkdir(parents=True)
    (out / "predictions.jsonl.9").write_text("stale")
    monkeypatch.setenv("PREDICTION_LOG_URL", str(source))
    assert main(["monitor", "fetch"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "predictions.jsonl",
        "predictions.jsonl.1",
        "predictions.jsonl.2",
    ]
    assert main(["monitor", "fetch", "--url", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "could not fetch the prediction log from" in err and "Traceback" not in err
    assert len(list(out.iterdir())) == 3  # the last good copy is left as it was
    assert not list(out.parent.glob(".log-fetching*"))
