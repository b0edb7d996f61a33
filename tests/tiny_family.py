"""A tiny model family defined by the tests: a nearest-centroid classifier in numpy.

It proves the kept parts need nothing but the contract: no scikit-learn, no pickle (the model
is saved as .npy and .json), and an ONNX export written with the `onnx` package alone. The
tests register it in-process (`contract.register_family`) and copy this file verbatim into a
project copy's `src/mlops_template/custom/families/tiny.py` for subprocess runs. Only numpy,
pandas, pydantic, onnx (inside `to_onnx`) and mlops_template are imported.
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
    batchable = False

    params: TinyParams

    def __init__(self, params: Any, spec: FeatureSpec, seed: int) -> None:
        super().__init__(params, spec, seed)
        self.scaling: dict[str, Any] = {}
        self.centroids: np.ndarray | None = None

    def describe(self) -> str:
        return "centroid"

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """Numbers and booleans (1.0/0.0 in the frame) standardised, empty cells -> the mean;
        categories one-hot."""
        parts = []
        for column in self.spec.columns:
            values = X[column.name]
            if column.kind == "categorical":
                for allowed in column.values or ():
                    parts.append((values == allowed).to_numpy(dtype=np.float64))
                continue
            mean, std = self.scaling[column.name]
            numbers = pd.to_numeric(values).fillna(mean).to_numpy(dtype=np.float64)
            parts.append((numbers - mean) / std)
        return np.column_stack(parts)

    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        for column in self.spec.columns:
            if column.kind == "categorical":
                continue
            numbers = pd.to_numeric(X[column.name])
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

    def to_onnx(self) -> bytes:
        """The same computation as an ONNX graph, in float64 after the float32 inputs."""
        from onnx import TensorProto, helper, numpy_helper

        assert self.centroids is not None, "fit or load first"
        nodes: list[Any] = []
        inits: list[Any] = []
        inputs: list[Any] = []
        parts: list[str] = []

        def const(name: str, value: Any) -> str:
            inits.append(numpy_helper.from_array(np.asarray(value), name))
            return name

        for i, column in enumerate(self.spec.columns):
            name = column.name
            if column.kind == "categorical":
                inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, [None, 1]))
                for j, allowed in enumerate(column.values or ()):
                    value = const(f"c{i}_{j}", np.array([allowed], dtype=object))
                    nodes += [
                        helper.make_node("Equal", [name, value], [f"eq{i}_{j}"]),
                        helper.make_node(
                            "Cast", [f"eq{i}_{j}"], [f"x{i}_{j}"], to=TensorProto.DOUBLE
                        ),
                    ]
                    parts.append(f"x{i}_{j}")
                continue
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]))
            mean, std = self.scaling[name]
            nodes += [
                helper.make_node("Cast", [name], [f"d{i}"], to=TensorProto.DOUBLE),
                helper.make_node("IsNaN", [f"d{i}"], [f"nan{i}"]),
                helper.make_node("Where", [f"nan{i}", const(f"m{i}", [mean]), f"d{i}"], [f"f{i}"]),
                helper.make_node("Sub", [f"f{i}", f"m{i}"], [f"s{i}"]),
                helper.make_node("Div", [f"s{i}", const(f"sd{i}", [std])], [f"x{i}"]),
            ]
            parts.append(f"x{i}")
        scale = -1.0 / self.params.temperature
        nodes += [
            helper.make_node("Concat", parts, ["matrix"], axis=1),
            helper.make_node("Unsqueeze", ["matrix", const("axis1", np.array([1]))], ["rows"]),
            helper.make_node("Sub", ["rows", const("centroids", self.centroids)], ["diff"]),
            helper.make_node("Mul", ["diff", "diff"], ["squared"]),
            helper.make_node(
                "ReduceSum", ["squared", const("axis2", np.array([2]))], ["dist"], keepdims=0
            ),
            helper.make_node("Mul", ["dist", const("scale", [scale])], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ]
        output = helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, None])
        graph = helper.make_graph(nodes, "centroid", inputs, [output], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        model.ir_version = 9
        return model.SerializeToString()

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
