"""`mlops train`: fit the family chosen in params.yaml (through the model contract) and write
artifacts/model/.

Training is seeded, so a rerun on the same inputs gives the same model. Curves and the training
accuracy go to dvclive/ (declared as plots in dvc.yaml, not by DVCLive). `train.compute` says
where the fit runs: here (`local`) or on the Ray cluster at RAY_ADDRESS (`ray`, see
mlops_template/compute/); the outputs are the same files either way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import click

from mlops_template.contract import FeatureSpec, ModelFamily
from mlops_template.model_io import ModelDescriptor, fit_model, write_model_dir
from mlops_template.params import Params, load_params
from mlops_template.paths import LIVE_DIR, MODEL_DIR, TRAIN_CSV
from mlops_template.table import feature_spec, read_table


def features_and_labels(df: Any, spec: FeatureSpec) -> tuple[Any, Any]:
    """The typed feature frame and the class indices (positions in spec.classes)."""
    return spec.frame(df), spec.class_indices(df[spec.target])


def fit_logged(params: Params, train_csv: Path, live_dir: Path) -> ModelFamily:
    """Fit the chosen family on `train_csv`, logging curves and the training accuracy to
    `live_dir`. The one fit both compute backends run (`ray` runs it on a cluster worker)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dvclive import Live

    df = read_table(train_csv, params)
    spec = feature_spec(params, list(df.columns))
    X, y = features_and_labels(df, spec)
    tp = params.train
    shutil.rmtree(live_dir, ignore_errors=True)
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        model = fit_model(tp.family, tp.family_params, spec, tp.seed, X, y, live)
        accuracy = (model.predict_proba(X).argmax(axis=1) == y).mean()
        live.summary["train/accuracy"] = round(float(accuracy), 6)
    return model


def train(params: Params) -> ModelDescriptor:
    """Train where `train.compute` says; either way the outputs are MODEL_DIR and LIVE_DIR."""
    if params.train.compute.backend == "ray":
        from mlops_template.compute.remote import train_on_ray

        return train_on_ray(params)
    model = fit_logged(params, TRAIN_CSV, LIVE_DIR)
    return write_model_dir(MODEL_DIR, model, params.train.family)


def check_compute(params: Params) -> str:
    """Say where training will run, failing (UserError) when it cannot run there."""
    if params.train.compute.backend == "ray":
        from mlops_template.compute.cluster import check_reachable

        return f"the Ray cluster at RAY_ADDRESS={check_reachable()} can be reached"
    return "training runs locally (train.compute: local)"


@click.command("train", help=__doc__)
@click.option(
    "--check",
    is_flag=True,
    help="only check that the compute backend can be reached (run it before `dvc repro`, "
    "which deletes the stage's outputs before the stage runs); writes nothing",
)
def train_command(check: bool) -> None:
    params = load_params()
    if check:
        print(check_compute(params))
        return
    d = train(params)
    print(f"trained {d.family} ({d.variant}) -> {MODEL_DIR}/")
