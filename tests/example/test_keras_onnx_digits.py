"""The example's CNN (a reshape to 8x8, convolutions) exported to ONNX agrees with the trained
network on the digits test split, as the package stage requires (2 epochs, to stay quick)."""

from __future__ import annotations

import shutil

from project import REPO, set_params
from sklearn.model_selection import train_test_split
from test_keras_onnx import KERAS_SLOW, assert_agrees, fitted, onnx_proba

from mlops_template.custom.dataset import write_example_data
from mlops_template.params import load_params
from mlops_template.table import read_table

pytestmark = KERAS_SLOW


def test_the_cnn_export_agrees_with_the_network_on_the_test_split(tmp_path):
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    set_params(
        tmp_path, {"train": {"family": "keras", "keras": {"architecture": "cnn", "epochs": 2}}}
    )
    params = load_params(tmp_path / "params.yaml")
    write_example_data(tmp_path / params.data.path)
    df = read_table(tmp_path / params.data.path, params)
    train, test = train_test_split(  # the prepare stage's split
        df,
        test_size=params.prepare.test_size,
        random_state=params.prepare.seed,
        stratify=df[params.data.target],
    )
    train.to_csv(tmp_path / "train.csv", index=False)
    model, spec, _ = fitted(tmp_path, tmp_path / "train.csv")
    X = spec.frame(test)
    graph = model.to_onnx()
    assert_agrees(model.predict_proba(X), onnx_proba(graph, spec, X))
    assert model.to_onnx() == graph
