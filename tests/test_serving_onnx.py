"""The served model is the family's ONNX export, checked against the trained model before it is
packaged: in-process, on the fork's CSV (numeric, categorical, boolean and nullable columns),
with the tiny family and the example families that run without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tiny_family
from fork import DATA_PATH, make_project
from helpers_serving import ACCEPTED, write_verdict
from project import set_params

from mlops_template import contract, paths
from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.model_io import load_model
from mlops_template.params import load_params
from mlops_template.serving import onnx_model, store
from mlops_template.stages import package
from mlops_template.table import read_table

PICKLES = (".joblib", ".pkl", ".pickle", ".keras", ".h5")


def train(family: str) -> None:
    """Fit `family` (params.yaml's block) on the train split and save it, as `mlops train`
    does, without the stage's DVCLive (seconds of imports the fast tier need not pay)."""
    from mlops_template.model_io import fit_model, write_model_dir
    from mlops_template.table import feature_spec, read_header

    params = load_params()
    assert params.train.family == family
    spec = feature_spec(params, read_header(paths.TRAIN_CSV))
    df = read_table(paths.TRAIN_CSV, params)
    X, y = spec.frame(df), spec.class_indices(df[spec.target])
    model = fit_model(family, params.train.family_params, spec, params.train.seed, X, y, None)
    write_model_dir(paths.MODEL_DIR, model, family)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny) -> Path:
    """A fork's project as cwd, its own BentoML home, the tiny family trained on it (the split:
    the CSV's last quarter is the test split)."""
    repo = make_project(tmp_path / "fork")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("BENTOML_HOME", str(repo / ".bentoml"))
    lines = (repo / DATA_PATH).read_text().splitlines(keepends=True)
    cut = 1 + (len(lines) - 1) * 3 // 4
    paths.SPLIT_DIR.mkdir(parents=True)
    paths.TRAIN_CSV.write_text("".join(lines[:cut]))
    paths.TEST_CSV.write_text("".join(lines[:1] + lines[cut:]))
    train("tiny")
    write_verdict(repo, ACCEPTED)
    return repo


def frame_with_gaps() -> tuple:
    """The test split as the model takes it, with missing cells in every kind of column."""
    spec = load_model(paths.MODEL_DIR).spec
    X = spec.frame(read_table(paths.TEST_CSV, load_params()))
    X.loc[X.index[:4], "sulfur"] = np.nan  # nullable numeric
    X.loc[X.index[2:6], "organic"] = np.nan  # boolean
    X.loc[X.index[4:8], "region"] = ""  # categorical
    return spec, X


def retrain(family: str, **block: object) -> None:
    set_params(Path.cwd(), {"train": {"family": family, **block}})
    train(family)


@pytest.mark.parametrize(
    ("family", "train"),
    [
        ("tiny", {}),  # the example families import their converters (seconds): slow tier
        pytest.param("sklearn", {"sklearn": {"estimator": "logreg"}}, marks=pytest.mark.slow),
        pytest.param("sklearn", {"sklearn": {"estimator": "svc"}}, marks=pytest.mark.slow),
        pytest.param("lightgbm", {"lightgbm": {"n_estimators": 20}}, marks=pytest.mark.slow),
    ],
    ids=["tiny", "logreg", "svc", "lightgbm"],
)
def test_the_export_agrees_with_the_trained_model_also_on_missing_cells(project, family, train):
    if family != "tiny":
        pytest.importorskip(family if family != "sklearn" else "skl2onnx")
        retrain(family, **train)
    descriptor = package.export_serving_model(load_params())
    assert descriptor.family == family
    served_files = sorted(p.name for p in paths.SERVING_DIR.iterdir())
    assert served_files == ["model.json", "model.onnx"]  # no pickle, no family file
    spec, X = frame_with_gaps()
    served = onnx_model.OnnxModel.load(paths.SERVING_DIR)
    trained = load_model(paths.MODEL_DIR).predict_proba(X)
    proba = served.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (len(X), len(spec.classes))
    assert (proba.argmax(axis=1) == trained.argmax(axis=1)).all()
    assert np.abs(proba - trained).max() <= package.PROBA_TOLERANCE
    version = store.model_version(paths.SERVING_DIR)
    package.export_serving_model(load_params())  # the same model: the same bytes, the same tag
    assert store.model_version(paths.SERVING_DIR) == version


