"""The reproducibility check: is dvc.lock stale, did CI reproduce the committed metrics.

The `dvc status --json` shapes below are what DVC 3.67 printed here for each situation; the
whole command runs for real in tests/test_act_pr.py.
"""

from __future__ import annotations

import pytest

from mlops_template.ci.repro import compare_quality, lock_problems, stages_in_output

LOCK = {
    "prepare": {"outs": [{"path": "artifacts/split"}]},
    "train": {"outs": [{"path": "artifacts/model"}, {"path": "dvclive"}]},
    "evaluate": {"outs": [{"path": "metrics/quality.json"}, {"path": "metrics/serving.json"}]},
    "gate": {"outs": [{"path": "reports/gate.json"}]},
}


def test_missing_outputs_are_not_a_stale_lock() -> None:
    status = {
        "prepare": [{"changed outs": {"artifacts/split": "deleted"}}],
        "train": [
            {"changed deps": {"artifacts/split/train.csv": "deleted"}},
            {"changed outs": {"artifacts/model": "not in cache"}},
        ],
        "evaluate": [{"changed deps": {"artifacts/model": "modified"}}],
    }
    assert lock_problems(status, LOCK) == []


def test_changed_params_code_and_command_make_the_lock_stale() -> None:
    status = {
        "prepare": ["changed command"],
        "train": [
            {"changed deps": {"params.yaml": {"train": "modified"}}},
            {"changed deps": {"src/mlops_template/custom/models.py": "modified"}},
        ],
        "data.dvc": [{"changed outs": {"data": "modified"}}],
    }
    assert lock_problems(status, LOCK) == [
        "prepare: its command changed",
        "train: params changed (train in params.yaml)",
        "train: src/mlops_template/custom/models.py modified",
    ]


def test_a_hand_edited_committed_metric_is_stale() -> None:
    status = {"evaluate": [{"changed outs": {"metrics/quality.json": "modified"}}]}
    assert lock_problems(status, LOCK) == [
        "evaluate: the committed metrics/quality.json differs from dvc.lock"
    ]


def test_a_stage_never_run_or_no_lock_at_all() -> None:
    assert lock_problems({"package": [{"changed deps": {"x": "modified"}}]}, LOCK) == [
        "stage 'package' has not been run: it is missing from dvc.lock"
    ]
    assert lock_problems({}, None) == [
        "dvc.lock is not committed: run `dvc repro` and commit dvc.lock"
    ]


def test_stages_are_read_from_the_repro_log() -> None:
    log = (
        "'data.dvc' didn't change, skipping\n"
        "Stage 'prepare' is cached - skipping run, checking out outputs\n"
        "Running stage 'train':\n> mlops train\n"
        "Stage 'evaluate' didn't change, skipping\n"
    )
    assert stages_in_output(log) == (["train"], ["prepare"])


QUALITY = {"accuracy": 0.98, "log_loss": 0.08, "f1_per_class": {"0": 1.0}, "model_size_bytes": 10}


def test_identical_metrics_are_reproduced() -> None:
    assert compare_quality(QUALITY, dict(QUALITY), 0.005) == (True, 0.0, [])


def test_delta_within_and_beyond_the_tolerance() -> None:
    ok, delta, _ = compare_quality(QUALITY, {**QUALITY, "accuracy": 0.984}, 0.005)
    assert ok is True and delta == pytest.approx(0.004)
    ok, delta, notes = compare_quality(QUALITY, {**QUALITY, "f1_per_class": {"0": 0.9}}, 0.005)
    assert ok is False and delta == pytest.approx(0.1)
    assert "f1_per_class.0 committed 1.0 vs. CI 0.9" in notes[0]


def test_a_metric_on_one_side_only_is_not_reproduced() -> None:
    ok, _, notes = compare_quality(
        QUALITY, {k: v for k, v in QUALITY.items() if k != "log_loss"}, 1
    )
    assert ok is False
    assert notes == ["metrics present on one side only: log_loss"]


def test_nan_is_never_reproduced_and_no_baseline_is_null() -> None:
    ok, delta, _ = compare_quality(QUALITY, {**QUALITY, "log_loss": float("nan")}, 1.0)
    assert (ok, delta) == (False, None)
    assert compare_quality(None, QUALITY, 0.005)[0] is None
    assert compare_quality(QUALITY, None, 0.005)[0] is False
