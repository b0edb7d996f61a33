"""`mlops release tag`: which release a pushed tag names, and whether it may be released.

Two tag styles name a release: `vX.Y.Z`, and GTO's `<name>@vX.Y.Z` (an artifact name, as
`gto register` writes it) where the name is the project's (params.yaml `project.name`): a tag
naming another artifact is refused, so a release always ships this project's model. A release
tag must point at the checked-out commit, and that commit must be on the default branch (an
ancestor of `origin/main`): only reviewed, merged code ships. The previous release is the
highest version below this one among the tags of the same style (and, for GTO, the same name)
reachable from this commit: the gate's baseline and the model card's comparison. Its answers go
to the step outputs the release workflow wires onwards.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import click

from mlops_template.ci import gha
from mlops_template.errors import UserError

REGISTRY = "ghcr.io"
DEFAULT_BRANCH = "main"
_VERSION = r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
# A GTO artifact name that is also an image path component (lowercase; `.`, `_`, `__` or
# dashes between lowercase letters and numbers), so `<name>@vX.Y.Z` can name the image too.
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = re.compile(rf"^(?:(?P<name>{_NAME})@)?(?P<version>{_VERSION})$")
EXAMPLES = "v1.2.0, or <name>@v1.2.0 (GTO)"


@dataclass(frozen=True)
class ReleaseTag:
    tag: str  # as pushed: `v1.2.0` or `<project>@v1.2.0`
    version: str  # `v1.2.0`: the bento and image version
    name: str | None  # the GTO artifact name, None for a plain tag
    numbers: tuple[int, int, int]


def try_parse(tag: str) -> ReleaseTag | None:
    """The release a tag names, or None when it is not a release tag."""
    match = _TAG.match(tag)
    if match is None:
        return None
    numbers = (int(match.group(3)), int(match.group(4)), int(match.group(5)))
    return ReleaseTag(tag, match.group("version"), match.group("name"), numbers)


def parse_tag(tag: str) -> ReleaseTag:
    parsed = try_parse(tag.removeprefix("refs/tags/"))
    if parsed is None:
        raise UserError(
            f"{tag!r} is not a release tag",
            f"tag the release as {EXAMPLES} (numbers without leading zeros)",
        )
    return parsed


def check_project(release: ReleaseTag, project: str) -> None:
    """A GTO-style tag must name this project (params.yaml `project.name`)."""
    if release.name is not None and release.name != project:
        raise UserError(
            f"tag {release.tag} names {release.name!r}, but this project is {project!r} "
            "(params.yaml project.name)",
            f"tag the release as {release.version} or {project}@{release.version}",
        )


def previous_release(current: ReleaseTag, tags: Iterable[str]) -> ReleaseTag | None:
    """The highest release below `current` among `tags`, of the same style and GTO name."""
    older = [
        parsed
        for parsed in map(try_parse, tags)
        if parsed is not None and parsed.name == current.name and parsed.numbers < current.numbers
    ]
    return max(older, key=lambda t: t.numbers, default=None)


def image_name(repository: str, release: ReleaseTag, registry: str = REGISTRY) -> str:
    """`ghcr.io/<owner>/<repo>` (lowercase, as registries require); GTO releases get their
    artifact name as a last path part, so artifacts of one repository never share an image."""
    owner, sep, repo = repository.partition("/")
    if not sep or not owner or not repo or "/" in repo:
        raise UserError(
            f"repository {repository!r} is not OWNER/REPO",
            "run in GitHub Actions (GITHUB_REPOSITORY) or pass --repository OWNER/REPO",
        )
    name = f"{registry}/{owner}/{repo}".lower()
    return f"{name}/{release.name}" if release.name else name


# --------------------------------------------------------------------------- git


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError("git is not installed here", "install git") from None


def commit_of(rev: str) -> str | None:
    done = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return done.stdout.strip() if done.returncode == 0 else None


def tags_reachable_from(commit: str) -> list[str]:
    done = _git("tag", "--list", "--merged", commit)
    if done.returncode != 0:
        raise UserError(
            f"`git tag --merged {commit}` failed: {done.stderr.strip()}",
            "run inside the release's git clone",
        )
    return done.stdout.split()


def check_checked_out(release: ReleaseTag) -> str:
    """The tag's commit, which must be the checked-out one; UserError otherwise."""
    tagged = commit_of(f"refs/tags/{release.tag}")
    if tagged is None:
        raise UserError(
            f"tag {release.tag} is not in this clone",
            "check out with `fetch-depth: 0` (actions/checkout) so tags are fetched",
        )
    head = commit_of("HEAD")
    if head != tagged:
        raise UserError(
            f"HEAD ({head}) is not the commit tagged {release.tag} ({tagged})",
            "check out the tag itself (the release builds exactly the tagged commit)",
        )
    return tagged


