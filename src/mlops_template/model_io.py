"""One way to save and load a trained model, shared by training, evaluation, packaging and the
service. It knows families only through the contract (`mlops_template.contract`).

A model directory holds `model.json` (the ModelDescriptor: family, feature spec, params, seed)
and whatever files the family's `save` wrote.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_template import contract
from mlops_template.errors import UserError

DESCRIPTOR = "model.json"


class ModelDescriptor(BaseModel):
    """What a model directory holds: enough to load it and to validate its input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    variant: str
    spec: contract.FeatureSpec
    params: dict[str, Any]
    seed: int

    @classmethod
    def of(cls, model: contract.ModelFamily, family_name: str) -> ModelDescriptor:
        return cls(
            family=family_name,
            variant=model.describe(),
            spec=model.spec,
            params=model.params.model_dump(mode="json"),
            seed=model.seed,
        )

    def to_bytes(self) -> bytes:
        """The bytes of `model.json` (the same for the same model, on every machine)."""
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


@dataclass
class LoadedModel:
    """A trained classifier that maps raw feature rows to class probabilities."""

    descriptor: ModelDescriptor
    path: Path
    model: contract.ModelFamily

    @property
    def spec(self) -> contract.FeatureSpec:
        return self.descriptor.spec

    @property
    def classes(self) -> list[Any]:
        return list(self.descriptor.spec.classes)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> list[Any]:
        return [self.classes[i] for i in self.predict_proba(X).argmax(axis=1)]

    @property
    def size_bytes(self) -> int:
        """The bytes of the model's own files (the descriptor excluded)."""
        return sum(
            p.stat().st_size for p in self.path.rglob("*") if p.is_file() and p.name != DESCRIPTOR
        )


def read_descriptor(directory: Path | str) -> ModelDescriptor:
    path = Path(directory) / DESCRIPTOR
    if not path.exists():
        raise UserError(
            f"no trained model at {directory} ({DESCRIPTOR} missing)", "run `dvc repro train` first"
        )
    try:
        return ModelDescriptor.model_validate_json(path.read_text())
    except ValidationError:
        raise UserError(
            f"{path} is not a model descriptor of this template version",
            "retrain: `dvc repro train --force`",
        ) from None


def missing_packages(family: str, exc: ImportError) -> UserError:
    return UserError(
        f"the {family!r} model family needs packages that are not installed ({exc.name})",
        f"install its extra: `uv sync --extra {family}` (or `make run`, which picks it)",
    )


def load_model(directory: Path | str) -> LoadedModel:
    directory = Path(directory)
    descriptor = read_descriptor(directory)
    family = contract.get_family(descriptor.family)
    params = family.Params.model_validate(descriptor.params)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        model = family.load(directory, params, descriptor.spec, descriptor.seed)
    except ImportError as exc:
        raise missing_packages(descriptor.family, exc) from None
    return LoadedModel(descriptor, directory, model)


def fit_model(
    family_name: str,
    params: BaseModel,
    spec: contract.FeatureSpec,
    seed: int,
    X: Any,
    y: Any,
    live: Any,
) -> contract.ModelFamily:
    """Train a model of the named family (a missing extra is a UserError, not a traceback)."""
    family = contract.get_family(family_name)
    model = family(params, spec, seed)
    try:
        model.fit(X, y, list(spec.classes), live)
    except ImportError as exc:
        raise missing_packages(family_name, exc) from None
    return model


def write_model_dir(target: Path, model: contract.ModelFamily, family_name: str) -> ModelDescriptor:
    """Save the model and its descriptor into a temp dir beside `target`, then swap it in."""
    descriptor = ModelDescriptor.of(model, family_name)

    def fill(directory: Path) -> None:
        model.save(directory)
        (directory / DESCRIPTOR).write_bytes(descriptor.to_bytes())

    write_dir_atomically(Path(target), fill)
    return descriptor


def write_dir_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """`fill` a temp dir beside `target`, then swap it in: never a half-written `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes directories private; outputs are for all to read
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
