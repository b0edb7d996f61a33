"""The checks a user runs on a downloaded release before `bentoml import`.

`SHA256SUMS` comes from the same release, so it only catches a broken download. What proves
where the files come from: GitHub's build provenance attestation of every release file (signed
for this repository's release workflow at the release's tag: `gh attestation verify`), and the
model files' own signature (Sigstore, the same workflow's identity: `model_signing verify`), which
stays with the model inside the bento and the image. The commands are derived from the release's
real files and from the workflow that attests and signs them, so they cannot name a file or a
workflow that does not exist.
"""

from __future__ import annotations

import shlex
import tarfile
from pathlib import Path

import click

from mlops_template.errors import UserError
from mlops_template.signing import (
    GITHUB_ISSUER,
    RELEASE_WORKFLOW,
    SIGNATURE_NAME,
    workflow_identity,
)


def signing_workflow(root: Path = Path(".")) -> str:
    """The workflow file that attests and signs a release (its path in the repository)."""
    path = root / RELEASE_WORKFLOW
    text = path.read_text() if path.is_file() else ""
    if "actions/attest@" not in text or "mlops release sign" not in text:
        raise UserError(
            f"{path} does not attest and sign the release files",
            "restore .github/workflows/release.yml from the template",
        )
    return RELEASE_WORKFLOW


def signed_models(bento: Path) -> list[str]:
    """The model directories inside a .bento archive that carry a signature."""
    try:
        with tarfile.open(bento) as archive:
            names = archive.getnames()
    except (tarfile.TarError, OSError) as exc:
        raise UserError(
            f"{bento} is not a readable bento archive ({exc})", "download it again"
        ) from None
    found = {
        name.removeprefix("./").rsplit("/", 1)[0]
        for name in names
        if name.removeprefix("./").startswith("models/") and name.endswith(f"/{SIGNATURE_NAME}")
    }
    return sorted(found)


def verification_commands(
    directory: Path, repository: str, tag: str, root: Path = Path("."), image: str | None = None
) -> list[str]:
    """Shell commands, run in a fresh folder, that check the release `tag` of `repository`
    whose files are in `directory` (as `gh release download` writes them)."""
    workflow = f"{repository}/{signing_workflow(root)}"
    files = sorted(p.name for p in directory.iterdir() if p.is_file())
    bentos = [name for name in files if name.endswith(".bento")]
    if not bentos:
        raise UserError(f"no .bento file in {directory}", "download the whole release")
    ref = f"refs/tags/{tag}"
    q = shlex.quote
    lines = [f"gh release download {q(tag)} -R {q(repository)} --dir {q(tag)}", f"cd {q(tag)}"]
    for name in files:
        lines.append(
            f"gh attestation verify {q(name)} -R {q(repository)} "
            f"--signer-workflow {q(workflow)} --source-ref {q(ref)}"
        )
    if "SHA256SUMS" in files:
        lines.append("sha256sum -c SHA256SUMS")
    identity = workflow_identity(repository, ref)
    for bento in bentos:
        unpacked = bento.removesuffix(".bento")
        lines.append(f"mkdir -p {q(unpacked)} && tar -xf {q(bento)} -C {q(unpacked)}")
        for model in signed_models(directory / bento):
            path = f"{unpacked}/{model}"
            lines.append(
                f"model_signing verify sigstore {q(path)} "
                f"--signature {q(f'{path}/{SIGNATURE_NAME}')} "
                f"--identity {q(identity)} --identity_provider {GITHUB_ISSUER}"
            )
        lines.append(f"bentoml import {q(bento)}")
    if image:
        lines.append(
            f"gh attestation verify {q(f'oci://{image}:{tag}')} -R {q(repository)} "
            f"--signer-workflow {q(workflow)}"
        )
    return lines


@click.command("verify-commands", help="Print the commands that check a downloaded release.")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--repo", "repository", required=True, help="OWNER/REPO that released it")
@click.option("--tag", required=True, help="the release tag, e.g. v1.2.0")
@click.option("--image", help="the image name without tag, e.g. ghcr.io/owner/repo")
def verify_commands(directory: Path, repository: str, tag: str, image: str | None) -> None:
    """DIRECTORY: the release's files (e.g. dist/)."""
    for line in verification_commands(directory, repository, tag, image=image):
        print(line)
