"""The prediction-log window `mlops monitor drift` reads: rotation order, the window's bounds,
and one message with the fix for every kind of bad input (fast: no Evidently)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from helpers_monitor import MODEL, write_log

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.monitor.window import log_files, select
from mlops_template.params import MonitorParams, WindowParams, parse_params
from mlops_template.paths import DRIFT_FILE, MONITOR_DIR

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FEATURES = ["size", "colour"]


def record(minutes_ago: float, **changes) -> dict:
    base = {
        "time": (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z"),
        "model": MODEL,
        "features": {"size": minutes_ago, "colour": "red"},
        "prediction": "a",
        "confidence": 0.75,
    }
    return {**base, **changes}


def window(**values) -> WindowParams:
    return WindowParams(**{"last": 1000, "hours": 24, "min_records": 1, **values})


def test_rotated_files_are_read_oldest_first(tmp_path):
    log = write_log(tmp_path / "log", [record(m) for m in (50, 40, 30, 20, 10, 5)], files=3)
    assert [p.name for p in log_files(log)] == [
        "predictions.jsonl.2",
        "predictions.jsonl.1",
        "predictions.jsonl",
    ]
    chosen = select(log, window(), FEATURES, now=NOW)
    assert [r.features["size"] for r in chosen.records] == [50, 40, 30, 20, 10, 5]
    assert chosen.start == NOW - timedelta(minutes=50) and chosen.end == NOW - timedelta(minutes=5)
    assert chosen.logged == 6 and chosen.models == [MODEL]


def test_other_files_in_the_folder_are_ignored(tmp_path):
    log = write_log(tmp_path / "log", [record(1)])
    (log / "predictions.jsonl.gz").write_text("not a log")
    (log / "notes.txt").write_text("hello")
    assert [p.name for p in log_files(log)] == ["predictions.jsonl"]


@pytest.mark.parametrize(("last", "expected"), [(4, [4, 3, 2, 1]), (3, [3, 2, 1]), (1, [1])])
def test_the_window_keeps_the_newest_last_records(tmp_path, last, expected):
    log = write_log(tmp_path / "log", [record(m) for m in (4, 3, 2, 1)])
    chosen = select(log, window(last=last), FEATURES, now=NOW)
    assert [r.features["size"] for r in chosen.records] == expected


def test_a_record_exactly_hours_old_is_in_one_second_older_is_not(tmp_path):
    at_bound = record(60)
    older = record(60 + 1 / 60)
    log = write_log(tmp_path / "log", [older, at_bound, record(1)])
    chosen = select(log, window(hours=1), FEATURES, now=NOW)
    assert [r.time for r in chosen.records] == [at_bound["time"], record(1)["time"]]
    everything = select(log, window(hours=None), FEATURES, now=NOW)
    assert len(everything.records) == 3


def test_min_records_at_the_bound_passes_one_below_fails(tmp_path):
    log = write_log(tmp_path / "log", [record(m) for m in (3, 2, 1)])
    assert len(select(log, window(min_records=3), FEATURES, now=NOW).records) == 3
    with pytest.raises(UserError, match=r"holds 3 predictions .* fewer than .*min_records \(4\)"):
        select(log, window(min_records=4), FEATURES, now=NOW)


def test_an_empty_window_says_how_many_were_logged(tmp_path):
    log = write_log(tmp_path / "log", [record(60 * 48), record(60 * 30)])
    with pytest.raises(UserError, match=r"no record logged in the last 24 h \(2 in total\)") as exc:
        select(log, window(), FEATURES, now=NOW)
    assert "monitor.window.hours" in exc.value.hint


def test_an_empty_log_file_is_an_empty_window(tmp_path):
    log = write_log(tmp_path / "log", [])
    with pytest.raises(UserError, match=r"\(0 in total\)"):
        select(log, window(), FEATURES, now=NOW)


def test_no_log_or_no_log_file_says_how_to_enable_it(tmp_path):
    with pytest.raises(UserError, match="not found") as exc:
        select(tmp_path / "absent", window(), FEATURES, now=NOW)
    assert "MLOPS_PREDICTION_LOG" in exc.value.hint
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no predictions\.jsonl"):
        select(tmp_path / "empty", window(), FEATURES, now=NOW)


BAD_LINES = [
    ("not-json", "{oops", r"predictions\.jsonl:2 is not valid JSON"),
    ("a-list", "[1, 2]", r"predictions\.jsonl:2 holds no prediction log line"),
    (
        "no-features",
        json.dumps({k: v for k, v in record(1).items() if k != "features"}),
        "features",
    ),
    ("confidence-above-1", json.dumps(record(1, confidence=1.5)), "confidence"),
    ("confidence-negative", json.dumps(record(1, confidence=-0.1)), "confidence"),
    ("time-without-zone", json.dumps(record(1, time="2026-11-30T11:59:00")), "not an ISO 8601 UTC"),
    ("time-not-a-time", json.dumps(record(1, time="yesterday")), "not an ISO 8601 UTC"),
]


@pytest.mark.parametrize(
    ("line", "message"), [b[1:] for b in BAD_LINES], ids=[b[0] for b in BAD_LINES]
)
def test_a_line_that_is_not_a_prediction_record_names_file_and_line(tmp_path, line, message):
    log = write_log(tmp_path / "log", [record(2), line, record(1)])
    with pytest.raises(UserError, match=message) as exc:
        select(log, window(), FEATURES, now=NOW)
    assert "predictions.jsonl:2" in exc.value.message
    assert exc.value.hint


def test_confidence_at_its_bounds_is_valid(tmp_path):
    log = write_log(tmp_path / "log", [record(2, confidence=0.0), record(1, confidence=1.0)])
    assert len(select(log, window(), FEATURES, now=NOW).records) == 2


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"size": 1}, r"missing 'colour'"),
        ({"size": 1, "colour": "red", "shape": "round"}, r"unknown 'shape'"),
        ({"height": 1, "colour": "red"}, r"missing 'size'; unknown 'height'"),
    ],
)
def test_features_that_do_not_match_the_schema_are_named(tmp_path, features, message):
    log = write_log(tmp_path / "log", [record(2), record(1, features=features)])
    with pytest.raises(UserError, match=message) as exc:
        select(log, window(), FEATURES, now=NOW)
    assert "schema" in exc.value.hint


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ({"window": {"last": 0}}, "monitor.window.last"),
        ({"window": {"last": -1}}, "monitor.window.last"),
        ({"window": {"hours": 0}}, "monitor.window.hours"),
        ({"window": {"min_records": 0}}, "monitor.window.min_records"),
        ({"drift_share": 0}, "monitor.drift_share"),
        ({"drift_share": 1.01}, "monitor.drift_share"),
        ({"persistence": {"k": 4, "n": 3}}, "k \\(4\\) cannot exceed n \\(3\\)"),
        ({"persistence": {"k": 0, "n": 3}}, "monitor.persistence.k"),
        ({"alerts": {"error_ratio": 0}}, "monitor.alerts.error_ratio"),
        ({"surprise": 1}, "monitor.surprise: unknown key"),
    ],
)
def test_bad_monitor_params_name_the_key(block, problem):
    import yaml

    from mlops_template.paths import PARAMS_FILE

    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["monitor"] = block
    with pytest.raises(UserError, match=problem):
        parse_params(raw)


def test_monitor_params_at_their_bounds_are_valid():
    params = MonitorParams.model_validate(
        {"window": {"last": 1, "min_records": 1}, "drift_share": 1, "persistence": {"k": 3, "n": 3}}
    )
    assert params.persistence.k == params.persistence.n == 3


def test_the_cli_reports_bad_input_in_one_message_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from fork import write_fork_csv
    from helpers_monitor import split_project

    from mlops_template.paths import TRAIN_CSV

    monkeypatch.chdir(split_project(tmp_path / "fork", monitor={"window": {"min_records": 1}}))
    write_fork_csv(TRAIN_CSV)  # the training split's columns are all the check reads first
    capsys.readouterr()
    assert main(["monitor", "drift", "--log", "absent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: prediction log absent not found\nfix: ")
    assert "Traceback" not in err
    log = write_log(tmp_path / "log", [record(1, features={"alcohol": 13})])
    assert main(["monitor", "drift", "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert "does not match the schema's feature columns (missing 'age_days'" in err
    assert not DRIFT_FILE.exists() and not MONITOR_DIR.exists()


def test_the_cli_without_the_training_split_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from helpers_monitor import split_project

    monkeypatch.chdir(split_project(tmp_path / "fork"))
    assert main(["monitor", "drift", "--log", "absent"]) == 2
    err = capsys.readouterr().err
    assert "training split artifacts/split/train.csv is not here" in err
    assert "dvc pull artifacts/split" in err


def test_every_monitor_command_imports_and_monitor_yml_runs_only_those():
    import importlib
    import re
    from pathlib import Path

    import click

    from mlops_template import cli

    for target, _ in cli.MONITOR_COMMANDS.values():
        module, _, attribute = target.partition(":")
        assert isinstance(getattr(importlib.import_module(module), attribute), click.Command)
    workflow = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "monitor.yml"
    used = re.findall(r"\bmlops monitor ([a-z-]+)", workflow.read_text())
    assert set(used) == {"fetch", "drift", "issue"} <= set(cli.MONITOR_COMMANDS)


def test_the_window_reads_what_the_services_log_writer_wrote(tmp_path):
    """The service's own writer (serving/predlog.py), rotating over three files, read back in
    order with the schema's columns."""
    import pandas as pd
    import yaml
    from fork import CLASSES, DATA_PATH, SCHEMA, TARGET, write_fork_csv

    from mlops_template.paths import PARAMS_FILE
    from mlops_template.serving.predlog import PredictionLog, PredictionLogSettings
    from mlops_template.table import feature_spec, read_header

    csv = write_fork_csv(tmp_path / DATA_PATH)
    raw = {"schema": SCHEMA, "data": {"path": str(csv), "target": TARGET}}
    params = parse_params({**yaml.safe_load(PARAMS_FILE.read_text()), **raw})
    spec = feature_spec(params, read_header(csv))
    frame = pd.read_csv(csv, dtype={"region": str}, nrows=12)
    rows = [
        [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row]
        for row in frame[spec.names].itertuples(index=False, name=None)
    ]
    settings = PredictionLogSettings(tmp_path / "log", max_bytes=800, backups=9)
    (tmp_path / "log").mkdir()
    log = PredictionLog(settings, spec, MODEL)
    for row in rows:
        answer = [{"label": CLASSES[1], "confidence": 0.8, "probabilities": {}}]
        log.submit(json.dumps({"instances": [row]}).encode(), json.dumps(answer).encode())
    log.flush()
    log.close()
    assert len(log_files(tmp_path / "log")) >= 3  # rotated
    chosen = select(tmp_path / "log", window(hours=None), spec.names)
    assert [list(r.features.values()) for r in chosen.records] == rows
    assert {r.prediction for r in chosen.records} == {CLASSES[1]}