def check_on_branch(commit: str, branch: str = DEFAULT_BRANCH, remote: str = "origin") -> None:
    """The commit must be an ancestor of (or equal to) `<remote>/<branch>`."""
    ref = f"refs/remotes/{remote}/{branch}"
    if commit_of(ref) is None:
        raise UserError(
            f"{remote}/{branch} is not in this clone, so the tag cannot be checked against it",
            "check out with `fetch-depth: 0` (actions/checkout fetches every branch then)",
        )
    done = _git("merge-base", "--is-ancestor", commit, ref)
    if done.returncode == 1:
        raise UserError(
            f"the tagged commit {commit[:12]} is not on {branch}: only merged code is released",
            f"merge it into {branch} first, then delete the tag and tag a commit of {branch}",
        )
    if done.returncode != 0:
        raise UserError(
            f"`git merge-base` failed: {done.stderr.strip()}", "run inside the release's git clone"
        )


@dataclass(frozen=True)
class Checked:
    release: ReleaseTag
    commit: str
    previous: ReleaseTag | None
    image: str


def check_release(
    tag: str, repository: str, branch: str = DEFAULT_BRANCH, project: str | None = None
) -> Checked:
    """`project`: the project's name; a GTO-style tag naming another is refused."""
    release = parse_tag(tag)
    if project is not None:
        check_project(release, project)
    commit = check_checked_out(release)
    check_on_branch(commit, branch)
    previous = previous_release(release, tags_reachable_from(commit))
    return Checked(release, commit, previous, image_name(repository, release))


# --------------------------------------------------------------------------- the command


@click.command("tag", help=__doc__)
@click.argument("tag", required=False, envvar="GITHUB_REF_NAME")
@click.option(
    "--branch",
    default=DEFAULT_BRANCH,
    show_default=True,
    help="the branch the tagged commit must be on, as origin/BRANCH",
)
@click.option(
    "--repository",
    envvar="GITHUB_REPOSITORY",
    help="OWNER/REPO, for the image name (default: $GITHUB_REPOSITORY)",
)
@click.option(
    "--project",
    help="the project's name, which a `<name>@vX.Y.Z` tag must carry "
    "(default: project.name in params.yaml)",
)
def tag(tag: str | None, branch: str, repository: str | None, project: str | None) -> None:
    """TAG: the release tag, e.g. v1.2.0 or <name>@v1.2.0 (default: $GITHUB_REF_NAME)."""
    with gha.annotated("mlops release tag"):
        if not tag:
            raise UserError("no tag given", "pass the tag, or run on a tag push (GITHUB_REF_NAME)")
        if not project:
            from mlops_template.params import load_params  # validates all of params.yaml

            project = load_params().project.name
        checked = check_release(tag, repository or "", branch or DEFAULT_BRANCH, project)
    release, previous = checked.release, checked.previous
    outputs = {
        "tag": release.tag,
        "version": release.version,
        "name": release.name or "",
        "commit": checked.commit,
        "previous-tag": previous.tag if previous else "",
        "image": checked.image,
    }
    for key, value in outputs.items():
        gha.set_output(key, value)
    print(f"release {release.tag}: version {release.version}, commit {checked.commit}")
    print(f"on {branch or DEFAULT_BRANCH}: yes")
    print(f"previous release: {previous.tag if previous else 'none (first release)'}")
    print(f"image: {checked.image}:{release.version}")
