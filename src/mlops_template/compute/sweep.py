"""`mlops sweep`: search the chosen family's hyperparameters with Ray Tune on the cluster at
RAY_ADDRESS, and rank the trials.

The search space is `sweep.space` in params.yaml: `train.<family>.<key>: [values to try]`.
The trials are a seeded sample of the combinations (all of them when `num_samples` covers
them), without repeats, so the same params give the same trials. Each trial fits the family
through the model contract on the train split minus a stratified, seeded validation part, and
is scored on that part: the test split stays for the evaluate stage and the gate. The ranked
trials go to reports/sweep.json and reports/sweep.md (a table a PR report can show).
params.yaml changes only with `mlops sweep --apply-best`, which writes the best trial's values.
"""

from __future__ import annotations

import copy
import io
import itertools
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import click
import numpy as np
import yaml as pyyaml
from pydantic import BaseModel, ValidationError

from mlops_template import contract
from mlops_template.compute import cluster
from mlops_template.errors import UserError
from mlops_template.files import write_json, write_text_atomic
from mlops_template.params import SWEEP_METRICS, Params, SweepParams, load_params, parse_params
from mlops_template.paths import PARAMS_FILE, SWEEP_FILE, SWEEP_TABLE, TRAIN_CSV
from mlops_template.records import Record

SWEEP_FIX = "run `mlops sweep` first"


class Trial(BaseModel):
    trial: int  # the trial's place in the seeded sample
    rank: int  # 1 is the best
    config: dict[str, Any]  # dotted key -> value tried
    metrics: dict[str, float]  # on the validation part of the train split


class SweepRecord(Record):
    """reports/sweep.json: what was searched and every trial, best first."""

    WHAT: ClassVar[str] = "sweep result"
    FIX: ClassVar[str] = SWEEP_FIX

    family: str
    metric: str
    mode: str
    seed: int
    validation_size: float
    space: dict[str, list[Any]]
    trials: list[Trial]

    @property
    def best(self) -> Trial:
        return self.trials[0]


def sample_configs(sweep: SweepParams) -> list[dict[str, Any]]:
    """`num_samples` distinct combinations of the space, drawn with `seed`: every one, in
    order, when there are no more than that."""
    keys = list(sweep.space)
    combos = list(itertools.product(*(sweep.space[k] for k in keys)))
    if sweep.num_samples < len(combos):
        picked = np.random.default_rng(sweep.seed).choice(len(combos), sweep.num_samples, False)
        combos = [combos[i] for i in picked]
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


