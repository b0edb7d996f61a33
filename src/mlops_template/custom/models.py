"""Model definitions and their hyperparameters (params.yaml `train`). Replace with your own.

Contract with the kept parts: `fit(params, X, y_index, n_classes, live)` returns a fitted model
that `save_model` writes into a directory. Models take RAW feature rows: any scaling or reshaping
lives inside the model, so the service and the evaluation feed it what the data holds.
TensorFlow is imported only inside the keras functions: the sklearn path never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CnnParams(_Strict):
    filters: int = Field(ge=1)
    dense_units: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)


class MlpParams(_Strict):
    hidden_units: list[int] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)


class KerasParams(_Strict):
    architecture: Literal["cnn", "mlp"]
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    validation_split: float = Field(ge=0, lt=1)
    cnn: CnnParams
    mlp: MlpParams


class SvcParams(_Strict):
    C: float = Field(gt=0)
    gamma: float | Literal["scale", "auto"]


class LogregParams(_Strict):
    C: float = Field(gt=0)
    max_iter: int = Field(ge=1)


class SklearnParams(_Strict):
    estimator: Literal["svc", "logreg"]
    svc: SvcParams
    logreg: LogregParams


class TrainParams(_Strict):
    family: Literal["keras", "sklearn"]
    seed: int
    keras: KerasParams
    sklearn: SklearnParams

    @property
    def architecture(self) -> str:
        return self.keras.architecture if self.family == "keras" else self.sklearn.estimator


def fit(params: TrainParams, X: np.ndarray, y: np.ndarray, n_classes: int, live: Any) -> Any:
    """Train the configured model on raw rows X and class indices y (0..n_classes-1)."""
    if params.family == "keras":
        return _fit_keras(params, X, y, n_classes, live)
    return _fit_sklearn(params, X, y)


def save_model(model: Any, family: str, directory: Path) -> str:
    """Write the model file into `directory`; returns its file name."""
    if family == "keras":
        model.save(directory / "model.keras")
        return "model.keras"
    import joblib

    joblib.dump(model, directory / "model.joblib")
    return "model.joblib"


def _fit_sklearn(params: TrainParams, X: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    p = params.sklearn
    if p.estimator == "svc":
        # An RBF kernel on the raw 0..16 pixels (gamma is tuned for that scale), with
        # probabilities calibrated on internal folds: the service returns them.
        svc = SVC(C=p.svc.C, gamma=p.svc.gamma, random_state=params.seed)
        model = make_pipeline(CalibratedClassifierCV(svc, ensemble=False))
    else:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=p.logreg.C, max_iter=p.logreg.max_iter)
        )
    return model.fit(X, y)


def _fit_keras(params: TrainParams, X: np.ndarray, y: np.ndarray, n_classes: int, live: Any) -> Any:
    import keras
    import tensorflow as tf
    from dvclive.keras import DVCLiveCallback

    keras.utils.set_random_seed(params.seed)
    tf.config.experimental.enable_op_determinism()
    p = params.keras
    n_features = X.shape[1]
    layers: list[Any] = [keras.Input(shape=(n_features,)), keras.layers.Rescaling(1 / 16)]
    if p.architecture == "cnn":
        side = round(n_features**0.5)
        if side * side != n_features:
            from mlops_template.errors import UserError

            raise UserError(
                f"the cnn architecture needs a square image, but there are {n_features} features",
                "set train.keras.architecture: mlp for tabular data",
            )
        layers += [
            keras.layers.Reshape((side, side, 1)),
            keras.layers.Conv2D(p.cnn.filters, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(p.cnn.filters * 2, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(p.cnn.dense_units, activation="relu"),
            keras.layers.Dropout(p.cnn.dropout, seed=params.seed),
        ]
    else:
        for units in p.mlp.hidden_units:
            layers += [
                keras.layers.Dense(units, activation="relu"),
                keras.layers.Dropout(p.mlp.dropout, seed=params.seed),
            ]
    layers.append(keras.layers.Dense(n_classes, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(p.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        X.astype("float32"),
        y,
        epochs=p.epochs,
        batch_size=p.batch_size,
        validation_split=p.validation_split,
        shuffle=True,
        verbose=0,
        callbacks=[DVCLiveCallback(live=live)],
    )
    return model
