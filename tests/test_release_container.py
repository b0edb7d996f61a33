"""The release's image built and run for real, without Docker: podman and buildah (Debian).

A packaged fork (tests/test_release_bento.py) goes through the release's own commands: its base
image (tools/build-test-base-image.sh: Debian minbase, python 3.11, uv) is pinned by digest
(`mlops release pin-base --engine podman`), its model files are signed with an EC key
(`mlops release sign`), its bento is built from the hashed lock export, then `mlops release image
--engine podman --check-predictions` containerizes it with buildah on exactly that digest, runs
the image on 127.0.0.1 (a free port; the podman recipe of notes-ops: runc, cgroupfs, ulimits,
host network) and runs the release's smoke test against the container: every test row equal to
the offline model, /metadata the packaged model's. The model signature inside the image is
checked with the public key. `make test-tools` installs the tools and builds the base once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers_serving import REPO, mlops
from test_release_bento import BENTO_NAME, releasable_fork
from test_release_signing import key_pair

from mlops_template.release.image import ENGINES
from mlops_template.serving import store
from mlops_template.signing import SIGNATURE_NAME, Verifier, verify_signature

TOOLS = ("podman", "buildah", "runc", "debootstrap")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in TOOLS),
        reason=f"needs {', '.join(TOOLS)}: `make test-tools` installs them",
    ),
]

BASE = "localhost/mlops-test-base:py3.11"
BASE_SCRIPT = REPO / "tools" / "build-test-base-image.sh"
IMAGE = "localhost/mlops-test/wine"
VERSION = "v0.3.0"
PODMAN = list(ENGINES["podman"].command)


@pytest.fixture(scope="module")
def base_image() -> str:
    """The base, built once per machine (reused when present): NAME@sha256:..."""
    done = subprocess.run(
        ["bash", str(BASE_SCRIPT), BASE], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> dict:
    project = releasable_fork(tmp_path_factory, "container")
    keys = key_pair(tmp_path_factory.mktemp("keys"), "release")
    pinned = "build/release/bentofile.yaml"
    pin = mlops(
        project, "release", "pin-base", "--engine", "podman", "--base", BASE, "--out", pinned
    )
    assert pin.returncode == 0, pin.stderr
    sign = mlops(project, "release", "sign", "--key", str(keys[0]), "--copy-to", "dist/model.sig")
    assert sign.returncode == 0, sign.stderr
    build = mlops(
        project, "release", "build", "--version", VERSION, "--out", "dist", "--bentofile", pinned
    )
    assert build.returncode == 0, build.stderr
    bento = project / "dist" / f"{BENTO_NAME}-{VERSION}.bento"
    image = mlops(
        project,
        "release",
        "image",
        str(bento),
        "--engine",
        "podman",
        "--image",
        IMAGE,
        "--version",
        VERSION,
        "--revision",
        "c" * 40,
        "--source",
        "https://github.com/acme/wine",
        "--check-predictions",
        "--timeout",
        "300",
        timeout=1800,
    )
    yield {
        "project": project,
        "pin": pin.stdout,
        "image": image,
        "bento": bento,
        "public_key": keys[1],
        "base": base_image,
    }
    subprocess.run([*PODMAN, "rmi", "--force", f"{IMAGE}:{VERSION}"], capture_output=True)


def inspect(ref: str) -> dict:
    done = subprocess.run([*PODMAN, "image", "inspect", ref], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]


def test_the_base_is_pinned_by_the_digest_of_the_local_base(released: dict) -> None:
    digest = released["base"].split("@")[1]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert f"base image pinned: {BASE}@{digest}" in released["pin"]


def test_the_image_is_built_on_that_base_and_passes_the_release_smoke_test(released: dict) -> None:
    image = released["image"]
    assert image.returncode == 0, image.stdout[-4000:] + image.stderr[-4000:]
    line = next(x for x in image.stdout.splitlines() if x.startswith("image smoke test passed"))
    rows = re.search(r"(\d+) test rows, \1/\1 labels agree with the offline model", line)
    assert rows and int(rows.group(1)) > 0, line
    assert "smoke test passed" in line.split(";", 1)[1]  # the release's own smoke test
    info = inspect(f"{IMAGE}:{VERSION}")
    labels = info["Labels"]
    digest = released["base"].split("@")[1]
    assert labels["org.opencontainers.image.base.digest"] == digest
    assert labels["org.opencontainers.image.base.name"] == BASE
    packaged = store.read_bentomodel(released["project"] / "artifacts/bento/model.bentomodel")
    assert labels["mlops-template.model-tag"] == packaged.tag
    # The base's layers are the image's first: it was built FROM exactly that digest.
    base_layers = inspect(released["base"])["RootFS"]["Layers"]
    assert info["RootFS"]["Layers"][: len(base_layers)] == base_layers


def test_the_model_in_the_image_carries_a_signature_that_verifies(
    released: dict, tmp_path: Path
) -> None:
    assert released["image"].returncode == 0
    tag = store.read_bentomodel(released["project"] / "artifacts/bento/model.bentomodel").tag
    inside = f"/home/bentoml/bento/models/{tag.replace(':', '/')}"
    created = subprocess.run(
        [*PODMAN, "create", f"{IMAGE}:{VERSION}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        copied = subprocess.run(
            [*PODMAN, "cp", f"{created}:{inside}", str(tmp_path / "model")],
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run([*PODMAN, "rm", "--force", created], capture_output=True)
    assert copied.returncode == 0, copied.stderr
    model = tmp_path / "model"
    signature = (released["project"] / "dist" / SIGNATURE_NAME).read_bytes()
    assert (model / SIGNATURE_NAME).read_bytes() == signature
    verify_signature(model, Verifier(public_key=released["public_key"]))
