"""The reproducibility check: is dvc.lock stale, did CI reproduce the committed metrics.

The `dvc status --json` shapes below are what DVC 3.67 printed here for each situation; the
whole command runs for real in tests/test_act_pr.py.
"""

from __future__ import annotations

from mlops_template.ci.repro import compare_quality, lock_problems, stages_in_output
from mlops_template.params import Tolerance

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
    assert compare_quality(QUALITY, dict(QUALITY), {}) == (True, [], [])


def test_without_a_tolerance_every_metric_must_match_exactly() -> None:
    ok, mismatches, _ = compare_quality(QUALITY, {**QUALITY, "model_size_bytes": 11}, {})
    assert ok is False
    assert [(m.metric, m.committed, m.reproduced, m.allowed) for m in mismatches] == [
        ("model_size_bytes", 10, 11, "exact")
    ]
    assert mismatches[0].describe() == (
        "model_size_bytes: committed 10, CI computed 11 (allowed: exact)"
    )


def test_an_absolute_tolerance_allows_up_to_its_bound() -> None:
    rule = {"accuracy": Tolerance(abs=0.004)}
    at_bound = compare_quality(QUALITY, {**QUALITY, "accuracy": 0.984}, rule)
    assert at_bound[0] is True
    past = compare_quality(QUALITY, {**QUALITY, "accuracy": 0.98401}, rule)
    assert past[0] is False and past[1][0].allowed == "|Δ| ≤ 0.004"
    below = compare_quality(QUALITY, {**QUALITY, "accuracy": 0.976}, rule)  # either direction
    assert below[0] is True


def test_a_relative_tolerance_scales_with_the_committed_value() -> None:
    rule = {"log_loss": Tolerance(rel=0.25)}  # 0.08 * 0.25 = 0.02
    assert compare_quality(QUALITY, {**QUALITY, "log_loss": 0.1}, rule)[0] is True
    assert compare_quality(QUALITY, {**QUALITY, "log_loss": 0.1001}, rule)[0] is False
    zero = {**QUALITY, "log_loss": 0}
    assert compare_quality(zero, {**zero, "log_loss": 1e-9}, rule)[0] is False  # 0 allows 0


def test_every_metric_not_reproduced_is_named() -> None:
    changed = {**QUALITY, "accuracy": 0.97, "f1_per_class": {"0": 0.9}}
    ok, mismatches, _ = compare_quality(QUALITY, changed, {"log_loss": Tolerance(abs=1)})
    assert ok is False
    assert [m.metric for m in mismatches] == ["accuracy", "f1_per_class.0"]


def test_a_metric_on_one_side_only_is_not_reproduced() -> None:
    ok, mismatches, _ = compare_quality(
        QUALITY, {k: v for k, v in QUALITY.items() if k != "log_loss"}, {}
    )
    assert ok is False
    assert [(m.metric, m.committed, m.reproduced) for m in mismatches] == [("log_loss", 0.08, None)]


def test_a_tolerance_for_an_unknown_metric_is_noted() -> None:
    ok, _, notes = compare_quality(QUALITY, dict(QUALITY), {"acuracy": Tolerance(abs=0.1)})
    assert ok is True
    assert notes == ["ci.tolerances names 'acuracy', which is not a quality metric"]


def test_nan_is_never_reproduced_and_no_baseline_is_null() -> None:
    nan = {**QUALITY, "log_loss": float("nan")}
    assert compare_quality(QUALITY, nan, {"log_loss": Tolerance(abs=1.0)})[0] is False
    assert compare_quality(nan, nan, {})[0] is False
    assert compare_quality(None, QUALITY, {})[0] is None
    assert compare_quality(QUALITY, None, {})[0] is False
