"""The release a deployment runs, fetched and verified before anything is applied.

The files come from the GitHub Release of `<project>@vX.Y.Z` (`gh release download`). Every
file must be listed in its SHA256SUMS with that hash, and carry a build provenance attestation
of this repository (`gh attestation verify FILE --repo OWNER/REPO`), which the release workflow
signed. The image is the one the release workflow pushed and attested: `gh attestation verify
oci://IMAGE:VERSION` resolves the tag to its digest and verifies that digest's attestation, and
the deployment then references the image by that digest, never by a tag that could move (a
release that also lists its image by digest in a file IMAGE must name that same one). What
/metadata must answer after the deploy is the model tag recorded in the release's bento.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError
from mlops_template.release.checksums import SUMS_FILE, release_files, sha256_file

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
IMAGE_FILE = "IMAGE"  # optional release file: the pushed image by digest


@dataclass(frozen=True)
class VerifiedRelease:
    tag: str  # <project>@vX.Y.Z
    files: list[Path]
    model_tag: str
    image: str  # IMAGE@sha256:...


def gh(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["gh", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError("the GitHub CLI (gh) is not installed", "install gh") from None


def download(tag: str, repository: str, out: Path) -> None:
    """The release's files into `out` (emptied first: nothing from another release stays)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    done = gh("release", "download", tag, "--repo", repository, "--dir", str(out), "--clobber")
    if done.returncode != 0:
        raise UserError(
            f"no GitHub Release {tag} in {repository}: {done.stderr.strip()[-300:]}",
            f"release it first (push the tag {tag}; the release workflow publishes it)",
        )


def read_sums(directory: Path) -> dict[str, str]:
    sums = directory / SUMS_FILE
    if not sums.is_file():
        raise UserError(f"the release has no {SUMS_FILE}", "publish it with the release workflow")
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if not _HEX64.match(digest) or not name or "/" in name or name.startswith("."):
            raise UserError(f"{SUMS_FILE} has a malformed line: {line!r}", "re-run the release")
        listed[name] = digest
    return listed


def verify_checksums(directory: Path) -> list[Path]:
    """Every file listed with its hash, and no file that is not listed."""
    listed = read_sums(directory)
    present = {p.name: p for p in release_files(directory)}
    problems = [f"{name} is missing" for name in sorted(set(listed) - set(present))]
    problems += [f"{name} is not in {SUMS_FILE}" for name in sorted(set(present) - set(listed))]
    problems += [
        f"{name} does not match its SHA-256 in {SUMS_FILE}"
        for name in sorted(set(listed) & set(present))
        if sha256_file(present[name]) != listed[name]
    ]
    if problems:
        raise UserError(
            "the release's files fail their checksums: " + "; ".join(problems),
            "do not deploy it: re-run the release workflow (delete the GitHub Release first)",
        )
    return [directory / SUMS_FILE, *(present[name] for name in sorted(listed))]


def verify_attestations(files: list[Path], repository: str) -> None:
    for path in files:
        done = gh("attestation", "verify", str(path), "--repo", repository)
        if done.returncode != 0:
            raise UserError(
                f"{path.name} has no valid provenance attestation of {repository}: "
                f"{(done.stderr or done.stdout).strip()[-300:]}",
                "deploy only releases the release workflow published and attested",
            )


def _subject_digests(node: Any) -> set[str]:
    """Every `subject[].digest.sha256` in gh's JSON answer."""
    found: set[str] = set()
    if isinstance(node, dict):
        for subject in node.get("subject") or []:
            digest = ((subject or {}).get("digest") or {}).get("sha256")
            if isinstance(digest, str) and _HEX64.match(digest):
                found.add(digest)
        for value in node.values():
            found |= _subject_digests(value)
    elif isinstance(node, list):
        for value in node:
            found |= _subject_digests(value)
    return found


def attested_image(image: str, version: str, repository: str) -> str:
    """IMAGE@sha256:... for IMAGE:VERSION, after verifying the digest's attestation."""
    done = gh(
        "attestation", "verify", f"oci://{image}:{version}", "--repo", repository,
        "--format", "json",
    )  # fmt: skip
    if done.returncode != 0:
        raise UserError(
            f"the image {image}:{version} has no valid attestation of {repository}: "
            f"{(done.stderr or done.stdout).strip()[-300:]}",
            "deploy only images the release workflow pushed and attested (job `image`); "
            "the job needs `packages: read` and a registry login to read it",
        )
    try:
        digests = _subject_digests(json.loads(done.stdout))
    except json.JSONDecodeError:
        digests = set()
    if len(digests) != 1:
        raise UserError(
            f"`gh attestation verify oci://{image}:{version}` named {len(digests)} image "
            "digests, not one",
            "check the image's attestations on GitHub (Actions -> Attestations)",
        )
    return f"{image}@sha256:{digests.pop()}"


def model_tag_of(files: list[Path]) -> str:
    """The model tag the release's bento holds (its bento.yaml label `model-tag`)."""
    from mlops_template.release.image import read_bento_info

    bentos = [p for p in files if p.suffix == ".bento"]
    if len(bentos) != 1:
        raise UserError(f"the release holds {len(bentos)} .bento files, not one", "re-release")
    tag = (read_bento_info(bentos[0]).get("labels") or {}).get("model-tag")
    if not tag:
        raise UserError(f"{bentos[0].name} records no model-tag", "rebuild it: mlops release build")
    return str(tag)


def check_image_file(files: list[Path], attested: str) -> None:
    """A release that names its image (the file IMAGE: `<image>@sha256:<digest>`, covered by
    SHA256SUMS and attested like every file) must name the attested one."""
    named = [p.read_text(encoding="utf-8").strip() for p in files if p.name == IMAGE_FILE]
    if named and named[0] != attested:
        raise UserError(
            f"the release's {IMAGE_FILE} names {named[0]}, but the attested image is {attested}",
            "do not deploy it: re-run the release workflow",
        )


def fetch_release(
    tag: str, version: str, image: str, repository: str, out: Path
) -> VerifiedRelease:
    download(tag, repository, out)
    files = verify_checksums(out)
    verify_attestations(files, repository)
    attested = attested_image(image, version, repository)
    check_image_file(files, attested)
    return VerifiedRelease(tag, files, model_tag_of(files), attested)
