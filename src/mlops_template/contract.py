"""The one contract between the template and a model family, and the registry of families.

A family is one module in `mlops_template/custom/families/`, named after the family, holding a
subclass of `ModelFamily` called `Family`. Everything the kept parts (stages, serving, release,
CI) know about a model goes through this class: they never name a family.

Family modules import their heavy libraries (TensorFlow, LightGBM, ...) inside methods, so
validating params or listing families stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlops_template.errors import UserError

FAMILIES_PACKAGE = "mlops_template.custom.families"
FAMILIES_DIR = Path(__file__).parent / "custom" / "families"


class StrictParams(BaseModel):
    """Base for a family's hyperparameters: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(BaseModel):
    """One feature column as the schema declares it; the service's request model is built
    from these, so each column's own bounds and allowed values are enforced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["numeric", "categorical", "boolean"]
    integer: bool = False
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None  # allowed values of a categorical column
    nullable: bool = False

    def describe(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(repr(v) for v in self.values or ())
        if self.kind == "boolean":
            return "true or false"
        what = "an integer" if self.integer else "a number"
        if self.min is not None and self.max is not None:
            return f"{what} from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"{what} >= {self.min:g}"
        if self.max is not None:
            return f"{what} <= {self.max:g}"
        return what


class FeatureSpec(BaseModel):
    """What a model takes and predicts: its feature columns in order, the target, the classes.

    `shape` optionally lets a client send an instance as a nested list of that shape (e.g. an
    image as rows of pixels), read row by row into the columns.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: tuple[Column, ...]
    target: str
    classes: tuple[int | str, ...]
    shape: tuple[int, ...] | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """The feature columns of `df`, in the spec's order, as every model takes them: numbers
        and booleans as float64 (booleans 1.0/0.0, missing NaN), categories as text (missing
        ""). The same representation as the ONNX inputs (`ModelFamily.to_onnx`), so a model
        and its export see the same values."""
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise UserError(
                f"the data lacks feature columns the model needs: {', '.join(missing[:8])}",
                "use data with the columns the model was trained on",
            )
        out: dict[str, Any] = {}
        for column in self.columns:
            values = df[column.name]
            if column.kind == "categorical":
                out[column.name] = pd.Series(
                    ["" if pd.isna(v) else str(v) for v in values], index=df.index, dtype=object
                )
            elif column.kind == "boolean":
                out[column.name] = np.asarray([_flag(v) for v in values], dtype=np.float64)
            else:
                numbers = pd.to_numeric(values).astype("Float64")
                out[column.name] = numbers.to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(out, index=df.index)

    def class_indices(self, labels: pd.Series) -> np.ndarray:
        """Class labels -> positions in `classes` (the order of predict_proba's columns)."""
        index = {str(c): i for i, c in enumerate(self.classes)}
        return labels.astype(str).map(index).to_numpy(dtype=np.int64)


def _flag(value: Any) -> float:
    """A boolean cell as a number: 1.0, 0.0, or NaN when missing ("True"/"False" text too)."""
    if pd.isna(value):
        return np.nan
    if isinstance(value, str):
        return {"true": 1.0, "false": 0.0}.get(value.strip().lower(), np.nan)
    return float(value)


