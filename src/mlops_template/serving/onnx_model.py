"""The served model: an ONNX graph run by ONNX Runtime, and the descriptor stored beside it.

The package stage writes a directory holding `model.onnx` (the family's `to_onnx` export,
checked against the trained model) and `model.json` (a ServingDescriptor: the feature spec,
the family's name and whether it batches). The service loads only these: no unpickling, no
training library, no family code. Feeds follow the contract (`ModelFamily.to_onnx`): one
[N, 1] input per feature column, named after it, built from the frame `FeatureSpec.frame`
(and `schemas.to_frame`) gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_template.contract import FeatureSpec
from mlops_template.errors import UserError
from mlops_template.model_io import write_dir_atomically

GRAPH = "model.onnx"
DESCRIPTOR = "model.json"
OUTPUT = "probabilities"
_NUMBERS = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class ServingDescriptor(BaseModel):
    """What the served files are: enough to validate requests and run the graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["onnx"] = "onnx"
    family: str
    variant: str
    batchable: bool
    spec: FeatureSpec


class OnnxModel:
    """An ONNX graph that maps the feature frame to class probabilities (float64, class order).

    One thread per call: a server answers several clients at once on each worker, so one call
    should not claim every core. Measured on 2 cores (64 columns, a linear model), one thread
    cost nothing up to 100 rows per call and ~20% on a 1,000-row call."""

    def __init__(self, graph: bytes, descriptor: ServingDescriptor) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings about unused outputs
        try:
            self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise UserError(
                f"ONNX Runtime cannot load the model graph: {str(exc).splitlines()[0][:300]}",
                "re-export it: `dvc repro package --force`",
            ) from None
        self.descriptor = descriptor
        self.spec = descriptor.spec
        self.classes = list(descriptor.spec.classes)
        self._dtypes = self._input_dtypes()
        self._groups: dict[Any, list[str]] = {}
        for name, dtype in self._dtypes.items():
            self._groups.setdefault(dtype, []).append(name)

    @classmethod
    def load(cls, directory: Path | str) -> OnnxModel:
        """The served model in `directory` (the package stage's output, or a stored model)."""
        directory = Path(directory)
        return cls((directory / GRAPH).read_bytes(), read_descriptor(directory))

    def _input_dtypes(self) -> dict[str, Any]:
        """The dtype each column is fed as; the graph must follow the contract's convention."""
        inputs = {i.name: i.type for i in self.session.get_inputs()}
        problems = []
        if sorted(inputs) != sorted(self.spec.names):
            problems.append(
                f"its inputs {sorted(inputs)[:8]} are not the feature columns "
                f"{sorted(self.spec.names)[:8]}"
            )
        dtypes: dict[str, Any] = {}
        for column in self.spec.columns:
            kind = inputs.get(column.name)
            if kind is None:
                continue
            if column.kind == "categorical" and kind == "tensor(string)":
                dtypes[column.name] = object
            elif column.kind != "categorical" and kind in _NUMBERS:
                dtypes[column.name] = _NUMBERS[kind]
            else:
                problems.append(f"input {column.name!r} ({column.kind}) is a {kind}")
        outputs = [o.name for o in self.session.get_outputs()]
        if OUTPUT not in outputs:
            problems.append(f"it has no output {OUTPUT!r} (outputs: {outputs})")
        if problems:
            raise UserError(
                "the ONNX export breaks the model contract: " + "; ".join(problems),
                "make the family's to_onnx follow ModelFamily.to_onnx's docstring "
                "(src/mlops_template/contract.py): one [N, 1] input per column, named after "
                "it, and an output 'probabilities'",
            )
        return dtypes

    def feeds(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """One [N, 1] array per column, as the frame holds it (NaN / "" for missing).

        The columns of one dtype leave the frame as one block and are fed as views of it:
        indexing the frame column by column cost a quarter of the service's CPU (64 columns)."""
        feeds: dict[str, np.ndarray] = {}
        for dtype, names in self._groups.items():
            whole = len(names) == X.shape[1] and list(X.columns) == names
            block = (X if whole else X[names]).to_numpy(dtype=dtype)
            feeds.update((name, block[:, i : i + 1]) for i, name in enumerate(names))
        return feeds

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        (proba,) = self.session.run([OUTPUT], self.feeds(X))
        return np.asarray(proba, dtype=np.float64)


def read_descriptor(directory: Path | str) -> ServingDescriptor:
    path = Path(directory) / DESCRIPTOR
    if not path.is_file() or not (Path(directory) / GRAPH).is_file():
        raise UserError(
            f"no served model in {directory} ({GRAPH} and {DESCRIPTOR} expected)",
            "run `dvc repro package` first",
        )
    try:
        return ServingDescriptor.model_validate_json(path.read_text())
    except ValidationError:
        raise UserError(
            f"{path} is not a served model's descriptor of this template version",
            "package the model again: `dvc repro package --force`",
        ) from None


def write_serving_dir(target: Path, graph: bytes, descriptor: ServingDescriptor) -> None:
    """Write model.onnx and model.json, all or nothing."""

    def fill(directory: Path) -> None:
        (directory / GRAPH).write_bytes(graph)
        (directory / DESCRIPTOR).write_text(descriptor.model_dump_json(indent=2) + "\n")

    write_dir_atomically(Path(target), fill)
