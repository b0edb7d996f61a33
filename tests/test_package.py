"""`mlops package`: only an accepted model enters the BentoML store, under a content-derived tag."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from helpers_serving import REJECTED, mlops, run, trained_project

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.serving import store
from mlops_template.stages.package import read_verdict


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return trained_project(tmp_path_factory, "package")


def models_in_store(root):
    models = root / ".bentoml" / "models"
    return sorted(p.name for p in models.glob(f"{store.MODEL_NAME}/*") if p.name != "latest")


@pytest.mark.slow
def test_refuses_a_model_the_gate_rejected(tmp_path_factory):
    root = trained_project(tmp_path_factory, "rejected", verdict=REJECTED)
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
    ],
    ids=["missing", "invalid-json", "no-verdict", "verdict-not-bool"],
)
def test_a_missing_or_broken_verdict_is_a_clear_error(tmp_path, gate_text, message):
    gate = tmp_path / "reports" / "gate.json"
    if gate_text is not None:
        gate.parent.mkdir()
        gate.write_text(gate_text)
    with pytest.raises(UserError) as caught:
        read_verdict(gate)
    assert message.replace("reports/gate.json", str(gate)) in caught.value.message
    assert "dvc repro gate" in caught.value.hint


@pytest.mark.slow
def test_the_cli_reports_a_missing_verdict_without_a_traceback(tmp_path_factory):
    root = trained_project(tmp_path_factory, "no-verdict")
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
    tag = store.model_tag(project / "artifacts" / "model")
    assert tag in done.stdout
    assert models_in_store(project) == [tag.split(":")[1]]

    packaged = store.read_bentomodel(project / paths.BENTOMODEL_FILE)
    assert packaged["tag"] == tag
    record = packaged["provenance"]
    descriptor = json.loads((project / "artifacts" / "model" / "model.json").read_text())
    assert record["model"]["family"] == descriptor["family"] == "sklearn"
    assert record["model"]["classes"] == descriptor["classes"]
    assert record["gate"] == json.loads((project / "reports" / "gate.json").read_text())
    assert record["metrics"] == json.loads((project / "metrics" / "quality.json").read_text())
    assert record["params"]["train"]["family"] == "sklearn"
    data_md5 = (project / "data.dvc").read_text().split("md5: ")[1].split()[0]
    assert record["data"]["md5"] == data_md5
    assert record["git_commit"] == "unknown"  # the test project is no git checkout
    labels = packaged["labels"]
    assert labels["family"] == "sklearn" and labels["gate"] == "accepted"
    assert labels["data-md5"] == data_md5


@pytest.mark.slow
def test_the_same_model_keeps_its_tag_and_the_export_imports_elsewhere(project, tmp_path):
    first = mlops(project, "package")
    again = mlops(project, "package")
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
    tag = store.model_tag(project / "artifacts" / "model")
    version = tag.split(":")[1]
    imported = fresh / "models" / store.MODEL_NAME / version
    assert (imported / "model.json").read_bytes() == (
        project / "artifacts" / "model" / "model.json"
    ).read_bytes()
    assert (imported / store.PROVENANCE).exists()


@pytest.mark.slow
def test_a_retrained_model_gets_a_new_tag(project):
    model = project / "artifacts" / "model"
    before = store.model_tag(model)
    backup = project / "model-backup"
    shutil.copytree(model, backup)
    try:
        descriptor = json.loads((model / "model.json").read_text())
        descriptor["params"]["seed"] = 7  # any byte change is a different model
        (model / "model.json").write_text(json.dumps(descriptor))
        done = mlops(project, "package")
        assert done.returncode == 0, done.stderr
        after = store.model_tag(model)
        assert after != before and after in done.stdout
        assert store.read_bentomodel(project / paths.BENTOMODEL_FILE)["tag"] == after
    finally:
        shutil.rmtree(model)
        backup.rename(model)
