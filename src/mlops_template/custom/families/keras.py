"""Keras networks (the `keras` extra, TensorFlow): an MLP for any table, or a small CNN for
instances the schema shapes as images (`schema.shape: [rows, cols]`).

The schema-driven preprocessing (scaling, imputation, one-hot) is fitted first and saved beside
the network. TensorFlow is imported only inside these methods. Training is seeded, with
TensorFlow's op determinism on; curves go to DVCLive. `to_onnx` joins the preprocessing and the
network into one ONNX graph, so the service runs the model without TensorFlow.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field

from mlops_template.contract import FeatureSpec, ModelFamily, StrictParams
from mlops_template.custom.families._tabular import OPSET, preprocessor, sklearn_to_onnx
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

    def to_onnx(self) -> bytes:
        """The preprocessing (skl2onnx) feeding the network (tf2onnx), as one graph whose
        output is "probabilities". The same fitted model always gives the same bytes."""
        import onnx

        prep = sklearn_to_onnx(self.prep, self.spec, "preprocessing")
        network = self._network_onnx()
        for half in (prep, network):
            _set_opsets(half)
        (features,) = prep.graph.output
        (network_input,) = network.graph.input
        joined = onnx.compose.merge_models(
            prep,
            network,
            io_map=[(features.name, network_input.name)],
            name=f"keras_{self.describe()}",
            doc_string="preprocessing (skl2onnx) feeding the network (tf2onnx)",
        )
        _set_opsets(joined)  # merge_models lists each domain once per half
        _canonical_names(joined.graph)
        onnx.checker.check_model(joined, full_check=True)
        return joined.SerializeToString(deterministic=True)

    def _network_onnx(self) -> Any:
        """The network alone as ONNX: input "features" [N, width] float32, output
        "probabilities"; its node names are prefixed so they cannot clash with the
        preprocessing's."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import onnx
        import tensorflow as tf
        import tf2onnx

        network = self.network
        width = int(network.inputs[0].shape[1])
        signature = [tf.TensorSpec([None, width], tf.float32, name="features")]
        call = tf.function(lambda x: network(x, training=False), autograph=False)
        model, _ = tf2onnx.convert.from_function(call, input_signature=signature, opset=OPSET[""])
        model = onnx.compose.add_prefix(model, "network/", rename_inputs=False)
        (output,) = model.graph.output
        for node in model.graph.node:
            node.output[:] = ["probabilities" if o == output.name else o for o in node.output]
        output.name = "probabilities"
        return model

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

    def ray_trainer(self, trainer_args: dict[str, Any]) -> Any:
        """Data-parallel on Ray: Ray Train's TensorFlow trainer, this family's own `fit` inside
        a MultiWorkerMirroredStrategy (each global batch split over the workers, gradients
        averaged), seeded with op determinism as locally."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the trainer imports TensorFlow
        from ray.train.tensorflow import TensorflowTrainer

        from mlops_template.compute.ray_train import worker_loop

        return TensorflowTrainer(worker_loop(_fit_mirrored), **trainer_args)


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


def _set_opsets(model: Any) -> None:
    """Import exactly OPSET: merging needs equal opsets, and tf2onnx declares its own
    ai.onnx.ml version (the network uses no ai.onnx.ml operator)."""
    import onnx

    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in OPSET.items())


def _canonical_names(graph: Any) -> None:
    """Rename the graph's nodes, constants and inner tensors by their position (in place).

    tf2onnx names what it creates from a process-wide counter and Keras numbers layers per
    process (`sequential_3`), so the same weights exported twice would differ in names only;
    positional names make the bytes depend on the model alone. The inputs and the output keep
    their names: they are the interface."""
    interface = {v.name for v in [*graph.input, *graph.output]}
    constants = {t.name for t in graph.initializer}
    names: dict[str, str] = {n: n for n in interface} | {"": ""}
    numbers = itertools.count()
    for i, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{i}"
        for name in node.input:
            if name not in names and name in constants:
                names[name] = f"const_{next(numbers)}"
        for k, name in enumerate(node.output):
            names.setdefault(name, f"{node.name}:{k}")
        node.input[:] = [names[n] for n in node.input]
        node.output[:] = [names[n] for n in node.output]
    for field in (graph.initializer, graph.value_info):
        for tensor in field:
            tensor.name = names.get(tensor.name, tensor.name)
        ordered = sorted(field, key=lambda t: t.name)  # converters order them by old name
        del field[:]
        field.extend(ordered)
    dims: dict[str, str] = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.dim_param = dims.setdefault(dim.dim_param, f"N{len(dims) or ''}")


def _fit_mirrored(
    model: Family, X: pd.DataFrame, y: np.ndarray, live: Any, rank: int, world_size: int
) -> None:
    """One worker's part of the data-parallel fit: this family's `fit` inside a
    MultiWorkerMirroredStrategy (created first, from the TF_CONFIG Ray Train sets). Every
    worker holds all rows and fits the same preprocessing; Keras splits each batch of
    `batch_size` rows over the workers and averages their gradients."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    undo = _fix_multi_worker_fit()
    try:
        with strategy.scope():
            model.fit(X, y, list(model.spec.classes), live)
    finally:
        undo()


def _fix_multi_worker_fit() -> Any:
    """Keras 3's `fit` fails under a multi-worker strategy (keras-team/keras#20585, open for
    Keras 3.15): it all-reduces a whole (x, y) batch to learn its shapes, and averages the
    scalar loss and metrics along an axis they lack. Until the returned function is called,
    the shapes come from this worker's part of the batch, and the scalars are averaged over
    the workers as they are."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    def symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = self._distribute_strategy
        if strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
        data_batch = tf.nest.map_structure(
            lambda v: (
                strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues)
                else v
            ),
            data_batch,
        )
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    reduce_per_replica = trainer.reduce_per_replica

    def reduce(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    trainer.reduce_per_replica = reduce

    def undo() -> None:
        trainer.TensorFlowTrainer._maybe_symbolic_build = build
        trainer.reduce_per_replica = reduce_per_replica

    return undo
