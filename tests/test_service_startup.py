"""What the service checks before serving (serving/startup.py).

Fast tier: the checks themselves on model directories made here. Slow tier: the real `bentoml
serve` refusing to start, as a user sees it: nothing packaged, a store that does not hold the
model (BENTOML_HOME not pointing at the repository's .bentoml), a model file changed after
packaging. Each is one message with the fix, exit status 2, no traceback.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers_serving import SYNTH_PROJECT, packaged_project, run

from mlops_template.contract import Column, FeatureSpec
from mlops_template.errors import UserError
from mlops_template.paths import SERVING_DIR
from mlops_template.serving import startup, store

SERVE = (
    sys.executable,
    "-m",
    "bentoml",
    "serve",
    "mlops_template.serving.service:Classifier",
    "--host",
    "127.0.0.1",
    "--port",
    "1",  # never bound: the service refuses before
)


def stored_copy(tmp_path: Path) -> tuple[str, Path]:
    """A model as the store holds it: the model files, BentoML's model.yaml, provenance.json."""
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "model.json").write_text('{"family": "x"}')
    (files / "weights.bin").write_bytes(bytes(range(256)))
    (files / "sub" / "part.npy").write_bytes(b"\x00" * 10)
    tag = f"demo-model:{store.model_version(files)}"
    stored = tmp_path / "stored"
    shutil.copytree(files, stored)
    (stored / "model.yaml").write_text("name: demo-model\n")
    (stored / store.PROVENANCE).write_text("{}")
    return tag, stored


def test_stored_files_hash_to_the_tags_version(tmp_path):
    tag, stored = stored_copy(tmp_path)
    assert startup.stored_files_version(stored) == tag.split(":")[1]
    startup.verify_files(tag, stored)  # the store's own two files do not count


@pytest.mark.parametrize(
    "change",
    ["edit", "append", "add", "remove", "rename", "empty"],
)
def test_a_model_changed_after_packaging_is_refused(tmp_path, change):
    tag, stored = stored_copy(tmp_path)
    weights = stored / "weights.bin"
    if change == "edit":
        weights.write_bytes(bytes(reversed(range(256))))
    elif change == "append":
        weights.write_bytes(weights.read_bytes() + b"\x00")
    elif change == "add":
        (stored / "extra.txt").write_text("x")
    elif change == "remove":
        (stored / "sub" / "part.npy").unlink()
    elif change == "rename":
        weights.rename(stored / "weights2.bin")
    else:
        for path in (weights, stored / "model.json", stored / "sub" / "part.npy"):
            path.unlink()
    with pytest.raises(UserError) as caught:
        startup.verify_files(tag, stored)
    assert f"model {tag} was changed after packaging" in caught.value.message
    assert "bentoml models import" in caught.value.hint


def test_nothing_packaged_names_make_run(tmp_path):
    with pytest.raises(UserError) as caught:
        startup.served_tag(None, root=tmp_path)
    assert "no model to serve" in caught.value.message and "`make run`" in caught.value.hint
    assert startup.served_tag("m:v1", root=tmp_path) == "m:v1"


def test_the_startup_line_names_the_model_and_its_input():
    columns = tuple(Column(name=f"c{k}", kind="numeric", min=0, max=16) for k in range(10))
    spec = FeatureSpec(columns=columns, target="y", classes=(0, 1), shape=(2, 5))
    line = startup.startup_line("d-model:abc", "fam", spec, 500, {"batched": False})
    assert line == (
        "serving model d-model:abc (family fam, classes [0, 1]); input: 10 columns: "
        + ", ".join(f"c{k} (a number from 0 to 16)" for k in range(8))
        + " and 2 more; or nested as 2x5; 1..500 instances per request; batched=False"
    )


# ----------------------------------------------------------------------- real `bentoml serve`


def refused(root: Path, **env: str) -> str:
    done = run(root, *SERVE, timeout=300, **env)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[lines.index(errors[0]) + 1].startswith("fix: "), output
    return output


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return packaged_project(tmp_path_factory, "service-startup")


@pytest.mark.slow
def test_serving_with_nothing_packaged_says_make_run(tmp_path):
    output = refused(tmp_path)
    assert "error: no model to serve" in output and "`make run` first" in output


@pytest.mark.slow
def test_serving_from_the_wrong_store_says_bentoml_home(project, tmp_path):
    output = refused(project, BENTOML_HOME=str(tmp_path / "elsewhere"))
    tag = store.model_tag(SYNTH_PROJECT, project / SERVING_DIR)
    assert f"error: model {tag} is not in the BentoML store at {tmp_path / 'elsewhere'}" in output
    assert "BENTOML_HOME=$PWD/.bentoml" in output


@pytest.mark.slow
def test_serving_a_tampered_model_refuses_to_start(project):
    tag = store.model_tag(SYNTH_PROJECT, project / SERVING_DIR)
    name, version = tag.split(":")
    stored = project / ".bentoml" / "models" / name / version
    keep = ("model.yaml", "model.json", store.PROVENANCE)
    victim = next(p for p in sorted(stored.iterdir()) if p.name not in keep)
    assert victim.name == "model.onnx"  # the graph is what the service runs
    victim.write_bytes(victim.read_bytes() + b"\x00")
    output = refused(project)
    assert f"error: model {tag} was changed after packaging" in output
