"""Names, tags and BentoML store access shared by the package stage, the service and the release.

One rule for model versions: a model's version is a hash of its served files (artifacts/serving:
the ONNX graph and its descriptor), so the same model gets the same tag in every store, and a
tag names exactly one set of bytes. The service and the
release select the model by that exact tag, never by "latest".

BentoML is imported inside the functions that need it: `mlops --help` and the stages that never
touch a store stay fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError
from mlops_template.paths import BENTOMODEL_FILE, SERVING_DIR
from mlops_template.records import PackagedModel, Provenance

PROVENANCE = "provenance.json"  # written into the stored model next to model.json
VERSION_LENGTH = 24  # hex digits of the sha256 kept in the version (96 bits)

_TAG_PART = r"[a-z0-9]([-._a-z0-9]*[a-z0-9])?"
TAG_PART_RE = re.compile(rf"^{_TAG_PART}$")
MAX_TAG_PART = 63


def model_version(model_dir: Path | str = SERVING_DIR) -> str:
    """A hash of every file in the served model's directory (names and bytes), in a stable
    order."""
    model_dir = Path(model_dir)
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"no packaged model in {model_dir}", "run `dvc repro package` first")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:VERSION_LENGTH]


def model_name(project: str) -> str:
    """The model's name in the BentoML store, from params.yaml `project.name`."""
    return f"{project}-model"


def bento_name(project: str) -> str:
    """The bento's (and the image's) name, from params.yaml `project.name`."""
    return f"{project}-service"


def model_tag(project: str, model_dir: Path | str = SERVING_DIR) -> str:
    return f"{model_name(project)}:{model_version(model_dir)}"


def check_tag_part(value: str, what: str) -> str:
    """BentoML's rule for a tag's name or version, as a UserError that says how to fix it."""
    if len(value) > MAX_TAG_PART or not TAG_PART_RE.match(value):
        raise UserError(
            f"{what} {value!r} is not a valid BentoML tag part",
            f"use at most {MAX_TAG_PART} lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit (e.g. v1.2.0)",
        )
    return value


def split_tag(tag: str) -> tuple[str, str]:
    """'name:version' -> (name, version); both parts required (no 'latest' guessing)."""
    name, sep, version = tag.partition(":")
    if not sep or not version or version == "latest":
        raise UserError(
            f"model tag {tag!r} must name an exact version (NAME:VERSION)",
            "use the tag `mlops package` printed (NAME-model:VERSION)",
        )
    return check_tag_part(name, "model name"), check_tag_part(version, "model version")


def served_model_tag(explicit: str | None, root: Path | None = None) -> str:
    """The exact tag to serve: the one given (a bento records it at build time), else the tag
    the package stage derived from the served files in this checkout."""
    if explicit:
        split_tag(explicit)
        return explicit
    model_dir = (root or Path.cwd()) / SERVING_DIR
    if not (model_dir / "model.json").exists():
        raise UserError(
            f"no model to serve: {SERVING_DIR}/model.json not found in {root or Path.cwd()}",
            "run `dvc repro package` here, or pass the exact tag: "
            "`bentoml serve --arg model_tag=NAME:VERSION`",
        )
    from mlops_template.params import load_params

    project = load_params((root or Path.cwd()) / "params.yaml").project.name
    return model_tag(project, model_dir)


def bentoml_env(home: Path | str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a `bentoml` subprocess: the given store, telemetry off."""
    env = dict(os.environ)
    env["BENTOML_DO_NOT_TRACK"] = "true"
    if home is not None:
        env["BENTOML_HOME"] = str(Path(home).resolve())
    else:
        env.setdefault("BENTOML_HOME", str(Path.cwd().resolve() / ".bentoml"))
    env.update(extra)
    return env


def bentoml_command(*args: str) -> list[str]:
    """`bentoml ARGS...` run by this interpreter (the same environment, whatever PATH says)."""
    return [sys.executable, "-m", "bentoml", *args]


def get_stored_model(tag: str) -> Any:
    """The model with exactly this tag from the active store, or a UserError naming the fix."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except NotFound:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise UserError(
            f"model {tag} is not in the BentoML store at {home}",
            "run `dvc repro package` (or `bentoml models import "
            f"{BENTOMODEL_FILE.resolve()}`) with this BENTOML_HOME",
        ) from None


def read_provenance(model_path: Path | str) -> Provenance:
    """The record the package stage stored with the model (lineage, params, metrics, verdict)."""
    return Provenance.read(
        Path(model_path) / PROVENANCE,
        "package it with `mlops package` (models saved another way lack the record)",
    )


def read_bentomodel(path: Path | str) -> PackagedModel:
    """The tag, labels and provenance inside an exported `.bentomodel`, without importing it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path} not found",
            "run `dvc repro package` (or `dvc pull` the packaged model) first",
        )
    try:
        with tarfile.open(path, "r:*") as archive:
            info = yaml.safe_load(_member_text(archive, "model.yaml"))
            provenance = _member_text(archive, PROVENANCE)
    except (tarfile.TarError, OSError, ValueError, yaml.YAMLError) as exc:
        raise UserError(
            f"{path} is not a readable BentoML model archive ({exc})",
            "re-create it with `dvc repro package --force` or restore it with `dvc checkout`",
        ) from None
    source = f"{PROVENANCE} in {path}"
    return PackagedModel(
        tag=f"{info['name']}:{info['version']}",
        labels=info.get("labels") or {},
        provenance=Provenance.parse_text(provenance, source),
    )


def _member_text(archive: tarfile.TarFile, name: str) -> str:
    for member in archive.getmembers():
        if member.isfile() and member.name.removeprefix("./") == name:
            handle = archive.extractfile(member)
            if handle is not None:
                return handle.read().decode("utf-8")
    raise ValueError(f"{name} missing")
