"""`mlops release build` and `mlops release smoke`: the tagged bento of exactly the packaged
model, exported, imported into an empty BentoML home, served, and checked for real.

The models are the fork's (tests/fork.py: a synthetic CSV with numeric, categorical, boolean
and nullable columns, string labels), packaged by test_package.packaged_fork: the scikit-learn
family, and LightGBM (the family from another library) through the same path."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile

import pytest
import yaml
from helpers_serving import REJECTED, REPO, mlops, run
from test_package import packaged_fork, trained_fork

from mlops_template import paths
from mlops_template.serving import store

pytestmark = pytest.mark.slow

VERSION = "v0.1.0"
BENTO_NAME = "wine-service"  # store.bento_name of fork.fork_params' project.name


LOCK_FILES = ("pyproject.toml", "uv.lock", "README.md")  # the lock the bento installs from


def releasable_fork(tmp_path_factory, name: str, family: str = "sklearn"):
    """A packaged fork with the project's pyproject.toml and uv.lock, as a release has them."""
    root = packaged_fork(tmp_path_factory, name, family)
    for lock_file in LOCK_FILES:
        shutil.copy2(REPO / lock_file, root / lock_file)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return releasable_fork(tmp_path_factory, "release")


def build(project, version: str = VERSION):
    done = mlops(project, "release", "build", "--version", version, "--out", "dist")
    assert done.returncode == 0, done.stderr
    return project / "dist" / f"{BENTO_NAME}-{version}.bento", done.stdout


@pytest.fixture(scope="module")
def built(project):
    return build(project)


def split_rows(project) -> int:
    return len((project / paths.TEST_CSV).read_text().strip().splitlines()) - 1


def requirement_names(bento) -> set[str]:
    """The packages the bento installs, each pinned by uv.lock and verified by its hashes."""
    text = bento_member(bento, "env/python/requirements.txt")
    blocks = re.split(r"\n(?=\S)", text.strip())
    hashed = [b for b in blocks if "--hash=sha256:" in b]
    for block in hashed:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+", block), block  # pinned
    names = {b.split("==")[0].lower() for b in hashed}
    unhashed = [b for b in blocks if "--hash=" not in b]
    # BentoML appends its own pin; the same version is locked, with hashes, above it.
    assert all(b.split("==")[0] in names for b in unhashed), unhashed
    return names


def bento_member(path, name: str) -> str:
    with tarfile.open(path) as archive:
        return archive.extractfile(f"./{name}").read().decode()


def test_build_names_the_bento_by_the_release_and_packs_the_packaged_model(project, built):
    bento, stdout = built
    assert bento.is_file() and str(bento) in stdout
    info = yaml.safe_load(bento_member(bento, "bento.yaml"))
    packaged = store.read_bentomodel(project / paths.BENTOMODEL_FILE).to_json()
    assert (info["name"], info["version"]) == (BENTO_NAME, VERSION)
    assert bento_member(bento, "README.md").strip() == "Wine cultivar classifier (synthetic)"
    assert info["labels"]["project"] == "wine"
    assert info["args"]["model_tag"] == packaged["tag"]
    assert [m["tag"] for m in info["services"][0]["models"]] == [packaged["tag"]]
    assert info["labels"]["model-family"] == "sklearn"
    assert {"name": "BENTOML_DO_NOT_TRACK", "value": "true", "stage": "all"} in info["envs"]
    version = packaged["tag"].split(":")[1]
    with tarfile.open(bento) as archive:
        names = archive.getnames()
        name = store.model_name("wine")
        record = archive.getmember(f"./models/{name}/{version}/{store.PROVENANCE}")
    assert record.mode & 0o444 == 0o444  # readable by whichever user serves the bento
    sources = {n for n in names if n.startswith("./src/") and n.endswith(".py")}
    package = REPO / "src" / "mlops_template"
    needed = {
        "__init__.py",
        "errors.py",
        "files.py",
        "paths.py",
        "records.py",
        "contract.py",
        "model_io.py",
        "signing.py",  # the signature check at start
    }
    needed |= {f"serving/{p.name}" for p in (package / "serving").glob("*.py")}
    assert sources == {f"./src/mlops_template/{n}" for n in needed}  # only what the service needs
    stored = {n for n in names if n.startswith(f"./models/{name}/{version}/")}
    held = sorted(n.rsplit("/", 1)[1] for n in stored if archive_is_file(bento, n))
    assert held == ["model.json", "model.onnx", "model.yaml", store.PROVENANCE]  # no pickle


def archive_is_file(path, name: str) -> bool:
    with tarfile.open(path) as archive:
        return archive.getmember(name).isfile()


SERVICE_PACKAGES = {"bentoml", "numpy", "onnxruntime", "pandas", "pydantic"}
TRAINING_PACKAGES = {"scikit-learn", "joblib", "lightgbm", "tensorflow", "tensorflow-cpu", "keras"}
CONVERTERS = {"onnx", "skl2onnx", "onnxmltools", "tf2onnx"}  # used when packaging, not serving


def test_the_bento_installs_onnx_runtime_and_no_training_library(built):
    bento, _ = built
    names = requirement_names(bento)
    assert names >= SERVICE_PACKAGES
    assert not (TRAINING_PACKAGES | CONVERTERS) & names
    assert not {"dvc", "dvclive", "evidently", "ray"} & names  # the pipeline's, not the service's


