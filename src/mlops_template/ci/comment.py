"""`mlops ci unpack` and `mlops ci comment`: render the PR report and post it as one comment.

`unpack` runs in the comment workflow (workflow_run, default-branch code only): it checks the
artifact (`artifact.validate_bundle`), asks GitHub that the PR it names really is at the commit
the PR workflow built (so a fork cannot aim its report at someone else's PR, and an old run
finishing late cannot overwrite a newer report), and renders the report's data with this
branch's renderer, checking the verdict against the run's conclusion and marking a fork's report
as built by the PR's own code.

`comment` posts it. The default engine, `github`, is this project's own locked code calling
GitHub's REST API (`ci.github`): it updates only the comment its bot wrote with the marker, else
creates one. The opt-in engine `cml` runs `cml comment update` (CML must be on PATH: installing
it means running npm packages that no lockfile pins, in a job holding a write token); its
`--no-publish` stops CML from uploading files the markdown links to, and images are published
only on request, one validated PNG at a time, to CML's public asset host.
"""

from __future__ import annotations

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
from mlops_template.ci.github import DEFAULT_BOT, GitHub, check_repo
from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic

DEFAULT_WATERMARK = "mlops-template report"
ENGINES = ("github", "cml")
CML_VERSION = "0.20.6"
ASSET_HOST = "asset.cml.dev"
_WATERMARK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,79}$")
_URL = re.compile(r"^https://[^\s()<>\"'`\[\]]+$")
_CONCLUSIONS = {
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "neutral",
    "stale",
    "startup_failure",
}


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


# --------------------------------------------------------------------------- calls


