"""The commands a user runs on a downloaded release: every file's attestation checked against
the workflow that really attests and signs (.github/workflows/release.yml of this repository),
the checksums, the bento unpacked and its signed model checked against the workflow's identity at
the tag. The parts that need no network run here for real (download folder, checksums,
unpacking); the README's commands name the same workflow."""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.release.user_checks import (
    signed_models,
    signing_workflow,
    verification_commands,
)
from mlops_template.signing import GITHUB_ISSUER, RELEASE_WORKFLOW, SIGNATURE_NAME

ROOT = Path(__file__).resolve().parents[1]
BENTO = "wine-service-v1.2.0.bento"
MODEL = "models/wine-model/abc123"


def write_bento(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A release folder as `gh release download` writes it."""
    folder = tmp_path / "v1.2.0"
    folder.mkdir()
    write_bento(
        folder / BENTO,
        {
            "bento.yaml": b"name: wine-service\n",
            f"{MODEL}/model.onnx": b"\x00onnx",
            f"{MODEL}/{SIGNATURE_NAME}": b"{}",
            "models/other/v1/model.json": b"{}",  # unsigned: no check is offered for it
        },
    )
    (folder / "MODEL_CARD.md").write_text("# card\n")
    (folder / SIGNATURE_NAME).write_text("{}")
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
        for p in sorted(folder.iterdir())
    )
    (folder / "SHA256SUMS").write_text(sums)
    return folder


def test_the_workflow_named_is_the_one_that_attests_and_signs(tmp_path: Path) -> None:
    assert signing_workflow(ROOT) == RELEASE_WORKFLOW
    text = (ROOT / RELEASE_WORKFLOW).read_text()
    assert "actions/attest@" in text and "subject-path: dist/*" in text
    with pytest.raises(UserError, match="does not attest and sign"):
        signing_workflow(tmp_path)  # a repository without it


def test_every_release_file_is_checked_against_the_workflow_at_the_tag(release: Path) -> None:
    lines = verification_commands(release, "acme/wine", "v1.2.0", ROOT)
    workflow = f"acme/wine/{RELEASE_WORKFLOW}"
    attested = [shlex.split(line) for line in lines if line.startswith("gh attestation")]
    assert sorted(argv[3] for argv in attested) == sorted(p.name for p in release.iterdir())
    for argv in attested:
        assert argv[4:] == [
            "-R",
            "acme/wine",
            "--signer-workflow",
            workflow,
            "--source-ref",
            "refs/tags/v1.2.0",
        ]
    (check,) = [shlex.split(line) for line in lines if line.startswith("model_signing")]
    unpacked = f"wine-service-v1.2.0/{MODEL}"
    assert check == [
        "model_signing",
        "verify",
        "sigstore",
        unpacked,
        "--signature",
        f"{unpacked}/{SIGNATURE_NAME}",
        "--identity",
        f"https://github.com/acme/wine/{RELEASE_WORKFLOW}@refs/tags/v1.2.0",
        "--identity_provider",
        GITHUB_ISSUER,
    ]
    assert lines[-1] == f"bentoml import {BENTO}"  # imported only after every check
    assert lines.index("sha256sum -c SHA256SUMS") < lines.index(f"bentoml import {BENTO}")


def test_the_offline_commands_run_and_find_the_signed_model(release: Path, tmp_path: Path) -> None:
    lines = verification_commands(release, "acme/wine", "v1.2.0", ROOT)
    assert lines[:2] == ["gh release download v1.2.0 -R acme/wine --dir v1.2.0", "cd v1.2.0"]
    offline = [line for line in lines[1:] if line.split()[0] in {"cd", "sha256sum", "mkdir"}]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(offline)],
        cwd=release.parent,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"{BENTO}: OK" in done.stdout
    (check,) = [shlex.split(line) for line in lines if line.startswith("model_signing")]
    model = release / check[3]
    assert (model / "model.onnx").is_file() and Path(release / check[5]).is_file()


def test_a_release_without_a_bento_or_with_a_broken_one_is_one_message(release: Path) -> None:
    (release / BENTO).write_text("not a tar")
    with pytest.raises(UserError, match="not a readable bento archive"):
        verification_commands(release, "acme/wine", "v1.2.0", ROOT)
    (release / BENTO).unlink()
    with pytest.raises(UserError, match=r"no \.bento file"):
        verification_commands(release, "acme/wine", "v1.2.0", ROOT)


def test_only_signed_models_are_listed(release: Path) -> None:
    assert signed_models(release / BENTO) == [MODEL]


def test_the_readme_names_the_same_workflow() -> None:
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"--signer-workflow (\S+)", readme)
    assert named, "the README shows no `gh attestation verify` command"
    assert set(named) == {f"OWNER/REPO/{signing_workflow(ROOT)}"}


def test_the_cli_prints_the_commands(release: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["release", "verify-commands", str(release), "--repo", "acme/wine", "--tag", "v1.2.0"]
    assert main([*argv, "--image", "ghcr.io/acme/wine"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "gh attestation verify oci://ghcr.io/acme/wine:v1.2.0 -R acme/wine "
        f"--signer-workflow acme/wine/{RELEASE_WORKFLOW}"
    )
