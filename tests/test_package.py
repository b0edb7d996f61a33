"""`mlops package`: only an accepted model enters the BentoML store, under a content-derived tag
and the project's name, with the record (project, feature spec, lineage, verdict) the service
and the release read.

The packaged models here are trained on the fork's synthetic CSV (tests/fork.py: numeric,
categorical, boolean and nullable columns, string labels), never on the example data.
`packaged_fork` is shared with the release tests.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import fork
import pytest
from helpers_serving import ACCEPTED, REJECTED, TRAIN_SCRIPT, mlops, run, write_verdict

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.records import GateVerdict
from mlops_template.serving import store

REPO = Path(__file__).resolve().parents[1]
PROJECT = "wine"  # fork.fork_params' project.name
_FORKS: dict[str, Path] = {}


def _build_fork(root: Path, family: str) -> None:
    """Train the fork's CSV with `family` once: prepare, train, evaluate in a child process
    that runs this copy's own src/ (the build context of a release, too)."""
    from mlops_template.stages.data import workspace_hash

    fork.make_project(root, family)
    shutil.copy2(REPO / "bentofile.yaml", root / "bentofile.yaml")
    shutil.copytree(
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    md5 = workspace_hash(root / "data")
    (root / "data.dvc").write_text(f"outs:\n- md5: {md5}\n  path: data\n  hash: md5\n")
    done = run(root, sys.executable, "-c", TRAIN_SCRIPT, PYTHONPATH=str(root / "src"))
    assert done.returncode == 0, done.stderr[-3000:]


def trained_fork(factory: Any, name: str, family: str = "sklearn", verdict: Any = None) -> Path:
    """A fresh copy of the fork trained with `family` (trained once per session), with a
    gate verdict (accepted unless given)."""
    template = _FORKS.get(family)
    if template is None:
        template = factory.getbasetemp() / "forks" / family
        _build_fork(template, family)
        _FORKS[family] = template
    target = factory.mktemp(name) / "project"
    shutil.copytree(template, target)
    write_verdict(target, ACCEPTED if verdict is None else verdict)
    return target


def packaged_fork(factory: Any, name: str, family: str = "sklearn") -> Path:
    root = trained_fork(factory, name, family)
    done = mlops(root, "package")
    assert done.returncode == 0, done.stderr
    return root


def models_in_store(root: Path) -> list[str]:
    models = root / ".bentoml" / "models" / store.model_name(PROJECT)
    return sorted(p.name for p in models.glob("*") if p.name != "latest")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return trained_fork(tmp_path_factory, "package")


@pytest.mark.slow
def test_refuses_a_model_the_gate_rejected(tmp_path_factory):
    root = trained_fork(tmp_path_factory, "rejected", verdict=REJECTED)
    done = mlops(root, "package")
    assert done.returncode == 1
    assert "the gate did not accept this model" in done.stderr
    assert "accuracy 0.5 is below the minimum 0.9" in done.stderr
    assert "fix:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "artifacts" / "bento").exists()
    assert models_in_store(root) == []


@pytest.mark.parametrize(
    ("gate_text", "message"),
    [
        (None, "reports/gate.json not found"),
        ("{not json", "reports/gate.json is not valid JSON"),
        ('{"summary": "no verdict"}', "has no boolean 'accepted' verdict"),
        ('{"accepted": "yes"}', "has no boolean 'accepted' verdict"),
        ("[true]", "has no boolean 'accepted' verdict"),
    ],
    ids=["missing", "invalid-json", "no-verdict", "verdict-not-bool", "not-a-mapping"],
)
def test_a_missing_or_broken_verdict_is_a_clear_error(tmp_path, gate_text, message):
    gate = tmp_path / "reports" / "gate.json"
    if gate_text is not None:
        gate.parent.mkdir()
        gate.write_text(gate_text)
    with pytest.raises(UserError) as caught:
        GateVerdict.read(gate)
    assert message.replace("reports/gate.json", str(gate)) in caught.value.message
    assert "dvc repro gate" in caught.value.hint


@pytest.mark.slow
def test_the_cli_reports_a_missing_verdict_without_a_traceback(tmp_path_factory):
    root = trained_fork(tmp_path_factory, "no-verdict")
    (root / "reports" / "gate.json").unlink()
    done = mlops(root, "package")
    assert done.returncode == 2
    assert "error: reports/gate.json not found" in done.stderr
    assert "fix: run the gate first" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "artifacts" / "bento").exists()


