"""`mlops ci unpack` and `mlops ci comment`: post the PR report as exactly one comment, via CML.

`unpack` runs in the comment workflow (workflow_run, base-branch code only): it checks the
artifact (`artifact.validate_bundle`) and asks GitHub that the PR it names really is at the
commit the PR workflow built, so a fork cannot aim its report at someone else's PR, and an old
run finishing late cannot overwrite a newer report.

`comment` builds the exact `cml comment update` command: `--target=pr/N` and a fixed watermark
title make CML update its one comment in place (the watermark survives rebases and force
pushes), and `--no-publish` stops CML from uploading files the markdown links to. That matters:
the report comes from PR code, and with publishing on, a link to a local file (say
/proc/self/environ, which holds the token) would be uploaded to CML's public asset host. Images
are published only when the user opts in, one validated PNG at a time with `cml asset publish`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from mlops_template.ci import gha
from mlops_template.ci.artifact import (
    IMAGE_NAME,
    PNG_MAGIC,
    NoArtifact,
    check_pr_number,
    check_sha,
    validate_bundle,
)
from mlops_template.errors import UserError

DEFAULT_WATERMARK = "mlops-template report"
CML_VERSION = "0.20.6"
ASSET_HOST = "asset.cml.dev"
_WATERMARK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,79}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_URL = re.compile(r"^https://[^\s()<>\"'`\[\]]+$")


class StalePR(Exception):
    """The PR moved on to another commit: this run's report is not the latest."""


# --------------------------------------------------------------------------- argv builders


def check_watermark(title: str) -> str:
    if not _WATERMARK.match(title):
        raise UserError(
            f"watermark title {title!r} is not allowed",
            "use up to 80 letters, digits, spaces and . _ : / - (no quotes or newlines)",
        )
    return title


def comment_argv(pr_number: int, report: Path, watermark: str = DEFAULT_WATERMARK) -> list[str]:
    """The one command that creates or updates the PR's report comment."""
    return [
        "cml",
        "comment",
        "update",
        f"--target=pr/{check_pr_number(pr_number)}",
        f"--watermark-title={check_watermark(watermark)}",
        "--no-publish",
        str(report),
    ]


def publish_argv(image: Path) -> list[str]:
    return ["cml", "asset", "publish", str(image)]


def gh_pr_argv(repo: str, pr_number: int) -> list[str]:
    if not _REPO.match(repo):
        raise UserError(f"repository {repo!r} is not owner/name", "pass $GITHUB_REPOSITORY")
    return ["gh", "api", f"repos/{repo}/pulls/{check_pr_number(pr_number)}"]


# --------------------------------------------------------------------------- calls


def _call(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, env=env)
    except FileNotFoundError:
        hint = (
            f"install CML first: npm install --global @dvcorg/cml@{CML_VERSION} (the comment "
            "action does)"
            if argv[0] == "cml"
            else "use a GitHub-hosted runner (gh is preinstalled) or install the GitHub CLI"
        )
        raise UserError(f"{argv[0]} is not installed here", hint) from None


def _token_env(name: str) -> dict[str, str]:
    env = {**os.environ, "ITERATIVE_DO_NOT_TRACK": "1"}
    if not env.get(name):
        raise UserError(
            f"no GitHub token in ${name}",
            "pass the workflow's token (the action's github-token input, default github.token)",
        )
    return env


