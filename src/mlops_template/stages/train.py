"""`mlops train`: fit the family chosen in params.yaml and write artifacts/model/.

Training is seeded (and TensorFlow op determinism is on), so a rerun on the same inputs gives the
same model. Keras curves go to dvclive/ (declared as plots in dvc.yaml, not by DVCLive).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_template.custom import models
from mlops_template.model_io import write_model_dir
from mlops_template.params import Params, load_params
from mlops_template.stages.prepare import SPLIT_DIR
from mlops_template.stages.validate import read_csv

MODEL_DIR = Path("artifacts/model")
LIVE_DIR = Path("dvclive")


def features_and_labels(
    df: pd.DataFrame, params: Params
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw feature matrix, class indices (position in schema.classes), feature names."""
    classes = list(params.schema_.classes)
    features = [c for c in df.columns if c != params.data.target]
    index = {c: i for i, c in enumerate(classes)}
    y = df[params.data.target].map(index).to_numpy(dtype=np.int64)
    return df[features].to_numpy(dtype=np.float32), y, features


def train(params: Params) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dvclive import Live

    X, y, features = features_and_labels(read_csv(SPLIT_DIR / "train.csv"), params)
    tp = params.train
    shutil.rmtree(LIVE_DIR, ignore_errors=True)
    with Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        model = models.fit(tp, X, y, len(params.schema_.classes), live)
        if tp.family != "keras":
            live.summary["train/accuracy"] = float((np.asarray(model.predict(X)) == y).mean())
    descriptor = {
        "family": tp.family,
        "architecture": tp.architecture,
        "classes": list(params.schema_.classes),
        "features": features,
        "target": params.data.target,
        "params": tp.model_dump(),
    }
    write_model_dir(MODEL_DIR, descriptor, lambda d: models.save_model(model, tp.family, d))
    return descriptor


def run(args: argparse.Namespace) -> int:
    d = train(load_params())
    print(f"trained {d['family']} ({d['architecture']}) -> {MODEL_DIR}/")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train the model family chosen in params.yaml")
    parser.set_defaults(func=run)
