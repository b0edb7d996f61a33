"""The prediction log (serving/predlog.py) in-process: its settings from the environment at
every bound, the sampled fraction, rotation at the byte bound, and lines that read back as
PredictionRecords. The served path (a real request landing in the log) is in
test_service_http.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_template.contract import Column, FeatureSpec
from mlops_template.errors import UserError
from mlops_template.records import PredictionRecord
from mlops_template.serving import predlog
from mlops_template.serving.predlog import (
    ENV_BACKUPS,
    ENV_DIR,
    ENV_MAX_BYTES,
    ENV_SAMPLE,
    PredictionLog,
    PredictionLogSettings,
    settings_from_env,
)

SPEC = FeatureSpec(
    columns=(
        Column(name="length", kind="numeric", min=0, max=10),
        Column(name="colour", kind="categorical", values=("red", "green")),
        Column(name="indoor", kind="boolean"),
        Column(name="weight", kind="numeric", nullable=True),
    ),
    target="kind",
    classes=("ant", "bee"),
    shape=(2, 2),
)
ROW = [1.5, "red", True, None]
TAG = "unit-model:0123456789abcdef01234567"


def answer(n: int, label: str = "bee", confidence: float = 0.75) -> bytes:
    one = {"label": label, "confidence": confidence, "probabilities": {}, "model_version": TAG}
    return json.dumps([one] * n).encode()


def request(*instances: object) -> bytes:
    return json.dumps({"instances": list(instances)}).encode()


def test_the_log_is_off_unless_a_directory_is_set(tmp_path):
    assert settings_from_env({}) is None
    assert settings_from_env({ENV_DIR: "  ", ENV_SAMPLE: "5"}) is None  # nothing else is read
    settings = settings_from_env({ENV_DIR: str(tmp_path / "new" / "dir")})
    assert settings == PredictionLogSettings(tmp_path / "new" / "dir", 1.0, 10_000_000, 5)
    assert settings.path == tmp_path / "new" / "dir" / "predictions.jsonl"
    assert settings.directory.is_dir()


@pytest.mark.parametrize(("text", "sample"), [("0", 0.0), ("1", 1.0), ("0.25", 0.25), ("", 1.0)])
def test_a_sample_fraction_from_0_to_1_is_accepted(tmp_path, text, sample):
    assert settings_from_env({ENV_DIR: str(tmp_path), ENV_SAMPLE: text}).sample == sample


@pytest.mark.parametrize("text", ["-0.1", "1.1", "-1", "2", "abc", "nan", "inf"])
def test_a_sample_fraction_outside_0_to_1_refuses_to_start(tmp_path, text):
    with pytest.raises(UserError) as caught:
        settings_from_env({ENV_DIR: str(tmp_path), ENV_SAMPLE: text})
    assert ENV_SAMPLE in caught.value.message and caught.value.hint


@pytest.mark.parametrize(
    ("name", "text", "ok"),
    [
        (ENV_MAX_BYTES, "1", True),
        (ENV_MAX_BYTES, "0", False),
        (ENV_MAX_BYTES, "-5", False),
        (ENV_MAX_BYTES, "1e6", False),
        (ENV_BACKUPS, "1", True),
        (ENV_BACKUPS, "0", False),
        (ENV_BACKUPS, "-1", False),
        (ENV_BACKUPS, "two", False),
    ],
)
def test_size_and_backups_must_be_whole_numbers_from_1(tmp_path, name, text, ok):
    env = {ENV_DIR: str(tmp_path), name: text}
    if ok:
        assert settings_from_env(env) is not None
        return
    with pytest.raises(UserError) as caught:
        settings_from_env(env)
    assert name in caught.value.message


def test_a_directory_that_cannot_be_made_refuses_to_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError) as caught:
        settings_from_env({ENV_DIR: str(blocker / "log")})
    assert ENV_DIR in caught.value.message and "unset it" in caught.value.hint


def test_more_than_one_worker_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(UserError) as caught:
        predlog.from_env(SPEC, TAG, workers=2)
    assert "2 workers" in caught.value.message
    monkeypatch.delenv(ENV_DIR)
    assert predlog.from_env(SPEC, TAG, workers=2) is None


def make_log(tmp_path: Path, **settings: object) -> PredictionLog:
    return PredictionLog(PredictionLogSettings(tmp_path, **settings), SPEC, TAG)  # type: ignore[arg-type]


def read_lines(directory: Path) -> list[PredictionRecord]:
    files = sorted(directory.glob("predictions.jsonl*"))
    return [
        PredictionRecord.parse_text(line, str(path))
        for path in files
        for line in path.read_text().splitlines()
    ]


@pytest.mark.parametrize(
    ("sample", "logged"), [(0.0, 0), (1.0, 20), (0.25, 5), (0.5, 10), (0.999, 19), (0.05, 1)]
)
def test_exactly_the_sampled_fraction_of_requests_is_logged(tmp_path, sample, logged):
    log = make_log(tmp_path, sample=sample)
    for k in range(20):
        log.submit(request([float(k % 10), "red", False, None]), answer(1))
    log.flush()
    log.close()
    assert len(read_lines(tmp_path)) == logged


def test_every_instance_becomes_a_prediction_record_by_column_name(tmp_path):
    log = make_log(tmp_path)
    named = {"length": 2.0, "colour": "green", "indoor": False, "weight": 3.5}
    grid = [[7, "red"], [True, None]]
    log.submit(request(ROW, named, grid), answer(3, "ant", 0.5))
    log.flush()
    log.close()
    records = read_lines(tmp_path)
    assert [r.features for r in records] == [
        {"length": 1.5, "colour": "red", "indoor": True, "weight": None},
        named,
        {"length": 7, "colour": "red", "indoor": True, "weight": None},
    ]
    assert {(r.model, r.prediction, r.confidence) for r in records} == {(TAG, "ant", 0.5)}
    assert all(r.time.endswith("Z") and "T" in r.time for r in records)


def test_the_log_rotates_at_its_byte_bound_and_keeps_the_backups(tmp_path):
    one = request(ROW)
    line_bytes = len(make_log(tmp_path).lines("2026-01-01T00:00:00.000Z", one, answer(1))[0]) + 1
    max_bytes = 3 * line_bytes  # a file holds 2 lines: a third would reach the bound
    log = make_log(tmp_path, max_bytes=max_bytes, backups=2)
    for _ in range(11):
        log.submit(one, answer(1))
    log.flush()
    log.close()
    files = sorted(tmp_path.glob("predictions.jsonl*"))
    assert [f.name for f in files] == ["predictions.jsonl", "predictions.jsonl.1",
                                       "predictions.jsonl.2"]  # fmt: skip
    assert all(f.stat().st_size < max_bytes for f in files)
    assert [f.stat().st_size for f in files] == [line_bytes, 2 * line_bytes, 2 * line_bytes]
    assert len(read_lines(tmp_path)) == 5  # 11 written, the oldest 6 rotated away


def test_a_failing_log_never_fails_the_request(tmp_path):
    log = make_log(tmp_path / "gone")  # the directory does not exist: every write fails
    log.submit(request(ROW), answer(1))
    log.submit(b"not json", answer(1))  # a line that cannot be built: logged, not raised
    log.flush()
    log.close()
    assert log.handler.failed
    assert not (tmp_path / "gone").exists()
