"""`mlops release image`: the release's bento as a container image, labelled and pushed.

The .bento file is imported into a fresh, empty BentoML home, so the image holds exactly the
released file. `bentoml containerize --backend buildx` builds it as <image>:<version> with OCI
labels that say what it is and where it came from (GHCR links the package to the repository
through `org.opencontainers.image.source`). With --push, buildx pushes it and writes the pushed
digest to a metadata file; the digest becomes a step output for the image's attestation.
Needs Docker with buildx (GitHub's runners, docker/setup-buildx-action) and, to push, a login.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.files import read_json
from mlops_template.release.tags import commit_of
from mlops_template.serving import store

LABEL_PREFIX = "mlops-template"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?(?:/{_PATH_PART})+$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageResult:
    name: str  # ghcr.io/owner/repo
    ref: str  # ghcr.io/owner/repo:v1.2.0
    digest: str | None  # sha256:... of what was pushed (None when only loaded)


def read_bento_info(path: Path) -> dict[str, Any]:
    """bento.yaml of a .bento archive (name, version, labels), with the bento's description
    (BentoML keeps the bentofile's `description` as the archive's README.md)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            info = yaml.safe_load(_member_text(archive, "bento.yaml") or "null")
            readme = _member_text(archive, "README.md")
    except (tarfile.TarError, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(
            f"{path} is not a readable bento archive ({exc})",
            "rebuild it with `mlops release build`",
        ) from None
    if not isinstance(info, dict) or "name" not in info or "version" not in info:
        raise UserError(f"{path} has no bento.yaml with a name and version", "rebuild it")
    return {**info, "description": (readme or "").strip()}


def _member_text(archive: tarfile.TarFile, name: str) -> str | None:
    for candidate in (f"./{name}", name):
        try:
            handle = archive.extractfile(candidate)
        except KeyError:
            continue
        return handle.read().decode("utf-8") if handle else None
    return None


def oci_labels(info: dict[str, Any], version: str, revision: str, source: str) -> dict[str, str]:
    """OCI annotations (image-spec annotations.md) plus the bento's and model's tags."""
    bento_labels = info.get("labels") or {}
    labels = {
        "org.opencontainers.image.title": str(info["name"]),
        "org.opencontainers.image.description": _first_line(info.get("description")),
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": source,
        f"{LABEL_PREFIX}.bento": f"{info['name']}:{info['version']}",
        f"{LABEL_PREFIX}.model-tag": str(bento_labels.get("model-tag") or ""),
        f"{LABEL_PREFIX}.model-family": str(bento_labels.get("model-family") or ""),
    }
    return {key: value for key, value in labels.items() if value}


def _first_line(text: Any, limit: int = 512) -> str:
    """One line for the description label (GHCR shows at most 512 characters)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def check_reference(image: str, version: str) -> str:
    if not _IMAGE.match(image):
        raise UserError(
            f"image name {image!r} is not a valid registry/path name",
            "use lowercase, e.g. ghcr.io/OWNER/REPO (no tag: --version gives it)",
        )
    if not _IMAGE_TAG.match(version):
        raise UserError(f"{version!r} is not a valid image tag", "use the release version, v1.2.0")
    return f"{image}:{version}"


def containerize_command(
    bento_tag: str, ref: str, labels: dict[str, str], push: bool, metadata_file: Path
) -> list[str]:
    """`bentoml containerize` for buildx: tagged, labelled, pushed (or loaded locally)."""
    command = store.bentoml_command(
        "containerize", bento_tag, "--backend", "buildx", "--image-tag", ref
    )
    for key, value in labels.items():
        command += ["--opt", f"label={key}={value}"]
    command += ["--opt", "push" if push else "load"]
    command += ["--opt", f"metadata-file={metadata_file}"]
    return command


def read_digest(metadata_file: Path) -> str:
    """The pushed image's digest from buildx's --metadata-file."""
    try:
        digest = read_json(metadata_file, "").get("containerimage.digest")
    except (UserError, AttributeError):
        digest = None
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise UserError(
            f"buildx reported no image digest in {metadata_file}",
            "check the containerize output above (is docker buildx set up?)",
        )
    return digest


def build_image(
    bento_file: Path, image: str, version: str, revision: str, source: str, push: bool
) -> ImageResult:
    from mlops_template.release.smoke import import_bento

    if not bento_file.is_file():
        raise UserError(f"{bento_file} not found", "build it with `mlops release build`")
    ref = check_reference(image, version)
    info = read_bento_info(bento_file)
    labels = oci_labels(info, version, revision, source)
    with tempfile.TemporaryDirectory(prefix="mlops-image-") as tmp:
        home = Path(tmp) / "bentoml"
        bento_tag = import_bento(bento_file, home)
        metadata_file = Path(tmp) / "metadata.json"
        command = containerize_command(bento_tag, ref, labels, push, metadata_file)
        print("+ " + " ".join(command[1:]), flush=True)
        done = subprocess.run(command, env=store.bentoml_env(home))
        if done.returncode != 0:
            raise UserError(
                f"`bentoml containerize` failed (exit status {done.returncode})",
                "see its output above; it needs Docker with buildx, and a registry login to push",
            )
        digest = read_digest(metadata_file) if push else None
    return ImageResult(image, ref, digest)


def _default_source() -> str | None:
    repository = os.environ.get("GITHUB_REPOSITORY")
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    return f"{server}/{repository}" if repository else None


@click.command("image", help=__doc__)
@click.argument("bento", type=click.Path(path_type=Path))
@click.option("--image", required=True, help="image name without tag, e.g. ghcr.io/OWNER/REPO")
@click.option("--version", required=True, help="image tag: the release version")
@click.option("--push", is_flag=True, help="push (default: load it locally)")
@click.option("--revision", help="git commit for the labels (default: HEAD)")
@click.option(
    "--source",
    default=_default_source,
    help="repository URL for the labels (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY)",
)
def image(
    bento: Path, image: str, version: str, push: bool, revision: str | None, source: str | None
) -> None:
    """BENTO: the release's .bento file."""
    with gha.annotated("mlops release image"):
        revision = revision or commit_of("HEAD")
        if not revision:
            raise UserError("no git commit to record", "run in the release's clone or --revision")
        if not source:
            raise UserError(
                "no source repository URL for the image",
                "run in GitHub Actions (GITHUB_REPOSITORY) or pass --source URL",
            )
        result = build_image(bento, image, version, revision, source, push)
    gha.set_output("name", result.name)
    gha.set_output("ref", result.ref)
    gha.set_output("digest", result.digest or "")
    if result.digest:
        print(f"pushed {result.ref} ({result.digest})")
    else:
        print(f"built {result.ref} (not pushed)")