def family_params(params: Params, config: dict[str, Any]) -> BaseModel:
    """The chosen family's params with a trial's values set; UserError naming a bad key."""
    family = params.train.family
    block = copy.deepcopy(params.train.blocks[family])
    for key, value in config.items():
        path = key.split(".")
        if path[1] != family:
            raise UserError(
                f"sweep.space key {key} is not in train.{family} (the family being trained)",
                f"search keys of train.{family}, or set train.family",
            )
        node = block
        for part in path[2:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        if not isinstance(node, dict) or path[-1] not in node:
            raise UserError(
                f"sweep.space key {key} is not a key of train.{family} in params.yaml",
                f"use keys that train.{family} has, e.g. train.{family}.<key>",
            )
        node[path[-1]] = value
    try:
        return contract.get_family(family).Params.model_validate(block)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise UserError(
            f"sweep.space gives train.{family}.{where} a bad value: {problem['msg']} "
            f"(got {problem.get('input')!r})",
            "fix the values in sweep.space",
        ) from None


def validation_rows(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of a stratified, seeded validation part: `fraction` of each class
    (at least one row of each)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        take = max(1, round(fraction * len(rows)))
        mask[rng.permutation(rows)[:take]] = True
    return mask


def score_trial(
    params: Params, train_csv: str, name: str, family: type[contract.ModelFamily], config: dict
) -> dict[str, float]:
    """Fit on the train split minus the validation part, score on the validation part."""
    from mlops_template.model_io import fit_model
    from mlops_template.stages.evaluate import quality_metrics
    from mlops_template.stages.train import features_and_labels
    from mlops_template.table import feature_spec, read_table

    if name not in contract.family_names():
        contract.register_family(name, family)
    sweep = params.sweep
    assert sweep is not None
    df = read_table(Path(train_csv), params)
    spec = feature_spec(params, list(df.columns))
    X, y = features_and_labels(df, spec)
    held = validation_rows(y, sweep.validation_size, sweep.seed)
    fp = family_params(params, config)
    model = fit_model(name, fp, spec, params.train.seed, X[~held], y[~held], None)
    scores = quality_metrics(model.predict_proba(X[held]), y[held], list(spec.classes), 0)
    return {k: scores[k] for k in SWEEP_METRICS}


def _trainable(config: dict[str, Any], **fixed: Any) -> None:
    from ray import tune

    tune.report(score_trial(config=config["trial"][1], **fixed))


def rank(
    sweep: SweepParams, configs: list[dict[str, Any]], scores: list[dict[str, float]]
) -> list[Trial]:
    """Best first by `metric` in `mode`; ties keep the sample's order."""
    sign = -1.0 if sweep.mode == "max" else 1.0
    order = sorted(range(len(configs)), key=lambda i: (sign * scores[i][sweep.metric], i))
    return [
        Trial(trial=i, rank=r, config=configs[i], metrics=scores[i])
        for r, i in enumerate(order, start=1)
    ]


def run_sweep(params: Params) -> SweepRecord:
    sweep = params.sweep
    if sweep is None:
        raise UserError(
            "params.yaml has no `sweep` block",
            "add one: sweep: {metric: accuracy, mode: max, num_samples: 8, max_concurrent: 2, "
            "space: {train.<family>.<key>: [values]}} (see the README: 'Scaling out')",
        )
    configs = sample_configs(sweep)
    for config in configs:
        family_params(params, config)  # a bad key or value stops here, before the cluster
    train_csv = TRAIN_CSV.resolve()
    if not train_csv.is_file():
        raise UserError(f"{TRAIN_CSV} not found", "run `dvc repro prepare` first")
    name = params.train.family
    fixed = {
        "params": params,
        "train_csv": str(train_csv),
        "name": name,
        "family": contract.get_family(name),
    }
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no progress tables
    with cluster.connected(), tempfile.TemporaryDirectory() as storage:
        from ray import tune

        trainable = tune.with_resources(
            tune.with_parameters(_trainable, **fixed),
            {"cpu": params.train.compute.cpus_per_worker},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(list(enumerate(configs)))},
            tune_config=tune.TuneConfig(max_concurrent_trials=sweep.max_concurrent),
            run_config=tune.RunConfig(
                name="sweep",
                storage_path=storage,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        grid = tuner.fit()
    scores: dict[int, dict[str, float]] = {}
    failed = []
    for result in grid:
        index = result.config["trial"][0]
        if result.error is not None or result.metrics is None:
            lines = str(result.error).strip().splitlines() or ["no result"]
            failed.append(f"trial {index}: {lines[-1]}")  # the error, not the remote traceback
        else:
            scores[index] = {k: float(result.metrics[k]) for k in SWEEP_METRICS}
    if failed:
        raise UserError(
            f"{len(failed)} of {len(configs)} sweep trials failed: " + "; ".join(failed[:3]),
            "fix the failing trial's params (or the family), then run `mlops sweep` again",
        )
    trials = rank(sweep, configs, [scores[i] for i in range(len(configs))])
    record = SweepRecord(
        family=name,
        metric=sweep.metric,
        mode=sweep.mode,
        seed=sweep.seed,
        validation_size=sweep.validation_size,
        space=sweep.space,
        trials=trials,
    )
    write_json(SWEEP_FILE, record.to_json())
    write_text_atomic(SWEEP_TABLE, table(record))
    return record


def table(record: SweepRecord) -> str:
    """The ranked trials as a markdown table (what a PR report can include)."""
    keys = list(record.space)
    others = [m for m in SWEEP_METRICS if m != record.metric]
    head = ["rank", "trial", *keys, f"**{record.metric}**", *others]
    lines = [
        f"Sweep of `train.{record.family}`: {len(record.trials)} trials, ranked by "
        f"{record.metric} ({record.mode}) on a {record.validation_size:g} validation part of "
        "the train split.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for t in record.trials:
        cells = [str(t.rank), str(t.trial), *(f"`{t.config[k]}`" for k in keys)]
        cells += [f"{t.metrics[m]:.6g}" for m in (record.metric, *others)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def apply_best(record: SweepRecord, params_file: Path = PARAMS_FILE) -> dict[str, Any]:
    """Write the best trial's values into params.yaml, comments and layout kept; returns what
    changed (old -> new). The result is checked before the file is replaced."""
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments and key order survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(params_file.read_text(encoding="utf-8"))
    train = data.get("train") or {}
    if train.get("family") != record.family:
        raise UserError(
            f"{SWEEP_FILE} searched train.{record.family} but train.family is now "
            f"{train.get('family')!r}",
            f"set train.family: {record.family}, or run `mlops sweep` again",
        )
    changed = {}
    for key, value in record.best.config.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.get(part) if hasattr(node, "get") else None
        if node is None or leaf not in node:
            raise UserError(f"params.yaml has no {key} any more", "run `mlops sweep` again")
        if node[leaf] != value:
            changed[key] = (node[leaf], value)
            node[leaf] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    parse_params(pyyaml.safe_load(buffer.getvalue()), str(params_file))
    write_text_atomic(params_file, buffer.getvalue())
    return changed


@click.command("sweep", help=__doc__)
@click.option(
    "--apply-best",
    "apply_best_",
    is_flag=True,
    help=f"run nothing: write the best trial of {SWEEP_FILE} into params.yaml",
)
def sweep(apply_best_: bool) -> None:
    if apply_best_:
        record = SweepRecord.read(SWEEP_FILE)
        changed = apply_best(record)
        for key, (old, new) in changed.items():
            print(f"{PARAMS_FILE}: {key}: {old!r} -> {new!r}")
        if not changed:
            print(f"{PARAMS_FILE} already holds the best trial's values")
        return
    record = run_sweep(load_params())
    best = record.best
    print(f"{len(record.trials)} trials -> {SWEEP_FILE}, {SWEEP_TABLE}")
    print(
        f"best: trial {best.trial}, {record.metric} {best.metrics[record.metric]:.6g}: "
        + ", ".join(f"{k}={v!r}" for k, v in best.config.items())
    )
    print("apply it with `mlops sweep --apply-best` (params.yaml is unchanged until then)")
