"""`mlops release build`: the bento of exactly the packaged, accepted model, named by the release.

Steps: read the tag and record inside artifacts/bento/model.bentomodel (the file DVC tracks);
import it into the BentoML store if the store lacks it; write a copy of bentofile.yaml for
this model: named and described by params.yaml's `project` block (as recorded in the model's
provenance), with every package pinned to the version installed here. The service runs the
model's ONNX export with ONNX Runtime, so the packages are the service's own (bentofile.yaml),
whatever the family: no training library. The bento installs them and their dependencies from
a hashed export of
uv.lock (release/requirements.py), and its base image should be pinned by digest
(`docker: base_image: IMAGE@sha256:...` in bentofile.yaml; a warning says when it is not);
`bentoml build --version <release>` from src/ with the model tag recorded as a template
argument; export the bento to DIR/<name>-<version>.bento (an absolute path: BentoML writes
relative ones to `/`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mlops_template import paths
from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.files import export_atomically
from mlops_template.records import PackagedModel, ProjectRecord
from mlops_template.release.requirements import locked_requirements
from mlops_template.serving import store

LOCKED_REQUIREMENTS = "locked-requirements.txt"  # in the build context, beside the modules
_BARE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BuildResult:
    bento_tag: str
    model_tag: str
    family: str
    file: Path
    packages: list[str]


def pinned(requirement: str) -> str:
    """`numpy` -> `numpy==2.4.6` (the installed version); a requirement with a specifier stays."""
    if not _BARE_NAME.match(requirement):
        return requirement
    try:
        return f"{requirement}=={metadata.version(requirement)}"
    except metadata.PackageNotFoundError:
        raise UserError(
            f"the service needs {requirement!r} (bentofile.yaml), which is not installed here",
            "install the locked environment: `uv sync --locked`",
        ) from None


def model_bentofile(
    base: dict[str, Any],
    family: str,
    model_tag: str,
    project: ProjectRecord,
    args: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The bentofile for one packaged model: named and described by its project, every package
    pinned, the model's exact tag recorded."""
    config = dict(base)
    config["name"] = store.check_tag_part(
        store.bento_name(project.name), "bento name from params.yaml project.name"
    )
    config["description"] = project.description
    python = dict(config.get("python") or {})
    python["packages"] = [pinned(p) for p in dict.fromkeys(python.get("packages") or [])]
    python["lock_packages"] = False
    config["python"] = python
    config["labels"] = {
        **(config.get("labels") or {}),
        "project": project.name,
        "model-family": family,
        "model-tag": model_tag,
    }
    config["args"] = {**(config.get("args") or {}), **(args or {}), "model_tag": model_tag}
    return config


def with_locked_requirements(config: dict[str, Any], requirements: Path) -> dict[str, Any]:
    """The bentofile installing `requirements` (the hashed lock export) instead of `packages`."""
    python = {k: v for k, v in (config.get("python") or {}).items() if k != "packages"}
    return {**config, "python": {**python, "requirements_txt": str(requirements)}}


def base_image_problem(config: dict[str, Any]) -> str | None:
    """Why the image's base is not pinned (None: it is, by digest)."""
    base = str((config.get("docker") or {}).get("base_image") or "")
    if not base:
        return "bentofile.yaml sets no docker.base_image: BentoML's default base is a tag"
    if not re.search(r"@sha256:[0-9a-f]{64}$", base):
        return f"the image's base {base} is not pinned by digest (@sha256:...)"
    return None


def read_bentofile(path: Path = paths.BENTOFILE) -> dict[str, Any]:
    if not path.exists():
        raise UserError(f"{path} not found", "run from the repository root")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or not config.get("service"):
        raise UserError(
            f"{path} must be a mapping with at least `service`",
            "restore it from git (`git checkout bentofile.yaml`)",
        )
    return config


