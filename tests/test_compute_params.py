"""`train.compute` and `sweep` in params.yaml, the sweep's pure parts (sampling, validation
rows, ranking, the table, --apply-best) and the unreachable-cluster message: no Ray cluster
needed, so fast. The tests with a real cluster are in test_ray_compute.py."""

from __future__ import annotations

import copy
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fork import DATA_PATH, make_project
from helpers_ray import outputs
from project import set_params

from mlops_template.cli import main
from mlops_template.compute import cluster
from mlops_template.compute.sweep import (
    SweepRecord,
    Trial,
    apply_best,
    family_params,
    rank,
    sample_configs,
    table,
    validation_rows,
)
from mlops_template.errors import UserError
from mlops_template.params import SWEEP_METRICS, load_params, parse_params
from mlops_template.paths import PARAMS_FILE

SPACE = {"train.sklearn.logreg.C": [0.1, 1.0, 10.0], "train.sklearn.estimator": ["logreg", "svc"]}


def raw_params(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


def problem(raw: dict[str, Any]) -> str:
    with pytest.raises(UserError) as caught:
        parse_params(raw)
    return caught.value.message


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- train.compute


def test_compute_is_local_when_absent_and_not_a_family_block() -> None:
    params = load_params()
    assert params.train.compute.backend == "local"
    assert (params.train.compute.num_workers, params.train.compute.cpus_per_worker) == (1, 1.0)
    assert "compute" not in parse_params(raw_params(train__compute="ray")).train.blocks


@pytest.mark.parametrize("value", ["ray", {"backend": "ray"}])
def test_compute_ray_as_a_word_or_a_block(value: Any) -> None:
    assert parse_params(raw_params(train__compute=value)).train.compute.backend == "ray"


@pytest.mark.parametrize(
    ("compute", "where"),
    [
        ("spark", "train.compute.backend"),
        ({"backend": "ray", "num_workers": 0}, "train.compute.num_workers"),
        ({"backend": "ray", "num_workers": -1}, "train.compute.num_workers"),
        ({"backend": "ray", "cpus_per_worker": 0}, "train.compute.cpus_per_worker"),
        ({"backend": "ray", "gpus": 1}, "train.compute.gpus: unknown key"),
    ],
)
def test_bad_compute_settings_are_named(compute: Any, where: str) -> None:
    assert where in problem(raw_params(train__compute=compute))


def test_one_worker_and_a_fraction_of_a_cpu_are_valid() -> None:
    compute = {"backend": "ray", "num_workers": 1, "cpus_per_worker": 0.5}
    assert parse_params(raw_params(train__compute=compute)).train.compute.num_workers == 1


# --------------------------------------------------------------------------- sweep params


def sweep_block(**overrides: Any) -> dict[str, Any]:
    return {"space": copy.deepcopy(SPACE), **overrides}


def test_sweep_is_optional_and_defaults_are_set() -> None:
    assert load_params().sweep is None
    sweep = parse_params(raw_params(sweep=sweep_block())).sweep
    assert sweep is not None
    assert (sweep.metric, sweep.mode, sweep.max_concurrent) == ("accuracy", "max", 2)


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"num_samples": 0}, "sweep.num_samples"),
        ({"max_concurrent": 0}, "sweep.max_concurrent"),
        ({"validation_size": 0}, "sweep.validation_size"),
        ({"validation_size": 1}, "sweep.validation_size"),
        ({"metric": "model_size_bytes"}, "sweep.metric"),
        ({"mode": "best"}, "sweep.mode"),
        ({"space": {}}, "sweep.space"),
        ({"space": {"sklearn.logreg.C": [1]}}, "not a key of a family block"),
        ({"space": {"train.sklearn": [1]}}, "not a key of a family block"),
        ({"space": {"train.sklearn.logreg.C": []}}, "has no values to try"),
    ],
)
def test_bad_sweep_settings_are_named(overrides: dict[str, Any], where: str) -> None:
    assert where in problem(raw_params(sweep=sweep_block(**overrides)))


def sweep_params(**overrides: Any) -> Any:
    return parse_params(raw_params(train__family="sklearn", sweep=sweep_block(**overrides)))


