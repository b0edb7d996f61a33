"""Keras networks (the `keras` extra, TensorFlow): an MLP for any table, or a small CNN for
instances the schema shapes as images (`schema.shape: [rows, cols]`).

The schema-driven preprocessing (scaling, imputation, one-hot) is fitted first and saved beside
the network. TensorFlow is imported only inside these methods. Training is seeded, with
TensorFlow's op determinism on; curves go to DVCLive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field

from mlops_template.contract import FeatureSpec, ModelFamily, StrictParams
from mlops_template.custom.families._tabular import preprocessor
from mlops_template.errors import UserError

NETWORK = "model.keras"
PREPROCESSOR = "preprocess.joblib"


class CnnParams(StrictParams):
    filters: int = Field(ge=1)
    dense_units: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)


class MlpParams(StrictParams):
    hidden_units: list[int] = Field(min_length=1)
    dropout: float = Field(ge=0, lt=1)


class KerasParams(StrictParams):
    architecture: Literal["cnn", "mlp"]
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    validation_split: float = Field(ge=0, lt=1)
    cnn: CnnParams
    mlp: MlpParams


class Family(ModelFamily):
    Params = KerasParams
    serving_packages = ("tensorflow-cpu", "keras", "scikit-learn", "joblib")
    batchable = True  # a row inside a batch costs a fraction of a single call

    params: KerasParams

    def __init__(self, params: Any, spec: FeatureSpec, seed: int) -> None:
        super().__init__(params, spec, seed)
        self.prep: Any = None
        self.network: Any = None

    def describe(self) -> str:
        return self.params.architecture

    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf
        from dvclive.keras import DVCLiveCallback

        keras.utils.set_random_seed(self.seed)
        tf.config.experimental.enable_op_determinism()
        self.prep = preprocessor(self.spec).fit(X)
        inputs = self.prep.transform(X).astype("float32")
        self.network = self._network(keras, inputs.shape[1], len(classes))
        self.network.compile(
            optimizer=keras.optimizers.Adam(self.params.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        self.network.fit(
            inputs,
            y,
            epochs=self.params.epochs,
            batch_size=self.params.batch_size,
            validation_split=self.params.validation_split,
            shuffle=True,
            verbose=0,
            callbacks=[DVCLiveCallback(live=live)] if live is not None else [],
        )

    def _network(self, keras: Any, width: int, n_classes: int) -> Any:
        p = self.params
        layers: list[Any] = [keras.Input(shape=(width,))]
        if p.architecture == "cnn":
            shape = self.spec.shape
            if shape is None or len(shape) != 2 or shape[0] * shape[1] != width:
                raise UserError(
                    f"the cnn architecture needs numeric features shaped as an image "
                    f"(schema.shape: [rows, cols] with rows*cols = {width}); got {shape}",
                    "set schema.shape in params.yaml, or train.keras.architecture: mlp",
                )
            layers += [
                keras.layers.Reshape((*shape, 1)),
                keras.layers.Conv2D(p.cnn.filters, 3, padding="same", activation="relu"),
                keras.layers.Conv2D(p.cnn.filters * 2, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(p.cnn.dense_units, activation="relu"),
                keras.layers.Dropout(p.cnn.dropout, seed=self.seed),
            ]
        else:
            for units in p.mlp.hidden_units:
                layers += [
                    keras.layers.Dense(units, activation="relu"),
                    keras.layers.Dropout(p.mlp.dropout, seed=self.seed),
                ]
        layers.append(keras.layers.Dense(n_classes, activation="softmax"))
        return keras.Sequential(layers)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        inputs = self.prep.transform(X).astype("float32")
        return np.asarray(self.network(inputs, training=False), dtype=np.float64)

    def save(self, directory: Path) -> None:
        import joblib

        joblib.dump(self.prep, directory / PREPROCESSOR)
        self.network.save(directory / NETWORK)
        _without_timestamps(directory / NETWORK)

    @classmethod
    def load(cls, directory: Path, params: Any, spec: FeatureSpec, seed: int) -> Self:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import joblib
        import keras

        family = cls(params, spec, seed)
        family.prep = joblib.load(directory / PREPROCESSOR)
        family.network = keras.models.load_model(directory / NETWORK)
        return family


def _without_timestamps(path: Path) -> None:
    """Rewrite a .keras archive without what changes from save to save (entry dates,
    `date_saved`, `shared_object_id`s that are memory addresses), so the same weights always
    give the same bytes (and the same DVC hash)."""
    import json
    import zipfile

    ids: dict[int, int] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else renumber(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [renumber(v) for v in node]
        return node

    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            if name == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta, sort_keys=True).encode()
            elif name == "config.json":
                data = json.dumps(renumber(json.loads(data))).encode()
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    tmp.replace(path)
