"""The keras family's ONNX export on the fork's table (numbers on very different scales, a
categorical, a boolean and a nullable column) with the MLP: ONNX Runtime gives the network's
probabilities, the bytes depend on the model only, and the graph runs without TensorFlow."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fork import make_project

from mlops_template.contract import FeatureSpec, ModelFamily
from mlops_template.model_io import fit_model, write_model_dir
from mlops_template.params import load_params
from mlops_template.serving.onnx_model import OnnxModel, ServingDescriptor
from mlops_template.table import feature_spec, read_table

KERAS_SLOW = [  # the marks of a test that trains or serves a keras model
    pytest.mark.keras,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="needs the keras extra (uv sync --extra keras)",
    ),
]
pytestmark = KERAS_SLOW

TOLERANCE = 1e-5  # the package stage's bound on |ONNX - predict_proba|


def fitted(root: Path, data: Path) -> tuple[ModelFamily, FeatureSpec, pd.DataFrame]:
    """The family train.family names in root/params.yaml, fitted on `data` (no DVCLive)."""
    params = load_params(root / "params.yaml")
    df = read_table(data, params)
    spec = feature_spec(params, list(df.columns))
    tp = params.train
    model = fit_model(
        tp.family,
        tp.family_params,
        spec,
        tp.seed,
        spec.frame(df),
        spec.class_indices(df[spec.target]),
        None,
    )
    return model, spec, df


def onnx_proba(graph: bytes, spec: FeatureSpec, X: pd.DataFrame) -> np.ndarray:
    """Probabilities as the service computes them (ONNX Runtime, the contract's feeds)."""
    descriptor = ServingDescriptor(family="keras", variant="-", batchable=True, spec=spec)
    return OnnxModel(graph, descriptor).predict_proba(X)


def assert_agrees(expected: np.ndarray, got: np.ndarray) -> None:
    assert got.shape == expected.shape
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelFamily, FeatureSpec, Any]:
    root = make_project(
        tmp_path_factory.mktemp("keras-onnx"),
        "keras",
        train={"family": "keras", "keras": {"architecture": "mlp", "epochs": 3}},
    )
    return fitted(root, root / "data" / "wine.csv")


def test_onnx_runtime_gives_the_networks_probabilities_on_every_row(mlp):
    model, spec, df = mlp
    X = spec.frame(df)
    got = onnx_proba(model.to_onnx(), spec, X)
    assert got.shape == (len(df), len(spec.classes))
    assert_agrees(model.predict_proba(X), got)


def test_missing_and_unknown_cells_are_read_as_the_model_reads_them(mlp):
    model, spec, df = mlp
    X = spec.frame(df.head(6)).copy()
    X.loc[X.index[0], "sulfur"] = np.nan  # nullable numeric: imputed
    X.loc[X.index[1], "organic"] = np.nan  # boolean: imputed
    X.loc[X.index[2], "region"] = ""  # a missing category
    X.loc[X.index[3], "region"] = "atlantis"  # a value the schema does not know: all zeros
    X.loc[X.index[4], ["alcohol", "proline", "sulfur"]] = [1e6, -1e6, 0.0]  # far out of range
    assert_agrees(model.predict_proba(X), onnx_proba(model.to_onnx(), spec, X))


def test_one_row_and_zero_rows(mlp):
    model, spec, df = mlp
    graph = model.to_onnx()
    one = spec.frame(df.head(1))
    assert_agrees(model.predict_proba(one), onnx_proba(graph, spec, one))
    none = onnx_proba(graph, spec, spec.frame(df.head(0)))
    assert none.shape == (0, len(spec.classes))


def test_the_same_model_always_exports_the_same_bytes(mlp, tmp_path):
    model, spec, _ = mlp
    first = model.to_onnx()
    assert model.to_onnx() == first  # tf2onnx's name counter has moved on: names are positional
    model.save(tmp_path)  # a reload renames the network's layers (sequential_1, ...)
    reloaded = type(model).load(tmp_path, model.params, spec, model.seed)
    assert reloaded.to_onnx() == first


EXPORT = """
import hashlib, sys
from pathlib import Path
from mlops_template.model_io import load_model
print(hashlib.sha256(load_model(Path(sys.argv[1])).model.to_onnx()).hexdigest())
"""


def test_another_process_exports_the_same_bytes(mlp, tmp_path):
    """Another process, another hash seed (this one's is random): nothing in the graph may
    follow a set's order."""
    model, _, _ = mlp
    write_model_dir(tmp_path / "model", model, "keras")
    seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    done = subprocess.run(
        [sys.executable, "-c", EXPORT, str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": seed, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == hashlib.sha256(model.to_onnx()).hexdigest()


def test_the_graph_runs_with_onnx_runtime_and_numpy_only(mlp, tmp_path):
    model, spec, df = mlp
    X = spec.frame(df)
    (tmp_path / "model.onnx").write_bytes(model.to_onnx())
    np.savez(
        tmp_path / "rows.npz",
        **{
            c.name: X[c.name]
            .to_numpy(object if c.kind == "categorical" else np.float32)
            .reshape(-1, 1)
            for c in spec.columns
        },
        expected=model.predict_proba(X),
    )
    script = textwrap.dedent(
        """
        import sys
        for name in ("tensorflow", "keras", "tf2onnx", "sklearn", "skl2onnx", "joblib"):
            sys.modules[name] = None  # importing any of them now fails
        import numpy as np
        import onnxruntime as ort

        rows = dict(np.load("rows.npz", allow_pickle=True))
        expected = rows.pop("expected")
        session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
        (proba,) = session.run(["probabilities"], rows)
        assert (proba.argmax(axis=1) == expected.argmax(axis=1)).all()
        print(f"{len(proba)} rows, max |dp| {abs(proba - expected).max():.1e}")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{len(df)} rows")
