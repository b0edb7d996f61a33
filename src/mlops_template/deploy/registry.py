"""`mlops registry` and `mlops rollback`: which release runs where, as GTO stage tags.

A release is a GTO version: the release tag `<project>@vX.Y.Z` registers it. Putting a version
in a stage is a git tag too, `<project>#<stage>#<n>`, written by `gto assign` (n counts up, so
the tags alone order the history). Pushing such a tag starts the deploy workflow. The version
in a stage is the one its newest assignment names; the previous one is the newest assignment
before it that names another version. A rollback assigns that one again: GTO refuses to assign a
version that was ever in the stage unless forced, so a rollback always passes `force`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mlops_template.ci import gha
from mlops_template.errors import UserError, run_checked

STAGES = ("staging", "prod")
_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True)
class Assignment:
    tag: str  # <project>#<stage>#<n>
    version: str
    stage: str
    number: int


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise UserError(f"{version!r} is not a version", "name it as vX.Y.Z, e.g. v1.2.0")
    return version


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}", f"use one of: {', '.join(STAGES)}")
    return stage


def tag_number(tag: str) -> int:
    tail = tag.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


@contextmanager
def _gto_errors(repo: Path) -> Iterator[None]:
    """GTO's and git's exceptions for expected mistakes as one UserError."""
    from gto.exceptions import GTOException
    from scmrepo.exceptions import SCMError

    try:
        yield
    except SCMError:
        raise UserError(
            f"{repo} is not a git repository",
            "run inside the project's git clone (the registry is its tags)",
        ) from None
    except GTOException as exc:
        raise UserError(f"GTO: {exc}", "see `mlops registry` for the versions and stages") from None


class Registry:
    """The GTO registry of one project (its artifact name is params.yaml project.name)."""

    def __init__(self, project: str, repo: Path = Path(".")) -> None:
        self.project = project
        self.repo = repo

    def versions(self) -> list[str]:
        """The released (registered) versions, oldest first."""
        from mlops_template.release.tags import try_parse

        tags = [try_parse(tag) for tag in self._tags(f"{self.project}@v*")]
        found = [t for t in tags if t is not None and t.name == self.project]
        return [t.version for t in sorted(found, key=lambda t: t.numbers)]

    def assignments(self, stage: str) -> list[Assignment]:
        """Every assignment of `stage`, oldest first."""
        import gto.api

        with _gto_errors(self.repo):
            events = gto.api.history(str(self.repo), self.project)
        found = [
            Assignment(e["ref"], e["version"], e["stage"], tag_number(e["ref"]))
            for e in events
            if e.get("event") == "assignment" and e.get("stage") == stage
        ]
        return sorted(found, key=lambda a: a.number)

    def current(self, stage: str) -> Assignment | None:
        history = self.assignments(stage)
        return history[-1] if history else None

    def previous(self, stage: str) -> str | None:
        """The version in `stage` before the current one (None when there never was one)."""
        history = self.assignments(stage)
        if not history:
            return None
        current = history[-1].version
        return next((a.version for a in reversed(history) if a.version != current), None)

    def assign(self, version: str, stage: str, force: bool = False) -> Assignment:
        """`gto assign <project> --version V --stage S [--force]`: a new assignment tag."""
        import gto.api

        check_version(version)
        check_stage(stage)
        if version not in self.versions():
            known = ", ".join(self.versions()) or "none yet"
            raise UserError(
                f"{version} is not a release of {self.project}: no tag {self.project}@{version}",
                f"release it first (tag {self.project}@{version}), or pick a released "
                f"version: {known}",
            )
        author, email = tagger()
        with _gto_errors(self.repo):
            event = gto.api.assign(
                str(self.repo),
                self.project,
                stage,
                version=version,
                force=force,
                author=author,
                author_email=email,
            )
        return Assignment(event.tag, version, stage, tag_number(event.tag))

    def rollback(self, stage: str = "prod", to: str | None = None) -> Assignment:
        """Assign `to` (default: the previous version of `stage`) to `stage` again."""
        check_stage(stage)
        current = self.current(stage)
        if current is None:
            raise UserError(
                f"no version of {self.project} was ever assigned to {stage}: nothing to roll back",
                f"assign one: `gto assign {self.project} --version vX.Y.Z --stage {stage}`",
            )
        target = check_version(to) if to else self.previous(stage)
        if target is None:
            raise UserError(
                f"{current.version} is the only version {stage} ever had: no previous version",
                "name the version to deploy: `mlops rollback --to vX.Y.Z`",
            )
        if target == current.version:
            raise UserError(
                f"{target} is already the version in {stage} ({current.tag})",
                "name another version with --to, or see `mlops registry`",
            )
        return self.assign(target, stage, force=True)

    def _tags(self, pattern: str) -> list[str]:
        fix = "run inside the project's git clone (the registry is its tags)"
        return run_checked(["git", "tag", "--list", pattern], fix, cwd=self.repo).stdout.split()


def tagger() -> tuple[str | None, str | None]:
    """Who signs the tag: git's own identity, else (a runner has none) the workflow's actor."""
    actor = os.environ.get("GITHUB_ACTOR")
    if os.environ.get("GIT_COMMITTER_NAME") or not actor:
        return None, None
    return actor, f"{actor}@users.noreply.github.com"


def push_tag(tag: str, repo: Path = Path("."), remote: str = "origin") -> None:
    """`git push <remote> refs/tags/<tag>`; with GH_TOKEN set, authenticated for this push only
    (an HTTP header in the environment: nothing is written to the clone's config)."""
    env = dict(os.environ)
    token = os.environ.get("GH_TOKEN")
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        count = int(env.get("GIT_CONFIG_COUNT") or 0)  # after any the environment sets already
        env.update(
            {
                "GIT_CONFIG_COUNT": str(count + 1),
                f"GIT_CONFIG_KEY_{count}": "http.https://github.com/.extraheader",
                f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
            }
        )
    run_checked(
        ["git", "push", remote, f"refs/tags/{tag}"],
        "push it yourself (`git push origin <tag>`), with write access to the repository",
        cwd=repo,
        env=env,
    )


def registry_for(project: str | None) -> Registry:
    if project is None:
        from mlops_template.params import load_params

        project = load_params().project.name
    return Registry(project)


project_option = click.option(
    "--project", help="the GTO artifact (default: params.yaml project.name)"
)


def stage_table(registry: Registry) -> list[dict[str, Any]]:
    rows = []
    for stage in STAGES:
        current = registry.current(stage)
        rows.append(
            {
                "stage": stage,
                "version": current.version if current else None,
                "tag": current.tag if current else None,
                "previous": registry.previous(stage),
            }
        )
    return rows


@click.command("registry", help=__doc__)
@project_option
def registry(project: str | None) -> None:
    reg = registry_for(project)
    print(f"{reg.project}: released {', '.join(reg.versions()) or 'nothing yet'}")
    for row in stage_table(reg):
        if row["version"] is None:
            print(f"  {row['stage']:<8} (none)")
        else:
            previous = f", previous {row['previous']}" if row["previous"] else ""
            print(f"  {row['stage']:<8} {row['version']} ({row['tag']}{previous})")


@click.command(
    "rollback",
    help="Put the previous version of a stage (or --to VERSION) back in it: a new GTO "
    "assignment tag (forced, since the version was in the stage before). With --push the tag "
    "goes to origin, which deploys it.",
)
@click.option("--to", "to", help="the version to roll back to (default: the previous one)")
@click.option("--stage", type=click.Choice(STAGES), default="prod", show_default=True)
@click.option("--push", is_flag=True, help="push the new tag to origin")
@project_option
def rollback(to: str | None, stage: str, push: bool, project: str | None) -> None:
    with gha.annotated("mlops rollback"):
        reg = registry_for(project)
        was = reg.current(stage)
        done = reg.rollback(stage, to or None)
        if push:
            push_tag(done.tag)
    print(f"{stage}: {was.version if was else '(none)'} -> {done.version} ({done.tag})")
    if not push:
        print(f"deploy it: git push origin '{done.tag}'")
    gha.set_output("tag", done.tag)
    gha.set_output("version", done.version)
