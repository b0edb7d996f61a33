"""`mlops release image`: the release's bento as a container image, run, checked, then pushed.

The .bento file is imported into a fresh, empty BentoML home, so the image holds exactly the
released file. `bentoml containerize --backend buildx` builds it into the local Docker store as
<image>:<version> with OCI labels that say what it is and where it came from (GHCR links the
package to the repository through `org.opencontainers.image.source`). The image is then
smoke-tested by its ID: a container of it on 127.0.0.1 must become ready and serve exactly the
bento's model, accepted by the gate (/metadata). Only then, with --push, is that same image (the
tag must still name the tested ID) pushed; the digest the registry reports becomes a step output
for the image's attestation. Needs Docker with buildx (GitHub's runners,
docker/setup-buildx-action) and, to push, a login.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.release.tags import commit_of
from mlops_template.serving import store

LABEL_PREFIX = "mlops-template"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?(?:/{_PATH_PART})+$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


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
    bento_tag: str, ref: str, labels: dict[str, str], metadata_file: Path
) -> list[str]:
    """`bentoml containerize` for buildx: tagged, labelled, loaded into the local store (the
    push comes after the smoke test, never from the build)."""
    command = store.bentoml_command(
        "containerize", bento_tag, "--backend", "buildx", "--image-tag", ref
    )
    for key, value in labels.items():
        command += ["--opt", f"label={key}={value}"]
    command += ["--opt", "load", "--opt", f"metadata-file={metadata_file}"]
    return command


def docker(*args: str, what: str) -> str:
    """Run `docker ARGS`; its stdout, or UserError saying what failed."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError("docker is not installed here", "run on GitHub's runners") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-800:]
        raise UserError(f"{what} failed: {detail}", "see the docker output above")
    return done.stdout.strip()


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, what=f"inspecting {ref}")


def pushed_digest(output: str) -> str:
    """The digest `docker push` reports (`<tag>: digest: sha256:... size: N`)."""
    found = re.findall(r"digest: (sha256:[0-9a-f]{64})", output)
    if not found:
        raise UserError(
            "`docker push` reported no digest", "check the push output above (logged in?)"
        )
    return found[-1]


@contextmanager
def container(image: str, port: int) -> Iterator[str]:
    """A container of `image` serving on 127.0.0.1:`port`, removed afterwards."""
    cid = docker(
        "run", "--detach", "--publish", f"127.0.0.1:{port}:3000", image, what=f"running {image}"
    )
    try:
        yield cid
    finally:
        subprocess.run(["docker", "rm", "--force", cid], capture_output=True, check=False)


def wait_ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def served_problems(served: dict[str, Any], model_tag: str) -> list[str]:
    """Why the container's /metadata is not the bento's accepted model (empty: it is)."""
    problems = []
    if served.get("tag") != model_tag:
        problems.append(f"it serves model {served.get('tag')}, the bento holds {model_tag}")
    if (served.get("gate") or {}).get("accepted") is not True:
        problems.append("its /metadata does not say the gate accepted the model")
    return problems


def smoke_container(image: str, model_tag: str, timeout: float) -> str:
    """Run the image and check it serves the bento's model, accepted; a report line."""
    from mlops_template.release.smoke import free_port, post_json

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with container(image, port) as cid:
        if not wait_ready(url, timeout):
            logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True)
            tail = "\n".join((logs.stdout + logs.stderr).strip().splitlines()[-20:])
            raise UserError(
                f"the image {image} was not ready within {timeout:g} s:\n{tail}",
                "fix the error in the container log above; nothing was pushed",
            )
        problems = served_problems(post_json(f"{url}/metadata", {}), model_tag)
    if problems:
        raise UserError(
            f"smoke test of the image {image} failed: " + "; ".join(problems),
            "rebuild the image from the release's bento; nothing was pushed",
        )
    return f"image smoke test passed: {image} was ready and served {model_tag} (accepted)"


def build_image(
    bento_file: Path,
    image: str,
    version: str,
    revision: str,
    source: str,
    push: bool,
    timeout: float = 180,
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
        command = containerize_command(bento_tag, ref, labels, Path(tmp) / "metadata.json")
        print("+ " + " ".join(command[1:]), flush=True)
        done = subprocess.run(command, env=store.bentoml_env(home))
        if done.returncode != 0:
            raise UserError(
                f"`bentoml containerize` failed (exit status {done.returncode})",
                "see its output above; it needs Docker with buildx",
            )
    tested = image_id(ref)
    model_tag = str((info.get("labels") or {}).get("model-tag") or "")
    print(smoke_container(tested, model_tag, timeout), flush=True)
    if not push:
        return ImageResult(image, ref, None)
    if image_id(ref) != tested:
        raise UserError(f"{ref} no longer names the tested image {tested}", "run the job again")
    output = docker("push", ref, what=f"pushing {ref}")
    print(output, flush=True)
    return ImageResult(image, ref, pushed_digest(output))


def _default_source() -> str | None:
    repository = os.environ.get("GITHUB_REPOSITORY")
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    return f"{server}/{repository}" if repository else None


@click.command("image", help=__doc__)
@click.argument("bento", type=click.Path(path_type=Path))
@click.option("--image", required=True, help="image name without tag, e.g. ghcr.io/OWNER/REPO")
@click.option("--version", required=True, help="image tag: the release version")
@click.option(
    "--push", is_flag=True, help="push after the smoke test (default: build and smoke-test only)"
)
@click.option("--timeout", type=float, default=180, help="seconds for the container to be ready")
@click.option("--revision", help="git commit for the labels (default: HEAD)")
@click.option(
    "--source",
    default=_default_source,
    help="repository URL for the labels (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY)",
)
def image(
    bento: Path,
    image: str,
    version: str,
    push: bool,
    timeout: float,
    revision: str | None,
    source: str | None,
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
        result = build_image(bento, image, version, revision, source, push, timeout)
    gha.set_output("name", result.name)
    gha.set_output("ref", result.ref)
    gha.set_output("digest", result.digest or "")
    if result.digest:
        print(f"pushed {result.ref} ({result.digest})")
    else:
        print(f"built {result.ref} (not pushed)")