def test_the_descriptor_records_what_the_service_needs_from_the_family(project: Path) -> None:
    package.export_serving_model(load_params())
    descriptor = json.loads((paths.SERVING_DIR / "model.json").read_text())
    assert descriptor["format"] == "onnx"
    assert (descriptor["family"], descriptor["variant"]) == ("tiny", "centroid")
    assert descriptor["batchable"] is tiny_family.Family.batchable
    assert descriptor["spec"] == json.loads((paths.MODEL_DIR / "model.json").read_text())["spec"]


def perturbed(name: str, factor: float):
    """A to_onnx whose graph has the initializer `name` scaled by `factor` (a broken export)."""
    import onnx
    from onnx import numpy_helper

    original = tiny_family.Family.to_onnx

    def to_onnx(self) -> bytes:
        graph = onnx.load_from_string(original(self))
        for i, tensor in enumerate(graph.graph.initializer):
            if tensor.name == name:
                changed = numpy_helper.to_array(tensor) * factor
                graph.graph.initializer[i].CopyFrom(numpy_helper.from_array(changed, name))
        return graph.SerializeToString()

    return to_onnx


@pytest.mark.parametrize(
    ("name", "factor", "message"),
    [
        ("centroids", -1.0, "test rows get another label"),
        ("scale", 1.001, "probabilities differ by up to"),
    ],
    ids=["labels", "probabilities"],
)
def test_package_refuses_an_altered_export_and_writes_nothing(
    project, monkeypatch, capsys, name, factor, message
):
    monkeypatch.setattr(tiny_family.Family, "to_onnx", perturbed(name, factor))
    assert main(["package"]) == 2
    err = capsys.readouterr().err
    assert "error: the ONNX export disagrees with the trained model on the test split" in err
    assert message in err and "nothing was packaged" in err
    assert "fix: fix the family's to_onnx" in err and "Traceback" not in err
    assert not paths.SERVING_DIR.exists() and not paths.BENTOMODEL_FILE.exists()
    assert not (project / ".bentoml" / "models").exists()


