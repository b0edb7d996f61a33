"""Preprocessing the example families share: built from the schema, fitted with the model.

Numeric columns are imputed (median) and standardised, boolean ones (1.0/0.0 in the feature
frame) imputed with the most frequent value, categorical ones one-hot encoded over the values
the schema allows plus "" (a missing cell). The result is a dense float matrix, so any estimator
can sit behind it. It is part of the saved model, and of its ONNX export (skl2onnx converts
every step): the service and the evaluation feed raw rows, whatever their scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from mlops_template.contract import FeatureSpec, ModelFamily

FILE = "model.joblib"
OPSET = {"": 17, "ai.onnx.ml": 3}  # fixed, so a converter upgrade cannot change the graph


def preprocessor(spec: FeatureSpec) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c.name for c in spec.columns if c.kind == "numeric"]
    boolean = [c.name for c in spec.columns if c.kind == "boolean"]
    categorical = [c for c in spec.columns if c.kind == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
        )
    if boolean:
        parts.append(("boolean", SimpleImputer(strategy="most_frequent"), boolean))
    if categorical:
        encoder = OneHotEncoder(
            categories=[[*(c.values or ()), ""] for c in categorical],  # "": a missing cell
            handle_unknown="ignore",
            sparse_output=False,
        )
        parts.append(("categorical", encoder, [c.name for c in categorical]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def onnx_input_types(spec: FeatureSpec) -> list[tuple[str, Any]]:
    """skl2onnx's input declaration of the contract's ONNX inputs: one [N, 1] per column."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (
            c.name,
            StringTensorType([None, 1]) if c.kind == "categorical" else FloatTensorType([None, 1]),
        )
        for c in spec.columns
    ]


def sklearn_to_onnx(model: Any, spec: FeatureSpec, name: str, options: Any = None) -> Any:
    """A fitted scikit-learn pipeline (or `preprocessor`) as an ONNX ModelProto with the
    contract's inputs, the same bytes in every process: the graph gets a fixed name (skl2onnx
    draws a random one) and its opsets a fixed order."""
    from skl2onnx import convert_sklearn

    graph = convert_sklearn(
        model, initial_types=onnx_input_types(spec), options=options, target_opset=OPSET
    )
    graph.graph.name = name
    # skl2onnx lists the opsets in set order, which changes with each process's hash seed
    opsets = sorted(graph.opset_import, key=lambda o: o.domain)
    del graph.opset_import[:]
    graph.opset_import.extend(opsets)
    return graph


class PipelineFamily(ModelFamily):
    """A family whose model is a scikit-learn estimator behind `preprocessor`, saved with
    joblib for training and evaluation (a pickle: load only models you trained) and served as
    ONNX. Subclasses give the estimator, and register a converter when skl2onnx lacks one."""

    def __init__(self, params: Any, spec: FeatureSpec, seed: int) -> None:
        super().__init__(params, spec, seed)
        self.model: Any = None

    def estimator(self) -> Any:
        raise NotImplementedError

    def register_converter(self) -> None:
        """Teach skl2onnx the estimator's conversion (scikit-learn's own need nothing)."""

    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        from sklearn.pipeline import make_pipeline

        self.model = make_pipeline(preprocessor(self.spec), self.estimator()).fit(X, y)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def to_onnx(self) -> bytes:
        self.register_converter()
        estimator = self.model.steps[-1][1]
        options = {id(estimator): {"zipmap": False}}  # probabilities as one float tensor
        graph = sklearn_to_onnx(self.model, self.spec, self.describe(), options)
        return graph.SerializeToString()

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump(self.model, directory / FILE)

    @classmethod
    def load(cls, directory: Path, params: Any, spec: FeatureSpec, seed: int) -> Self:
        import joblib

        family = cls(params, spec, seed)
        family.model = joblib.load(directory / FILE)
        return family
