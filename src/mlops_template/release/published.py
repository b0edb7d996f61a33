"""`mlops release unpublished`: refuse a version that was published before.

A version is shipped once: its GitHub Release and its image tag are never replaced, so what a
user verified and pulled under that name stays what it is. `--release TAG` asks GitHub
(`gh release view TAG`, drafts included) and `--image REF` asks the registry
(`docker buildx imagetools inspect REF`, with the job's registry login). Only the exact
"not found" answers count as absent: any other failure (network, authentication) stops the
release too, because an unanswered question must not let a version be overwritten.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

import click

from mlops_template.ci import gha
from mlops_template.errors import UserError

# What `gh release view` and the registry (through buildx or docker) say for a missing one.
RELEASE_ABSENT = ("release not found",)
IMAGE_ABSENT = ("not found", "manifest unknown", "name unknown", "no such manifest")
NEW_VERSION = "release a new version: tag the commit with the next version number"


def _run(command: Sequence[str], tool: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(command), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(
            f"`{tool}` is not installed here",
            f"run in GitHub Actions (GitHub's runners have {tool}) or install it",
        ) from None


def _says(text: str, phrases: Sequence[str]) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in phrases)


def check_release_absent(tag: str, repository: str) -> None:
    """UserError unless GitHub says the repository has no release named `tag`."""
    done = _run(
        ["gh", "release", "view", tag, "--repo", repository, "--json", "tagName,url,isDraft"],
        "gh",
    )
    if done.returncode == 0:
        try:
            url = json.loads(done.stdout).get("url") or tag
        except (json.JSONDecodeError, AttributeError):
            url = tag
        raise UserError(
            f"{repository} already has a release {tag} ({url}): a version is published once",
            NEW_VERSION,
        )
    if not _says(done.stderr, RELEASE_ABSENT):
        raise UserError(
            f"could not ask GitHub whether release {tag} exists: {done.stderr.strip()[-400:]}",
            "give the step GH_TOKEN (the job's token with contents: read) and re-run the job",
        )


def check_image_absent(ref: str) -> None:
    """UserError unless the registry says it has no image `ref` (name:tag)."""
    done = _run(["docker", "buildx", "imagetools", "inspect", ref], "docker")
    if done.returncode == 0:
        raise UserError(f"the registry already has {ref}: an image tag is pushed once", NEW_VERSION)
    answer = (done.stderr or done.stdout).strip()
    if not _says(answer, IMAGE_ABSENT):
        raise UserError(
            f"could not ask the registry whether {ref} exists: {answer[-400:]}",
            "log in to the registry first (docker/login-action) and re-run the job",
        )


@click.command("unpublished", help=__doc__)
@click.option("--release", "release_tag", help="the release tag that must not exist yet")
@click.option("--image", "image_ref", help="the image (name:tag) that must not exist yet")
@click.option(
    "--repository",
    envvar="GITHUB_REPOSITORY",
    help="OWNER/REPO of the release (default: $GITHUB_REPOSITORY)",
)
def unpublished(release_tag: str | None, image_ref: str | None, repository: str | None) -> None:
    with gha.annotated("mlops release unpublished"):
        if not release_tag and not image_ref:
            raise UserError("nothing to check", "pass --release TAG, --image REF or both")
        if release_tag:
            if not repository:
                raise UserError(
                    "no repository to ask", "pass --repository OWNER/REPO (or GITHUB_REPOSITORY)"
                )
            check_release_absent(release_tag, repository)
            print(f"release {release_tag}: not published yet in {repository}")
        if image_ref:
            check_image_absent(ref=image_ref)
            print(f"image {image_ref}: not in the registry yet")
