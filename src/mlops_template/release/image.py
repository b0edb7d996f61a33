"""`mlops release image`: the release's bento as a container image, run, checked, then pushed.

The .bento file is imported into a fresh, empty BentoML home, so the image holds exactly the
released file. Its base must be pinned by digest (`docker.base_image: NAME:TAG@sha256:...`,
recorded in the bento by `mlops release pin-base` and `mlops release build`): an unpinned base is
refused. `bentoml containerize` builds it (Docker: buildx into the local store; podman: buildah
into containers-storage) as <image>:<version> with OCI labels that say what it is, where it came
from and which base it is built on (GHCR links the package to the repository through
`org.opencontainers.image.source`). The image is then smoke-tested by its ID: a container of it
on 127.0.0.1 must become ready and serve exactly the bento's model, accepted by the gate
(/metadata); with --check-predictions, the release's smoke test (release/smoke.py: every test row
against the offline model) runs against the container too. Only then, with --push, is that same
image (the tag must still name the tested ID) pushed; the digest the registry reports becomes a
step output for the image's attestation. Docker needs buildx (GitHub's runners,
docker/setup-buildx-action) and, to push, a login; podman (tests here) builds and runs only.
"""

from __future__ import annotations

import json
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

from mlops_template import paths
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


@dataclass(frozen=True)
class Engine:
    """The container tool: Docker (GitHub's runners) or podman with buildah (no daemon)."""

    name: str
    command: tuple[str, ...]  # how to call it for inspect/run/rm/logs/push
    backend: str  # bentoml containerize --backend
    build_opts: tuple[str, ...]  # --opt values for that backend

    def run_args(self, image: str, port: int) -> list[str]:
        """`run` of the bento's image, serving on 127.0.0.1:`port` only."""
        if self.name == "docker":
            return ["run", "--detach", "--publish", f"127.0.0.1:{port}:3000", image]
        # podman on hosts without a full cgroup v2 setup: the host's network namespace, the
        # server told to bind loopback on the free port (no port mapping needed).
        limits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        return ["run", "--detach", "--network", "host", *limits, image]

    def serve_args(self, port: int) -> list[str]:
        return [] if self.name == "docker" else ["--host", "127.0.0.1", "--port", str(port)]


ENGINES = {
    "docker": Engine("docker", ("docker",), "buildx", ("load",)),
    "podman": Engine(
        "podman",
        ("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"),
        "buildah",
        ("isolation=chroot", "network=host"),
    ),
}


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
    base = base_image_of(info)
    if DIGEST_SUFFIX.search(base):
        name, _, digest = base.partition("@")
        labels["org.opencontainers.image.base.name"] = name
        labels["org.opencontainers.image.base.digest"] = digest
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
    bento_tag: str,
    ref: str,
    labels: dict[str, str],
    metadata_file: Path,
    engine: Engine = ENGINES["docker"],
) -> list[str]:
    """`bentoml containerize`: tagged, labelled, into the local store (the push comes after the
    smoke test, never from the build)."""
    command = store.bentoml_command(
        "containerize", bento_tag, "--backend", engine.backend, "--image-tag", ref
    )
    for key, value in labels.items():
        command += ["--opt", f"label={key}={value}"]
    for option in engine.build_opts:
        command += ["--opt", option]
    if engine.name == "docker":
        command += ["--opt", f"metadata-file={metadata_file}"]
    return command