class ModelFamily(ABC):
    """A model family: how to fit, predict, save and load one kind of model.

    Subclasses set `Params` (the pydantic model of `train.<family>` in params.yaml) and
    `batchable` (whether the service should merge concurrent requests into one call; the
    package stage records it beside the ONNX export, so the service never imports the family).
    Models take the feature frame (`FeatureSpec.frame`): scaling and encoding live inside the
    model, and inside its ONNX export, which is what the service runs.
    """

    Params: ClassVar[type[BaseModel]]
    batchable: ClassVar[bool] = False

    def __init__(self, params: BaseModel, spec: FeatureSpec, seed: int) -> None:
        self.params = params
        self.spec = spec
        self.seed = seed

    def describe(self) -> str:
        """A short name for the variant trained (shown in summaries and the model card)."""
        return type(self).__module__.rsplit(".", 1)[-1]

    @abstractmethod
    def fit(self, X: pd.DataFrame, y: np.ndarray, classes: list[Any], live: Any) -> None:
        """Train on the feature frame X and class indices y (0..len(classes)-1).

        `live` is a DVCLive `Live` for curves and summaries (or None)."""

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one row per row of X, columns in the order of the classes."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted model's files into `directory` (which exists and is empty)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: BaseModel, spec: FeatureSpec, seed: int) -> Self:
        """Read a model that `save` wrote."""

    def to_onnx(self) -> bytes:
        """The fitted model as a serialized ONNX graph: what the service runs (ONNX Runtime, so
        no unpickling and no training library in the bento).

        Inputs: one per feature column, named after the column, shaped [N, 1], holding what
        `FeatureSpec.frame` holds: float32 (or float64) for numeric and boolean columns
        (missing = NaN, booleans 1.0/0.0), string for categorical ones (missing = "").
        Output "probabilities": float [N, len(classes)] in class order (other outputs are
        ignored). The same model must give the same bytes on every call and in every process
        (no random graph names, no timestamps, nothing in set order, which follows the
        process's hash seed): the served model's tag is the hash of these bytes. The package
        stage refuses an export that breaks this convention, or that disagrees with
        `predict_proba` on the test split (another label, or a probability off by > 1e-5)."""
        raise NotImplementedError(f"the {self.describe()} model has no ONNX export (to_onnx)")

    def ray_trainer(self, trainer_args: dict[str, Any]) -> Any:
        """Optional: a Ray Train trainer that fits this model data-parallel (`train.compute: ray`).
        None (the default): the contract's `fit` runs as one process on one Ray worker.

        Build the trainer of your library (any Ray Train data-parallel trainer) with
        `**trainer_args` passed on unchanged: the datasets (the train split, read by the workers
        from its file), the scaling (`num_workers`, `cpus_per_worker` from params), where the
        result goes, and `train_loop_config` (this unfitted model). Its `train_loop_per_worker`
        is `mlops_template.compute.ray_train.worker_loop(fit)`, with
        `fit(model, X, y, live, rank, world_size)` a module-level function that trains `model`
        in place on every worker, together (e.g. through the trainer's collective backend).
        Every worker gets all rows, in the split file's order (take your share by rank, or let
        your library shard them); `live` is DVCLive on rank 0, None elsewhere. The loop then
        saves the model with `save` on every worker and checkpoints rank 0's files and DVCLive
        files; `mlops train` loads them with `load` and writes artifacts/model and dvclive/."""
        return None


_REGISTERED: dict[str, type[ModelFamily]] = {}


def register_family(name: str, family: type[ModelFamily]) -> None:
    """Register a family defined outside custom/families/ (a plugin, or a test's adapter)."""
    _REGISTERED[name] = family


def family_names() -> list[str]:
    """Every family module in custom/families/ (private modules start with '_'), and every
    family registered with `register_family`."""
    found = {
        m.name for m in pkgutil.iter_modules([str(FAMILIES_DIR)]) if not m.name.startswith("_")
    }
    return sorted(found | set(_REGISTERED))


def get_family(name: str) -> type[ModelFamily]:
    """The family class registered under `name` (the module custom/families/<name>.py)."""
    if not isinstance(name, str) or name not in family_names():
        known = ", ".join(family_names()) or "none"
        raise UserError(
            f"no model family named {name!r} (known: {known})",
            f"set train.family to one of them, or add src/mlops_template/custom/families/"
            f"{name}.py (see the README: 'Add your own model family')",
        )
    if name in _REGISTERED:
        return _REGISTERED[name]
    module = importlib.import_module(f"{FAMILIES_PACKAGE}.{name}")
    family = getattr(module, "Family", None)
    if not (isinstance(family, type) and issubclass(family, ModelFamily)):
        raise UserError(
            f"custom/families/{name}.py defines no `Family` class derived from ModelFamily",
            "name the family's class `Family` and derive it from mlops_template.contract."
            "ModelFamily",
        )
    return family