@pytest.mark.slow
def test_packages_the_accepted_model_with_its_lineage(project):
    done = mlops(project, "package")
    assert done.returncode == 0, done.stderr
    tag = store.model_tag(PROJECT, project / paths.SERVING_DIR)
    assert tag.startswith("wine-model:") and tag in done.stdout
    assert models_in_store(project) == [tag.split(":")[1]]

    packaged = store.read_bentomodel(project / paths.BENTOMODEL_FILE).to_json()
    assert packaged["tag"] == tag
    record = packaged["provenance"]
    assert record["project"] == {
        "name": "wine",
        "description": "Wine cultivar classifier (synthetic)",
    }
    descriptor = json.loads((project / paths.MODEL_DIR / "model.json").read_text())
    model = record["model"]
    assert model["name"] == "wine-model"
    assert model["family"] == descriptor["family"] == "sklearn"
    assert model["architecture"] == descriptor["variant"] == "logreg"
    assert model["classes"] == descriptor["spec"]["classes"] == fork.CLASSES  # string labels
    assert model["features"] == fork.FEATURES
    assert model["spec"] == descriptor["spec"]
    kinds = {c["name"]: c["kind"] for c in model["spec"]["columns"]}
    assert (kinds["region"], kinds["organic"], kinds["alcohol"]) == (
        "categorical",
        "boolean",
        "numeric",
    )
    assert record["gate"] == GateVerdict.read(project / paths.GATE_FILE).to_json()
    assert record["metrics"] == json.loads((project / paths.QUALITY).read_text())
    assert record["params"]["train"]["family"] == "sklearn"
    assert record["params"]["project"]["name"] == "wine"
    data_md5 = (project / "data.dvc").read_text().split("md5: ")[1].split()[0]
    assert record["data"]["md5"] == data_md5
    assert record["git_commit"] == "unknown"  # the test project is no git checkout
    labels = packaged["labels"]
    assert labels["family"] == "sklearn" and labels["gate"] == "accepted"
    assert labels["data-md5"] == data_md5


@pytest.mark.slow
def test_the_same_model_keeps_its_tag_and_the_export_imports_elsewhere(project, tmp_path):
    cli = (sys.executable, "-m", "mlops_template.cli", "package")
    # Two processes with other hash seeds: nothing in the export may follow set order.
    first = run(project, *cli, PYTHONHASHSEED="1")
    again = run(project, *cli, PYTHONHASHSEED="2")
    assert first.returncode == again.returncode == 0, again.stderr
    assert first.stdout == again.stdout
    assert len(models_in_store(project)) == 1

    fresh = tmp_path / "fresh-home"
    bentomodel = project / paths.BENTOMODEL_FILE
    done = run(
        project,
        sys.executable,
        "-m",
        "bentoml",
        "models",
        "import",
        str(bentomodel),
        BENTOML_HOME=str(fresh),
    )
    assert done.returncode == 0, done.stderr
    tag = store.model_tag(PROJECT, project / paths.SERVING_DIR)
    name, version = tag.split(":")
    imported = fresh / "models" / name / version
    for served in ("model.json", "model.onnx"):
        assert (imported / served).read_bytes() == (
            project / paths.SERVING_DIR / served
        ).read_bytes()
    assert (imported / store.PROVENANCE).exists()
    held = sorted(p.name for p in imported.rglob("*") if p.is_file())
    assert held == ["model.json", "model.onnx", "model.yaml", store.PROVENANCE]  # no pickle


@pytest.mark.slow
def test_a_retrained_model_gets_a_new_tag(project):
    """Other weights, another served graph, another tag (the training descriptor's own bytes
    are not served: a change there alone keeps the tag)."""
    from mlops_template import model_io

    model = project / paths.MODEL_DIR
    served = project / paths.SERVING_DIR
    assert mlops(project, "package").returncode == 0
    before = store.model_tag(PROJECT, served)
    backup = project / "model-backup"
    shutil.copytree(model, backup)
    try:
        loaded = model_io.load_model(model)
        loaded.model.model.steps[-1][1].coef_ *= 1.01  # the estimator's weights, slightly
        model_io.write_model_dir(model, loaded.model, loaded.descriptor.family)
        done = mlops(project, "package")
        assert done.returncode == 0, done.stderr
        after = store.model_tag(PROJECT, served)
        assert after != before and after in done.stdout
        assert store.read_bentomodel(project / paths.BENTOMODEL_FILE).tag == after
    finally:
        shutil.rmtree(model)
        backup.rename(model)


@pytest.mark.slow
def test_the_project_name_names_the_model(tmp_path_factory):
    """A fork that renames its project packages `<name>-model`, whatever the family."""
    root = trained_fork(tmp_path_factory, "renamed")
    fork.set_params(root, {"project": {"name": "cellar", "description": "Cellar sorter"}})
    done = mlops(root, "package")
    assert done.returncode == 0, done.stderr
    packaged = store.read_bentomodel(root / paths.BENTOMODEL_FILE).to_json()
    assert packaged["tag"].startswith("cellar-model:")
    assert packaged["provenance"]["project"]["description"] == "Cellar sorter"