def _call(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise UserError(
            "cml is not installed here (the `cml` engine needs it on PATH)",
            f"use the default engine `github`, or install CML {CML_VERSION} in an earlier step "
            "(see the comment action's `engine` input for the risk)",
        ) from None


def marker(watermark: str = DEFAULT_WATERMARK) -> str:
    """The hidden line that marks the report comment (the github engine)."""
    return f"<!-- {check_watermark(watermark)} -->"


def verify_pr_head(api: GitHub, repo: str, pr_number: int, head_sha: str) -> None:
    """Raise StalePR unless PR `pr_number` of `repo` is at `head_sha` right now."""
    current = api.pr_head_sha(repo, pr_number)
    if current != head_sha:
        raise StalePR(
            f"PR #{pr_number} is now at {gha.escape(current[:12])}, not {head_sha[:12]}: "
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


def _cml_env() -> dict[str, str]:
    if not os.environ.get("REPO_TOKEN"):
        raise UserError(
            "no GitHub token in $REPO_TOKEN",
            "pass the workflow's token (the action's github-token input, default github.token)",
        )
    return {**os.environ, "ITERATIVE_DO_NOT_TRACK": "1"}


def post_with_cml(
    pr_number: int,
    report: Path,
    watermark: str = DEFAULT_WATERMARK,
    images: Sequence[Path] = (),
    publish: bool = False,
) -> str:
    """Create or update the PR's one report comment with CML; returns what CML printed."""
    env = _cml_env()
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
            "`cml comment update` failed: "
            + gha.escape((done.stderr or done.stdout).strip()[-300:]),
            "the job needs `pull-requests: write`; a fork PR must be commented on from the "
            "workflow_run workflow, not from the PR workflow",
        )
    return done.stdout.strip()


def post_with_github(
    api: GitHub,
    repo: str,
    pr_number: int,
    report: Path,
    watermark: str = DEFAULT_WATERMARK,
    bot: str = DEFAULT_BOT,
) -> str:
    """Create or update the PR's one report comment through GitHub's REST API; its URL."""
    body = f"{marker(watermark)}\n{report.read_text(encoding='utf-8')}"
    posted = api.upsert_comment(check_repo(repo), pr_number, body, marker(watermark), bot)
    print(f"report comment {posted.action}")
    return posted.url


def post_comment(
    pr_number: int,
    report: Path,
    engine: str = "github",
    watermark: str = DEFAULT_WATERMARK,
    images: Sequence[Path] = (),
    publish: bool = False,
    repo: str = "",
    bot: str = DEFAULT_BOT,
) -> str:
    """Create or update the PR's one report comment with `engine`; returns its URL."""
    if engine not in ENGINES:
        raise UserError(f"unknown comment engine {engine!r}", f"use one of {', '.join(ENGINES)}")
    if not report.is_file():
        raise UserError(f"no report at {report}", "render it with `mlops ci unpack` first")
    check_watermark(watermark)
    if engine == "cml":
        url = post_with_cml(pr_number, report, watermark, images, publish)
    else:
        if publish and images:
            raise UserError(
                "publishing images needs the `cml` engine (it uploads them to CML's host)",
                "turn publish-images off, or opt into engine: cml",
            )
        repo = repo or os.environ.get("GITHUB_REPOSITORY", "")
        url = post_with_github(
            GitHub.from_env("REPO_TOKEN"), repo, pr_number, report, watermark, bot
        )
    print(f"PR #{pr_number} report comment: {gha.escape(url)}")
    return url


# --------------------------------------------------------------------------- commands


def check_conclusion(value: str) -> str:
    if value not in _CONCLUSIONS:
        raise UserError(
            f"run conclusion {gha.escape(repr(value))} is not one GitHub reports",
            "pass ${{ github.event.workflow_run.conclusion }}",
        )
    return value


def run_url(repo: str, run_id: str) -> str:
    """The PR run's page, built from trusted values only: this repository and a number."""
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    if not re.fullmatch(r"[1-9][0-9]{0,19}", run_id or "") or not server.startswith("https://"):
        return ""
    return f"{server.rstrip('/')}/{check_repo(repo)}/actions/runs/{run_id}"


def render_comment(
    directory: Path,
    head_sha: str,
    repo: str,
    conclusion: str,
    head_repo: str,
    run_id: str,
    out: Path,
    api: GitHub,
) -> int:
    """Check the artifact and the PR, render the report to `out`; the PR number."""
    from mlops_template.report.render import ReportOrigin, render_report

    check_conclusion(conclusion)
    found = validate_bundle(directory, expected_head_sha=check_sha(head_sha, "sha"))
    verify_pr_head(api, repo, found.pr_number, found.head_sha)
    origin = ReportOrigin(
        conclusion=conclusion,
        fork=head_repo.lower() != check_repo(repo).lower(),
        run_url=run_url(repo, run_id),
    )
    write_text_atomic(out, render_report(found.report, origin=origin))
    return found.pr_number


@click.command(
    "unpack",
    help="Check a downloaded PR report artifact and that the PR is at its commit, and render "
    "the report with this checkout's renderer.",
)
@click.option("--dir", "directory", required=True, help="the downloaded artifact folder")
@click.option("--head-sha", required=True, help="head commit of the PR run (workflow_run.head_sha)")
@click.option("--repo", required=True, help="owner/name ($GITHUB_REPOSITORY)")
@click.option(
    "--conclusion", required=True, help="the PR run's conclusion (workflow_run.conclusion)"
)
@click.option(
    "--head-repo",
    required=True,
    help="owner/name the PR comes from (workflow_run.head_repository.full_name)",
)
@click.option("--run-id", default="", help="the PR run's id, linked from the report")
@click.option("--out", required=True, help="markdown file to write (outside the artifact)")
@gha.annotated("mlops ci unpack")
def unpack(
    directory: str, head_sha: str, repo: str, conclusion: str, head_repo: str, run_id: str, out: str
) -> None:
    try:
        number = render_comment(
            Path(directory),
            head_sha,
            repo,
            conclusion,
            head_repo,
            run_id,
            Path(out),
            GitHub.from_env("GH_TOKEN"),
        )
    except NoArtifact as exc:
        gha.annotate("notice", f"{exc.message}; nothing to post", title="No PR report")
        gha.set_output("post", "false")
        return
    except StalePR as exc:
        gha.annotate("notice", str(exc), title="Newer commit")
        gha.set_output("post", "false")
        return
    print(f"report rendered for PR #{number} at {head_sha[:12]}: {gha.escape(out)}")
    gha.set_output("post", "true")
    gha.set_output("pr-number", str(number))
    gha.set_output("report", out)
    gha.set_output("images-dir", str(Path(directory) / "images"))


@click.command("comment", help="Create or update the PR's one report comment.")
@click.option("--pr-number", required=True)
@click.option("--report", required=True, help="markdown file to post")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="github",
    show_default=True,
    help="github: this project's REST client; cml: `cml comment update` (CML on PATH)",
)
@click.option("--watermark", default=DEFAULT_WATERMARK, show_default=True)
@click.option(
    "--bot",
    default=DEFAULT_BOT,
    show_default=True,
    help="the login the token comments as; only its marked comment is updated",
)
@click.option("--images-dir", default="", help="PNG images to publish (if opted in)")
@click.option(
    "--publish-images",
    is_flag=True,
    help=f"upload the PNG images to CML's public host ({ASSET_HOST}) and show them (cml only)",
)
@gha.annotated("mlops ci comment")
def comment(
    pr_number: str,
    report: str,
    engine: str,
    watermark: str,
    bot: str,
    images_dir: str,
    publish_images: bool,
) -> None:
    images_path = Path(images_dir) if images_dir else None
    images = sorted(images_path.glob("*.png")) if images_path and images_path.is_dir() else []
    url = post_comment(
        check_pr_number(pr_number, from_text=True),
        Path(report),
        engine=engine,
        watermark=watermark,
        images=images,
        publish=publish_images,
        bot=bot,
    )
    gha.set_output("comment-url", url)
