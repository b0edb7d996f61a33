"""One way to load a trained model, shared by evaluation, packaging and the service.

A model directory holds `model.json` (family, classes, feature names, params) and the model file.
TensorFlow is imported only when the family is keras.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_template.errors import UserError

DESCRIPTOR = "model.json"


@dataclass
class LoadedModel:
    """A trained classifier that maps raw rows to class probabilities."""

    family: str
    architecture: str
    classes: list[Any]
    features: list[str]
    params: dict[str, Any]
    path: Path
    file: str
    _model: Any

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self.family == "keras":
            return np.asarray(self._model(X, training=False), dtype=np.float64)
        return np.asarray(self._model.predict_proba(X), dtype=np.float64)

    def predict(self, X: np.ndarray) -> list[Any]:
        return [self.classes[i] for i in self.predict_proba(X).argmax(axis=1)]

    @property
    def size_bytes(self) -> int:
        return (self.path / self.file).stat().st_size


def read_descriptor(directory: Path) -> dict[str, Any]:
    path = Path(directory) / DESCRIPTOR
    if not path.exists():
        raise UserError(
            f"no trained model at {directory} ({DESCRIPTOR} missing)", "run `dvc repro train` first"
        )
    return json.loads(path.read_text())


def load_model(directory: Path | str) -> LoadedModel:
    directory = Path(directory)
    info = read_descriptor(directory)
    file = directory / info["file"]
    if info["family"] == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import keras
        except ImportError:
            raise UserError(
                "this model is a keras model but TensorFlow is not installed",
                "install the extra: `uv sync --extra keras`",
            ) from None
        model = keras.models.load_model(file)
    else:
        import joblib

        model = joblib.load(file)
    return LoadedModel(
        info["family"],
        info["architecture"],
        info["classes"],
        info["features"],
        info.get("params", {}),
        directory,
        info["file"],
        model,
    )


def write_model_dir(target: Path, descriptor: dict[str, Any], save: Any) -> None:
    """Write a model directory atomically: `save(tmpdir) -> file name`, then swap it in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        descriptor = {**descriptor, "file": save(tmp)}
        (tmp / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