@pytest.mark.slow  # BentoML's import alone takes seconds
def test_package_stores_only_the_portable_files(project: Path) -> None:
    (project / "metrics").mkdir()
    (project / "metrics/quality.json").write_text('{"accuracy": 0.97}')
    (project / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef\n  path: data\n")
    record = package.package()
    assert record.tag == store.model_tag("wine")  # the hash of artifacts/serving
    import bentoml

    # The store BentoML uses in this process (it reads BENTOML_HOME once, at its first use).
    stored = Path(bentoml.models.get(record.tag).path)
    names = sorted(p.name for p in stored.iterdir())
    assert names == ["model.json", "model.onnx", "model.yaml", "provenance.json"]
    assert not [n for n in names if n.endswith(PICKLES)]
    served = onnx_model.OnnxModel.load(stored)  # what the service loads: no family code
    _, X = frame_with_gaps()
    labels = served.predict_proba(X).argmax(axis=1)
    assert (labels == load_model(paths.MODEL_DIR).predict_proba(X).argmax(axis=1)).all()


def test_an_export_that_changes_from_call_to_call_is_refused(project, monkeypatch, capsys):
    calls = iter(range(100))
    original = tiny_family.Family.to_onnx

    def to_onnx(self) -> bytes:
        import onnx

        graph = onnx.load_from_string(original(self))
        graph.graph.name = f"graph-{next(calls)}"  # as skl2onnx's default random names do
        return graph.SerializeToString()

    monkeypatch.setattr(tiny_family.Family, "to_onnx", to_onnx)
    assert main(["package"]) == 2
    err = capsys.readouterr().err
    assert "to_onnx gives different bytes on each call" in err and "deterministic" in err
    assert not paths.SERVING_DIR.exists()


def test_a_family_without_an_export_is_named(project, monkeypatch, capsys):
    monkeypatch.setattr(tiny_family.Family, "to_onnx", contract.ModelFamily.to_onnx)
    assert main(["package"]) == 2
    err = capsys.readouterr().err
    assert "error: the 'tiny' family cannot be served: the centroid model has no ONNX" in err
    assert "fix: write to_onnx in custom/families/tiny.py" in err


def test_an_export_that_breaks_the_input_convention_is_named(project, monkeypatch, capsys):
    import onnx

    original = tiny_family.Family.to_onnx

    def to_onnx(self) -> bytes:
        graph = onnx.load_from_string(original(self))
        graph.graph.input[0].name = "renamed"
        for node in graph.graph.node:
            node.input[:] = ["renamed" if i == "alcohol" else i for i in node.input]
        return graph.SerializeToString()

    monkeypatch.setattr(tiny_family.Family, "to_onnx", to_onnx)
    assert main(["package"]) == 2
    err = capsys.readouterr().err
    assert "error: the ONNX export breaks the model contract: its inputs" in err
    assert "one [N, 1] input per column" in err


@pytest.mark.parametrize(
    ("gap", "passes"),
    [(0.0, True), (package.PROBA_TOLERANCE, True), (package.PROBA_TOLERANCE * 1.01, False)],
    ids=["equal", "at-the-bound", "one-past"],
)
def test_the_probability_bound_is_inclusive(gap: float, passes: bool) -> None:
    trained = np.array([[0.0, 1.0], [0.2, 0.8]])
    exported = trained + np.array([[gap, 0.0], [0.0, 0.0]])  # 0.0 + gap: exactly gap
    if passes:
        package.check_agreement(trained, exported)
    else:
        with pytest.raises(UserError, match=r"probabilities differ by up to 1\.01e-05"):
            package.check_agreement(trained, exported)


def test_one_flipped_label_or_a_wrong_shape_is_refused() -> None:
    trained = np.array([[0.5 + 1e-6, 0.5 - 1e-6], [0.2, 0.8]])
    flipped = np.array([[0.5 - 1e-6, 0.5 + 1e-6], [0.2, 0.8]])  # within 1e-5, another label
    with pytest.raises(UserError, match="1 of 2 test rows get another label") as caught:
        package.check_agreement(trained, flipped)
    assert "probabilities differ" not in caught.value.message
    with pytest.raises(UserError, match=r"it gives \(2, 3\) probabilities"):
        package.check_agreement(trained, np.ones((2, 3)) / 3)
    package.check_agreement(np.zeros((0, 2)), np.zeros((0, 2)))  # an empty split: nothing off


@pytest.mark.parametrize("family", contract.family_names())
def test_every_familys_bento_installs_onnx_runtime_and_no_training_library(family: str) -> None:
    """The bento's packages do not depend on the family (the keras bento carries no
    TensorFlow): the bentofile's, pinned, and what uv.lock says they need."""
    import tomllib

    from mlops_template.records import ProjectRecord
    from mlops_template.release.build import model_bentofile, read_bentofile
    from mlops_template.release.requirements import lock_closure, requirement_name

    repo = Path(__file__).resolve().parents[1]
    config = model_bentofile(
        read_bentofile(repo / "bentofile.yaml"),
        family,
        "demo-model:0123",
        ProjectRecord(name="demo", description="d"),
    )
    packages = config["python"]["packages"]
    assert {requirement_name(p)[0] for p in packages} == {
        "bentoml",
        "model-signing",  # the signature check at start (signing.py)
        "numpy",
        "onnxruntime",
        "pandas",
        "pydantic",
        "pyopenssl",
    }
    assert all("==" in p for p in packages)  # pinned to the tested versions
    needed = lock_closure(tomllib.loads((repo / "uv.lock").read_text()), packages)
    training = {"scikit-learn", "joblib", "lightgbm", "tensorflow", "tensorflow-cpu", "keras"}
    converters = {"onnx", "skl2onnx", "onnxmltools", "tf2onnx"}
    assert "onnxruntime" in needed and not (training | converters) & needed
