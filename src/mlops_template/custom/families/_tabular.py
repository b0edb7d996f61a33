"""Preprocessing the example families share: built from the schema, fitted with the model.

Numeric and boolean columns are imputed (median / most frequent) and standardised; categorical
columns are imputed and one-hot encoded over the values the schema allows. The result is a
dense float matrix, so any estimator can sit behind it. It is part of the saved model: the
service and the evaluation feed raw rows, whatever their scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from mlops_template.contract import FeatureSpec, ModelFamily

MISSING = "__missing__"
FILE = "model.joblib"


def preprocessor(spec: FeatureSpec) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = [c.name for c in spec.columns if c.kind == "numeric"]
    boolean = [c.name for c in spec.columns if c.kind == "boolean"]
    categorical = [c for c in spec.columns if c.kind == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
        )
    if boolean:
        as_float = FunctionTransformer(_to_float, feature_names_out="one-to-one")
        parts.append(
            ("boolean", make_pipeline(as_float, SimpleImputer(strategy="most_frequent")), boolean)
        )
    if categorical:
        encoder = OneHotEncoder(
            categories=[[*(c.values or ()), MISSING] for c in categorical],
            handle_unknown="ignore",
            sparse_output=False,
        )
        imputer = SimpleImputer(strategy="constant", fill_value=MISSING, missing_values=None)
        parts.append(
            ("categorical", make_pipeline(imputer, encoder), [c.name for c in categorical])
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _to_float(X: Any) -> Any:
    frame = pd.DataFrame(X)
    return frame.apply(lambda s: s.map(lambda v: np.nan if v is None else float(v))).to_numpy(
        dtype="float64"
    )


class PipelineFamily(ModelFamily):
    """A family whose model is a scikit-learn estimator behind `preprocessor`, saved with
    joblib (a pickle: load only models you trained). Subclasses give the estimator."""

    serving_packages: ClassVar[tuple[str, ...]] = ("scikit-learn", "joblib")

    def __init__(self, params: Any, spec: FeatureSpec, seed: int) -> None:
        super().__init__(params, spec, seed)
        self.model: Any = None

    def estimator(self) -> Any:
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        from sklearn.pipeline import make_pipeline

        self.model = make_pipeline(preprocessor(self.spec), self.estimator()).fit(X, y)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump(self.model, directory / FILE)

    @classmethod
    def load(cls, directory: Path, params: Any, spec: FeatureSpec, seed: int) -> Self:
        import joblib

        family = cls(params, spec, seed)
        family.model = joblib.load(directory / FILE)
        return family