def verify_pr_head(repo: str, pr_number: int, head_sha: str) -> None:
    """Raise StalePR unless PR `pr_number` of `repo` is at `head_sha` right now."""
    done = _call(gh_pr_argv(repo, pr_number), _token_env("GH_TOKEN"))
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(
            f"could not read PR #{pr_number} of {repo}: {detail[0]}",
            "the comment workflow needs `pull-requests: write` (it reads the PR too)",
        )
    try:
        pr = json.loads(done.stdout)
        current = pr["head"]["sha"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(
            f"GitHub's answer about PR #{pr_number} has no head sha", "rerun the workflow"
        ) from None
    if current != head_sha:
        raise StalePR(
            f"PR #{pr_number} is now at {str(current)[:12]}, not {head_sha[:12]}: "
            "the run for its latest commit posts the report"
        )


def publish_images(images: Sequence[Path]) -> list[tuple[str, str]]:
    """Upload each PNG with CML (to its public asset host); [(alt, https url)]."""
    env = {**os.environ, "ITERATIVE_DO_NOT_TRACK": "1"}
    links = []
    for image in images:
        if image.is_symlink() or not IMAGE_NAME.match(image.name) or not _png(image):
            raise UserError(f"{image} is not a PNG image to publish", "publish PNG files only")
        done = _call(publish_argv(image), env)
        url = (done.stdout.strip().splitlines() or [""])[-1].strip()
        if done.returncode != 0 or not _URL.match(url):
            raise UserError(
                f"`cml asset publish {image.name}` failed: {(done.stderr or url).strip()[:200]}",
                f"check that {ASSET_HOST} is reachable, or turn image publishing off",
            )
        links.append((image.name[: -len(".png")], url))
    return links


def _png(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(PNG_MAGIC)) == PNG_MAGIC


def with_images(report_text: str, links: Sequence[tuple[str, str]]) -> str:
    if not links:
        return report_text
    lines = ["", "### Images", ""] + [f"![{alt}]({url})" for alt, url in links]
    return report_text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def post_comment(
    pr_number: int,
    report: Path,
    watermark: str = DEFAULT_WATERMARK,
    images: Sequence[Path] = (),
    publish: bool = False,
) -> str:
    """Create or update the PR's one report comment; returns what CML printed (its URL)."""
    env = _token_env("REPO_TOKEN")
    if not report.is_file():
        raise UserError(f"no report at {report}", "build it with the report action first")
    target = report
    if publish and images:
        text = with_images(report.read_text(encoding="utf-8"), publish_images(images))
        handle, name = tempfile.mkstemp(
            prefix="report-", suffix=".md", dir=os.environ.get("RUNNER_TEMP") or None
        )
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        target = Path(name)
    elif images:
        print(f"{len(images)} image(s) not published (publish-images is off)")
    done = _call(comment_argv(pr_number, target, watermark), env)
    if done.returncode != 0:
        raise UserError(
            f"`cml comment update` failed: {(done.stderr or done.stdout).strip()[-300:]}",
            "the job needs `pull-requests: write`; a fork PR must be commented on from the "
            "workflow_run workflow, not from the PR workflow",
        )
    url = done.stdout.strip()
    print(f"PR #{pr_number} report comment: {url}")
    return url


# --------------------------------------------------------------------------- commands


@click.command(
    "unpack", help="Check a downloaded PR report artifact and that the PR is at its commit."
)
@click.option("--dir", "directory", required=True, help="the downloaded artifact folder")
@click.option("--head-sha", required=True, help="head commit of the PR run (workflow_run.head_sha)")
@click.option("--repo", required=True, help="owner/name ($GITHUB_REPOSITORY)")
@gha.annotated("mlops ci unpack")
def unpack(directory: str, head_sha: str, repo: str) -> None:
    try:
        found = validate_bundle(Path(directory), expected_head_sha=check_sha(head_sha, "sha"))
        verify_pr_head(repo, found.pr_number, found.head_sha)
    except NoArtifact as exc:
        gha.annotate("notice", f"{exc.message}; nothing to post", title="No PR report")
        gha.set_output("post", "false")
        return
    except StalePR as exc:
        gha.annotate("notice", str(exc), title="Newer commit")
        gha.set_output("post", "false")
        return
    print(f"report artifact OK: PR #{found.pr_number} at {found.head_sha[:12]}")
    gha.set_output("post", "true")
    gha.set_output("pr-number", str(found.pr_number))
    gha.set_output("report", str(found.report))
    gha.set_output("images-dir", str(found.report.parent / "images"))


@click.command("comment", help="Create or update the PR's one report comment with CML.")
@click.option("--pr-number", required=True)
@click.option("--report", required=True, help="markdown file to post")
@click.option("--watermark", default=DEFAULT_WATERMARK, show_default=True)
@click.option("--images-dir", default="", help="PNG images to publish (if opted in)")
@click.option(
    "--publish-images",
    is_flag=True,
    help=f"upload the PNG images to CML's public host ({ASSET_HOST}) and show them",
)
@gha.annotated("mlops ci comment")
def comment(
    pr_number: str, report: str, watermark: str, images_dir: str, publish_images: bool
) -> None:
    images_path = Path(images_dir) if images_dir else None
    images = sorted(images_path.glob("*.png")) if images_path and images_path.is_dir() else []
    url = post_comment(
        check_pr_number(pr_number, from_text=True),
        Path(report),
        watermark=watermark,
        images=images,
        publish=publish_images,
    )
    gha.set_output("comment-url", url)
