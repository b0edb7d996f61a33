"""`mlops train`: fit the family chosen in params.yaml (through the model contract) and write
artifacts/model/.

Training is seeded, so a rerun on the same inputs gives the same model. Curves and the training
accuracy go to dvclive/ (declared as plots in dvc.yaml, not by DVCLive).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import click

from mlops_template.contract import FeatureSpec
from mlops_template.model_io import ModelDescriptor, fit_model, write_model_dir
from mlops_template.params import Params, load_params
from mlops_template.paths import LIVE_DIR, MODEL_DIR, TRAIN_CSV
from mlops_template.table import feature_spec, read_table


def features_and_labels(df: Any, spec: FeatureSpec) -> tuple[Any, Any]:
    """The typed feature frame and the class indices (positions in spec.classes)."""
    return spec.frame(df), spec.class_indices(df[spec.target])


def train(params: Params) -> ModelDescriptor:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dvclive import Live

    df = read_table(TRAIN_CSV, params)
    spec = feature_spec(params, list(df.columns))
    X, y = features_and_labels(df, spec)
    tp = params.train
    shutil.rmtree(LIVE_DIR, ignore_errors=True)
    with Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        model = fit_model(tp.family, tp.family_params, spec, tp.seed, X, y, live)
        accuracy = (model.predict_proba(X).argmax(axis=1) == y).mean()
        live.summary["train/accuracy"] = round(float(accuracy), 6)
    return write_model_dir(MODEL_DIR, model, tp.family)


@click.command("train", help=__doc__)
def train_command() -> None:
    d = train(load_params())
    print(f"trained {d.family} ({d.variant}) -> {MODEL_DIR}/")