def run_engine(engine: Engine, *args: str, what: str) -> str:
    """Run the engine with ARGS; its stdout, or UserError saying what failed."""
    try:
        done = subprocess.run([*engine.command, *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(
            f"{engine.command[0]} is not installed here",
            "run on GitHub's runners (docker), or `make test-tools` (podman, buildah)",
        ) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-800:]
        raise UserError(f"{what} failed: {detail}", f"see the {engine.name} output above")
    return done.stdout.strip()


def docker(*args: str, what: str) -> str:
    return run_engine(ENGINES["docker"], *args, what=what)


def image_id(ref: str, engine: Engine = ENGINES["docker"]) -> str:
    return run_engine(
        engine, "image", "inspect", "--format", "{{.Id}}", ref, what=f"inspecting {ref}"
    )


def pushed_digest(output: str) -> str:
    """The digest `docker push` reports (`<tag>: digest: sha256:... size: N`)."""
    found = re.findall(r"digest: (sha256:[0-9a-f]{64})", output)
    if not found:
        raise UserError(
            "`docker push` reported no digest", "check the push output above (logged in?)"
        )
    return found[-1]


@contextmanager
def container(image: str, port: int, engine: Engine = ENGINES["docker"]) -> Iterator[str]:
    """A container of `image` serving on 127.0.0.1:`port`, removed afterwards."""
    args = [*engine.run_args(image, port), *engine.serve_args(port)]
    cid = run_engine(engine, *args, what=f"running {image}")
    try:
        yield cid
    finally:
        subprocess.run([*engine.command, "rm", "--force", cid], capture_output=True, check=False)


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


@dataclass(frozen=True)
class PredictionCheck:
    """What the release's smoke test compares the container's answers with (release/smoke.py):
    the offline model, the test split and the packaged model's record."""

    model_dir: Path
    test_csv: Path
    bentomodel: Path


def smoke_container(
    image: str,
    model_tag: str,
    timeout: float,
    engine: Engine = ENGINES["docker"],
    predictions: PredictionCheck | None = None,
) -> str:
    """Run the image and check it serves the bento's model, accepted (and, with `predictions`,
    the release's smoke test over the whole test split); a report line."""
    from mlops_template.release import smoke

    port = smoke.free_port()
    url = f"http://127.0.0.1:{port}"
    report = smoke.SmokeReport(bento=image, url=url)
    with container(image, port, engine) as cid:
        if not wait_ready(url, timeout):
            logs = subprocess.run(
                [*engine.command, "logs", cid], capture_output=True, text=True, check=False
            )
            tail = "\n".join((logs.stdout + logs.stderr).strip().splitlines()[-20:])
            raise UserError(
                f"the image {image} was not ready within {timeout:g} s:\n{tail}",
                "fix the error in the container log above; nothing was pushed",
            )
        problems = served_problems(smoke.post_json(f"{url}/metadata", {}), model_tag)
        if predictions is not None and not problems:
            smoke.check_metadata(url, predictions.bentomodel.resolve(), report)
            smoke.check_predictions(
                url, predictions.model_dir.resolve(), predictions.test_csv.resolve(), report
            )
            problems = report.problems
    if problems:
        raise UserError(
            f"smoke test of the image {image} failed: " + "; ".join(problems),
            "rebuild the image from the release's bento; nothing was pushed",
        )
    checked = f"; {report.summary()}" if predictions is not None else ""
    return f"image smoke test passed: {image} was ready and served {model_tag} (accepted){checked}"


def build_image(
    bento_file: Path,
    image: str,
    version: str,
    revision: str,
    source: str,
    push: bool,
    timeout: float = 180,
    engine: Engine = ENGINES["docker"],
    predictions: PredictionCheck | None = None,
) -> ImageResult:
    from mlops_template.release.smoke import import_bento

    if not bento_file.is_file():
        raise UserError(f"{bento_file} not found", "build it with `mlops release build`")
    if push and engine.name != "docker":
        raise UserError(f"--push needs docker, not {engine.name}", "push from the release job")
    ref = check_reference(image, version)
    info = read_bento_info(bento_file)
    check_pinned_base(info, bento_file)
    labels = oci_labels(info, version, revision, source)
    with tempfile.TemporaryDirectory(prefix="mlops-image-") as tmp:
        home = Path(tmp) / "bentoml"
        bento_tag = import_bento(bento_file, home)
        command = containerize_command(bento_tag, ref, labels, Path(tmp) / "metadata.json", engine)
        print("+ " + " ".join(command[1:]), flush=True)
        done = subprocess.run(command, env=store.bentoml_env(home))
        if done.returncode != 0:
            raise UserError(
                f"`bentoml containerize` failed (exit status {done.returncode})",
                f"see its output above; it needs {engine.name} ({engine.backend})",
            )
    tested = image_id(ref, engine)
    model_tag = str((info.get("labels") or {}).get("model-tag") or "")
    print(smoke_container(tested, model_tag, timeout, engine, predictions), flush=True)
    if not push:
        return ImageResult(image, ref, None)
    if image_id(ref, engine) != tested:
        raise UserError(f"{ref} no longer names the tested image {tested}", "run the job again")
    output = docker("push", ref, what=f"pushing {ref}")
    print(output, flush=True)
    return ImageResult(image, ref, pushed_digest(output))


# --------------------------------------------------------------------------- the base image

DIGEST_SUFFIX = re.compile(r"@sha256:[0-9a-f]{64}$")


def base_image_of(config: dict[str, Any]) -> str:
    """The base image a bentofile (docker.base_image) or a bento's bento.yaml (image.base_image
    since BentoML's bento spec 2, else docker.base_image) names."""
    for key in ("image", "docker"):
        base = (config.get(key) or {}).get("base_image")
        if base:
            return str(base)
    return ""


def check_pinned_base(info: dict[str, Any], bento_file: Path) -> None:
    """Refuse a bento whose image would be built on a moving tag."""
    base = base_image_of(info)
    if not DIGEST_SUFFIX.search(base):
        raise UserError(
            f"{bento_file} builds its image on {base or 'BentoML default base (a tag)'}, "
            "not on a base pinned by digest",
            "build the bento from a pinned bentofile: `mlops release pin-base --out "
            "build/release/bentofile.yaml` then `mlops release build --bentofile "
            "build/release/bentofile.yaml`",
        )


def default_base() -> str:
    """BentoML's own base for this Python (Debian slim), when the bentofile names none."""
    import sys

    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def resolve_digest(reference: str, engine: Engine) -> str:
    """The digest `reference` names now: in the registry (docker) or the local store (podman)."""
    if engine.name == "docker":
        text = run_engine(
            engine,
            "buildx",
            "imagetools",
            "inspect",
            reference,
            "--format",
            "{{json .Manifest}}",
            what=f"resolving {reference} in its registry",
        )
        try:
            digest = str(json.loads(text).get("digest") or "")
        except (ValueError, AttributeError):
            digest = ""
    else:
        digest = run_engine(
            engine,
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            reference,
            what=f"resolving {reference} in the local store",
        )
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise UserError(
            f"no digest found for {reference} (got {digest[:80]!r})",
            "check the image name, or pin it by hand: docker.base_image NAME:TAG@sha256:...",
        )
    return digest


def pinned_base(reference: str, engine: Engine) -> str:
    """`name:tag@sha256:...`: a reference pinned by digest stays as it is (the committed pin
    wins); a tag is resolved once, now."""
    if DIGEST_SUFFIX.search(reference):
        return reference
    return f"{reference}@{resolve_digest(reference, engine)}"


def pin_base(bentofile: Path, out: Path, engine: Engine, base: str | None = None) -> str:
    """Write a copy of `bentofile` whose docker.base_image is pinned by digest; the pin."""
    from mlops_template.files import write_text_atomic
    from mlops_template.release.build import read_bentofile

    config = read_bentofile(bentofile)
    pin = pinned_base(base or base_image_of(config) or default_base(), engine)
    config["docker"] = {**(config.get("docker") or {}), "base_image": pin}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, yaml.safe_dump(config, sort_keys=False))
    return pin