def check_releasable(packaged: PackagedModel, bentomodel: Path) -> None:
    """Only an accepted model, packaged from a clean work tree, is released."""
    record = packaged.provenance
    if not record.gate.accepted:
        raise UserError(
            f"{bentomodel} holds a model the gate did not accept",
            "release only a commit whose `dvc repro` accepted and packaged the model",
        )
    if record.dirty:
        raise UserError(
            f"{bentomodel} was packaged from a work tree with uncommitted changes (provenance "
            f"`dirty`), so its commit {record.git_commit} does not say what built it",
            "package it again from a clean checkout of the release commit: "
            "`dvc repro --force --single-item package` (the release workflow does)",
        )


def ensure_model(bentomodel: Path) -> PackagedModel:
    """The packaged model's tag and record; imported into the store when missing there."""
    import bentoml
    from bentoml.exceptions import NotFound

    packaged = store.read_bentomodel(bentomodel)
    check_releasable(packaged, bentomodel)
    try:
        bentoml.models.get(packaged.tag)
    except NotFound:
        bentoml.models.import_model(str(bentomodel.resolve()))
    return packaged


def bentoml_build(bentofile: Path, version: str, context: Path) -> str:
    """Run `bentoml build` and return the bento tag it printed."""
    command = store.bentoml_command(
        "build", str(context), "-f", str(bentofile), "--version", version, "--output", "tag"
    )
    done = subprocess.run(command, capture_output=True, text=True, env=store.bentoml_env())
    tags = re.findall(r"__tag__:(\S+)", done.stdout)
    if done.returncode != 0 or not tags:
        detail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise UserError(
            "`bentoml build` failed:\n  " + "\n  ".join(detail),
            "fix the error above (try `bentoml build` by hand with the same bentofile)",
        )
    return tags[-1]


def export_bento(tag: str, target: Path) -> Path:
    """Export the bento to `target` with no half-written .bento on failure."""
    import bentoml

    return export_atomically(target, lambda path: bentoml.bentos.export_bento(tag, path))


def build_release(
    version: str,
    out_dir: Path,
    bentomodel: Path = paths.BENTOMODEL_FILE,
    bentofile: Path = paths.BENTOFILE,
    context: Path = paths.BUILD_CONTEXT,
    args: dict[str, str] | None = None,
    project: Path = Path("."),
) -> BuildResult:
    """`project`: the directory with pyproject.toml and uv.lock (the lock the bento installs)."""
    import bentoml
    from bentoml.exceptions import NotFound

    store.check_tag_part(version, "release version")
    base = read_bentofile(bentofile)
    packaged = ensure_model(bentomodel)
    record = packaged.provenance
    family = record.model.family
    config = model_bentofile(base, family, packaged.tag, record.project, args)
    name = config["name"]
    try:
        bentoml.get(f"{name}:{version}")
        bentoml.delete(f"{name}:{version}")  # a rebuild of the same release replaces it
    except NotFound:
        pass
    if problem := base_image_problem(config):
        gha.annotate(
            "warning",
            f"{problem}; set `docker: base_image: python:3.11-slim@sha256:<digest>` in "
            "bentofile.yaml (`docker buildx imagetools inspect python:3.11-slim` shows it)",
            title="Unpinned base image",
        )
    requirements = locked_requirements(config["python"]["packages"], project)
    with tempfile.TemporaryDirectory(prefix="mlops-bentofile-") as tmp:
        # BentoML reads the requirements file only from inside the build context: build from a
        # copy of it (the bentofile's `include` still picks only the service's modules).
        build_context = Path(tmp) / "context"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(context.resolve(), build_context, ignore=ignore)
        (build_context / LOCKED_REQUIREMENTS).write_text(requirements)
        generated = Path(tmp) / "bentofile.yaml"
        locked = with_locked_requirements(config, Path(LOCKED_REQUIREMENTS))
        generated.write_text(yaml.safe_dump(locked, sort_keys=False))
        tag = bentoml_build(generated, version, build_context)
    file = export_bento(tag, out_dir / f"{name}-{version}.bento")
    return BuildResult(tag, packaged.tag, family, file, config["python"]["packages"])