def test_every_combination_is_tried_when_num_samples_covers_them() -> None:
    for n in (6, 7):  # exactly the 6 combinations, and one more than there are
        configs = sample_configs(sweep_params(num_samples=n).sweep)
        assert len(configs) == 6
        assert len({tuple(c.items()) for c in configs}) == 6


def test_fewer_samples_are_distinct_and_seeded() -> None:
    first = sample_configs(sweep_params(num_samples=4, seed=3).sweep)
    assert len(first) == 4 and len({tuple(c.items()) for c in first}) == 4
    assert first == sample_configs(sweep_params(num_samples=4, seed=3).sweep)
    assert len(sample_configs(sweep_params(num_samples=1).sweep)) == 1


def test_a_trial_sets_only_its_keys_and_is_validated_by_the_family() -> None:
    params = sweep_params()
    fp = family_params(params, {"train.sklearn.logreg.C": 0.1, "train.sklearn.estimator": "svc"})
    assert (fp.logreg.C, fp.estimator, fp.svc.C) == (0.1, "svc", params.train.family_params.svc.C)
    with pytest.raises(UserError, match="bad value"):
        family_params(params, {"train.sklearn.logreg.C": -1.0})
    with pytest.raises(UserError, match=r"not a key of train\.sklearn"):
        family_params(params, {"train.sklearn.logreg.gamma": 1.0})
    with pytest.raises(UserError, match=r"not in train\.sklearn"):
        family_params(params, {"train.lightgbm.num_leaves": 7})


def test_validation_rows_are_stratified_seeded_and_never_empty_per_class() -> None:
    y = np.array([0] * 50 + [1] * 30 + [2] * 2)
    mask = validation_rows(y, 0.2, seed=1)
    assert [int(mask[y == k].sum()) for k in (0, 1, 2)] == [10, 6, 1]
    assert (mask == validation_rows(y, 0.2, seed=1)).all()
    assert not (mask == validation_rows(y, 0.2, seed=2)).all()


def scores(*accuracy: float) -> list[dict[str, float]]:
    return [{m: (a if m == "accuracy" else 1.0 - a) for m in SWEEP_METRICS} for a in accuracy]


def test_ranking_follows_the_mode_and_ties_keep_the_sample_order() -> None:
    configs = [{"train.sklearn.logreg.C": c} for c in (0.1, 1.0, 10.0, 100.0)]
    best_first = rank(sweep_params().sweep, configs, scores(0.8, 0.9, 0.9, 0.7))
    assert [t.trial for t in best_first] == [1, 2, 0, 3]
    assert [t.rank for t in best_first] == [1, 2, 3, 4]
    lowest = rank(
        sweep_params(metric="log_loss", mode="min").sweep, configs, scores(0.8, 0.9, 0.9, 0.7)
    )
    assert [t.trial for t in lowest] == [1, 2, 0, 3]  # log_loss here is 1 - accuracy


def record(best: dict[str, Any]) -> SweepRecord:
    trials = [
        Trial(trial=1, rank=1, config=best, metrics=scores(0.95)[0]),
        Trial(trial=0, rank=2, config={k: 1.0 for k in best}, metrics=scores(0.9)[0]),
    ]
    return SweepRecord(
        family="sklearn",
        metric="accuracy",
        mode="max",
        seed=0,
        validation_size=0.2,
        space={k: [1.0, v] for k, v in best.items()},
        trials=trials,
    )


def test_the_table_ranks_the_trials_with_their_values() -> None:
    text = table(record({"train.sklearn.logreg.C": 0.5}))
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| rank | trial | train.sklearn.logreg.C | **accuracy** |")
    assert rows[1].startswith("| 1 | 1 | `0.5` | 0.95 |")
    assert rows[2].startswith("| 2 | 0 | `1.0` | 0.9 |")


# --------------------------------------------------------------------------- --apply-best


@pytest.fixture
def params_copy(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS_FILE.read_text().replace("family: keras ", "family: sklearn"))
    return path