def _default_source() -> str | None:
    repository = os.environ.get("GITHUB_REPOSITORY")
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    return f"{server}/{repository}" if repository else None


engine_option = click.option(
    "--engine",
    type=click.Choice(sorted(ENGINES)),
    default="docker",
    show_default=True,
    help="container tool: docker (buildx) or podman (buildah)",
)


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
@engine_option
@click.option(
    "--check-predictions",
    is_flag=True,
    help="also run the release's smoke test against the container (needs the offline model, "
    "the test split and the packaged model: --model-dir, --test-csv, --bentomodel)",
)
@click.option("--model-dir", type=click.Path(path_type=Path), default=paths.MODEL_DIR)
@click.option("--test-csv", type=click.Path(path_type=Path), default=paths.TEST_CSV)
@click.option("--bentomodel", type=click.Path(path_type=Path), default=paths.BENTOMODEL_FILE)
def image(
    bento: Path,
    image: str,
    version: str,
    push: bool,
    timeout: float,
    revision: str | None,
    source: str | None,
    engine: str,
    check_predictions: bool,
    model_dir: Path,
    test_csv: Path,
    bentomodel: Path,
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
        predictions = (
            PredictionCheck(model_dir, test_csv, bentomodel) if check_predictions else None
        )
        result = build_image(
            bento, image, version, revision, source, push, timeout, ENGINES[engine], predictions
        )
    gha.set_output("name", result.name)
    gha.set_output("ref", result.ref)
    gha.set_output("digest", result.digest or "")
    if result.digest:
        print(f"pushed {result.ref} ({result.digest})")
    else:
        print(f"built {result.ref} (not pushed)")


@click.command("pin-base", help="Write a copy of bentofile.yaml whose base image is pinned.")
@click.option(
    "--bentofile",
    type=click.Path(path_type=Path),
    default=paths.BENTOFILE,
    show_default=True,
    help="the recipe to copy",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="the pinned copy")
@click.option(
    "--base",
    help="base image (default: the bentofile's docker.base_image, else BentoML's python:X.Y-slim)",
)
@engine_option
def pin_base_command(bentofile: Path, out: Path, base: str | None, engine: str) -> None:
    """The digest is read once, here (registry for docker, local store for podman), and the
    bento records it: the image is built on exactly that base, whatever the tag says later."""
    with gha.annotated("mlops release pin-base"):
        pin = pin_base(bentofile, out, ENGINES[engine], base)
    gha.set_output("base-image", pin)
    print(f"base image pinned: {pin} (in {out})")
