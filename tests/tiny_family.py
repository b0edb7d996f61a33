"""A tiny model family defined by the tests: a nearest-centroid classifier in numpy.

It proves the kept parts need nothing but the contract: no scikit-learn, no pickle (the model
is saved as .npy and .json). The tests register it in-process (`contract.register_family`) and
copy this file verbatim into a project copy's `src/mlops_template/custom/families/tiny.py` for
subprocess runs. Only numpy, pandas, pydantic and mlops_template are imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from pydantic import Field

from mlops_template.contract import FeatureSpec, ModelFamily, StrictParams

CENTROIDS = "centroids.npy"
SCALING = "scaling.json"


class TinyParams(StrictParams):
    temperature: float = Field(gt=0)  # softmax temperature over negative squared distances


class Family(ModelFamily):
    Params = TinyParams
    serving_packages = ()  # numpy and pandas come with the template
    batchable = False

    params: TinyParams

    def __init__(self, params: Any, spec: FeatureSpec, seed: int) -> None:
        super().__init__(params, spec, seed)
        self.scaling: dict[str, Any] = {}
        self.centroids: np.ndarray | None = None

    def describe(self) -> str:
        return "centroid"

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """Numbers standardised (empty cells -> the mean), booleans 0/1, categories one-hot."""
        parts = []
        for column in self.spec.columns:
            values = X[column.name]
            if column.kind == "categorical":
                for allowed in column.values or ():
                    parts.append((values == allowed).to_numpy(dtype=np.float64))
                continue
            if column.kind == "boolean":
                numbers = values.map(lambda v: np.nan if v is None else float(v))
            else:
                numbers = pd.to_numeric(values)
            mean, std = self.scaling[column.name]
            parts.append((numbers.fillna(mean).to_numpy(dtype=np.float64) - mean) / std)
        return np.column_stack(parts)

    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        for column in self.spec.columns:
            if column.kind == "categorical":
                continue
            values = X[column.name]
            if column.kind == "boolean":
                values = values.map(lambda v: np.nan if v is None else float(v))
            numbers = pd.to_numeric(values)
            std = float(numbers.std()) or 1.0
            self.scaling[column.name] = [float(numbers.mean()), std]
        matrix = self._matrix(X)
        self.centroids = np.stack([matrix[y == k].mean(axis=0) for k in range(len(classes))])
        if live is not None:
            live.summary["tiny/centroids"] = len(classes)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        assert self.centroids is not None, "fit or load first"
        matrix = self._matrix(X)
        distances = ((matrix[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        logits = -distances / self.params.temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def save(self, directory: Path) -> None:
        assert self.centroids is not None, "fit first"
        np.save(directory / CENTROIDS, self.centroids, allow_pickle=False)
        (directory / SCALING).write_text(json.dumps(self.scaling, sort_keys=True))

    @classmethod
    def load(cls, directory: Path, params: Any, spec: FeatureSpec, seed: int) -> Self:
        model = cls(params, spec, seed)
        model.centroids = np.load(directory / CENTROIDS, allow_pickle=False)
        model.scaling = json.loads((directory / SCALING).read_text())
        return model