def test_apply_best_writes_only_the_best_values_and_keeps_the_comments(params_copy: Path) -> None:
    before = params_copy.read_text()
    changed = apply_best(record({"train.sklearn.logreg.C": 0.5}), params_copy)
    after = params_copy.read_text()
    assert changed == {"train.sklearn.logreg.C": (1.0, 0.5)}
    assert load_params(params_copy).train.family_params.logreg.C == 0.5
    assert [a for a in after.splitlines() if a not in before.splitlines()] == [
        "    logreg: {C: 0.5, max_iter: 2000}"
    ]
    assert apply_best(record({"train.sklearn.logreg.C": 0.5}), params_copy) == {}


def test_apply_best_refuses_another_family_or_an_invalid_value(params_copy: Path) -> None:
    before = params_copy.read_text()
    keras = record({"train.sklearn.logreg.C": 0.5}).model_copy(update={"family": "keras"})
    with pytest.raises(UserError, match=r"train\.family"):
        apply_best(keras, params_copy)
    with pytest.raises(UserError, match=r"train\.sklearn\.logreg\.C"):
        apply_best(record({"train.sklearn.logreg.C": -2.0}), params_copy)
    assert params_copy.read_text() == before


# --------------------------------------------------------------------------- the cluster


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("ray://head.example:10001", ("head.example", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_head_addresses(value: str, expected: tuple[str, int]) -> None:
    assert cluster.endpoint(value) == expected


@pytest.mark.parametrize("value", ["head", "auto", "http://head:8265", "head:port", "head:70000"])
def test_what_is_not_a_head_address_is_named(value: str) -> None:
    with pytest.raises(UserError, match="is not a Ray head address"):
        cluster.endpoint(value)


def test_an_unset_address_says_how_to_set_it() -> None:
    with pytest.raises(UserError) as caught:
        cluster.check_reachable({})
    assert "RAY_ADDRESS is not set" in caught.value.message
    assert "export RAY_ADDRESS" in (caught.value.hint or "")


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny) -> Path:
    """A fork's project with `compute: ray`, its split and outputs of an earlier run."""
    repo = make_project(tmp_path / "fork")
    set_params(repo, {"train": {"compute": "ray"}})
    monkeypatch.chdir(repo)
    (repo / "artifacts/split").mkdir(parents=True)
    shutil.copy2(repo / DATA_PATH, repo / "artifacts/split/train.csv")
    for output in ("artifacts/model/model.json", "dvclive/metrics.json"):
        (repo / output).parent.mkdir(parents=True, exist_ok=True)
        (repo / output).write_text('{"from": "an earlier run"}\n')
    assert load_params().train.compute.backend == "ray"
    return repo


@pytest.mark.parametrize("argv", [["train"], ["train", "--check"], ["sweep"]])
def test_an_unreachable_cluster_is_one_message_and_no_output_is_deleted(
    trained: Path, capsys, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    if argv == ["sweep"]:
        set_params(trained, {"sweep": {"space": {"train.tiny.temperature": [0.5, 1.0]}}})
    before = outputs(trained)
    address = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the Ray cluster at RAY_ADDRESS={address} cannot be reached")
    assert "\nfix: start the cluster, or point RAY_ADDRESS at its head" in err
    assert "Traceback" not in err and err.count("error:") == 1
    assert outputs(trained) == before and before


def test_train_check_without_an_address_and_with_local_compute(
    trained: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["train", "--check"]) == 2
    assert "RAY_ADDRESS is not set" in capsys.readouterr().err
    set_params(trained, {"train": {"compute": "local"}})
    assert main(["train", "--check"]) == 0
    assert "locally" in capsys.readouterr().out


def test_sweep_without_a_sweep_block_says_what_to_add(trained: Path, capsys) -> None:
    assert main(["sweep"]) == 2
    err = capsys.readouterr().err
    assert "has no `sweep` block" in err and "fix: add one" in err


def test_apply_best_without_a_sweep_result_says_to_run_it(trained: Path, capsys) -> None:
    assert main(["sweep", "--apply-best"]) == 2
    assert "run `mlops sweep` first" in capsys.readouterr().err