def test_smoke_serves_the_exported_bento_from_a_fresh_home_and_agrees(project, built):
    bento, _ = built
    done = mlops(project, "release", "smoke", str(bento))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test passed" in done.stdout
    rows = split_rows(project)
    assert f"{rows} test rows, {rows}/{rows} labels agree with the offline model" in done.stdout


def test_smoke_fails_when_the_served_model_is_not_the_offline_one(project, built, tmp_path_factory):
    bento, _ = built
    other = trained_fork(tmp_path_factory, "other-model", family="lightgbm")
    done = mlops(
        project,
        "release",
        "smoke",
        str(bento),
        "--model-dir",
        str(other / "artifacts" / "model"),
        "--bentomodel",
        str(project / paths.BENTOMODEL_FILE),
    )
    assert done.returncode == 1
    assert "smoke test FAILED" in done.stdout
    assert "probabilities differ" in done.stdout


def test_build_refuses_an_invalid_release_version(project):
    done = mlops(project, "release", "build", "--version", "Release 1", "--out", "dist2")
    assert done.returncode == 2
    assert "release version 'Release 1' is not a valid BentoML tag part" in done.stderr
    assert not (project / "dist2").exists()


def test_build_refuses_unknown_service_arguments(project):
    done = mlops(project, "release", "build", "--version", "v9", "--out", "d", "--arg", "rows=5")
    assert done.returncode == 2 and "invalid --arg" in done.stderr


def test_build_refuses_a_bentomodel_of_a_rejected_model(project, tmp_path):
    """A .bentomodel whose record says 'not accepted' never becomes a bento."""
    work = tmp_path / "rejected.bentomodel.d"
    with tarfile.open(project / paths.BENTOMODEL_FILE) as archive:
        # the "data" filter exists from Python 3.11.4 (3.12 everywhere)
        archive.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (work / store.PROVENANCE).write_text(
        json.dumps({**json.loads((work / store.PROVENANCE).read_text()), "gate": REJECTED})
    )
    forged = tmp_path / "forged.bentomodel"
    with tarfile.open(forged, "w:xz") as archive:
        archive.add(work, arcname=".")
    done = mlops(
        project,
        "release",
        "build",
        "--version",
        "v9.9.9",
        "--out",
        str(tmp_path / "dist"),
        "--bentomodel",
        str(forged),
    )
    assert done.returncode == 2
    assert "holds a model the gate did not accept" in done.stderr
    assert not (tmp_path / "dist").exists()


def test_build_imports_the_packaged_model_into_an_empty_store(project, tmp_path):
    """A release job starts with an empty BentoML home: the .bentomodel is all it needs."""
    shutil.copytree(project, tmp_path / "clone", ignore=shutil.ignore_patterns(".bentoml", "dist"))
    clone = tmp_path / "clone"
    done = mlops(clone, "release", "build", "--version", "v0.2.0", "--out", "dist")
    assert done.returncode == 0, done.stderr
    listed = run(clone, sys.executable, "-m", "bentoml", "models", "list", "-o", "json")
    tags = [m["tag"] for m in json.loads(listed.stdout)]
    assert tags == [store.read_bentomodel(clone / paths.BENTOMODEL_FILE).tag]
    assert (clone / "dist" / f"{BENTO_NAME}-v0.2.0.bento").is_file()


def test_the_lightgbm_family_is_released_like_the_others(tmp_path_factory):
    """The third family, from another library: packaged as ONNX, built into a bento that
    carries no LightGBM (nor any other training library), served and checked against the
    offline (LightGBM) model on the fork's data, categorical and nullable columns included."""
    root = releasable_fork(tmp_path_factory, "lightgbm-release", family="lightgbm")
    bento, stdout = build(root)
    assert "with lightgbm model wine-model:" in stdout
    info = yaml.safe_load(bento_member(bento, "bento.yaml"))
    assert info["labels"]["model-family"] == "lightgbm"
    names = requirement_names(bento)
    assert names >= SERVICE_PACKAGES
    assert not (TRAINING_PACKAGES | CONVERTERS) & names
    done = mlops(root, "release", "smoke", str(bento))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = split_rows(root)
    assert f"{rows}/{rows} labels agree with the offline model" in done.stdout


def test_smoke_sends_the_feature_frame_as_a_client_would():
    """The frame holds booleans as 1.0/0.0 and a missing category as "": a client sends
    true/false and null, whole numbers for integer columns."""
    import pandas as pd

    from mlops_template.contract import Column, FeatureSpec
    from mlops_template.release.smoke import instances

    spec = FeatureSpec(
        columns=(
            Column(name="n", kind="numeric", integer=True, nullable=True),
            Column(name="b", kind="boolean", nullable=True),
            Column(name="c", kind="categorical", values=("x", "y"), nullable=True),
        ),
        target="t",
        classes=(0, 1),
    )
    raw = pd.DataFrame({"n": [3.0, None], "b": [True, None], "c": [None, "y"]})
    rows = instances(spec.frame(raw), spec)
    assert rows == [[3, True, None], [None, None, "y"]]
    assert isinstance(rows[0][0], int) and rows[0][1] is True
    assert instances(spec.frame(raw.assign(b=[False, False])), spec)[0][1] is False
