"""`mlops deploy run|revert|kubeconfig`: the deploy workflow's steps.

run         the pushed stage tag (`<project>#<stage>#<n>`, read with GTO) names a version and a
            stage; the release's files are downloaded and verified (checksums, attestations),
            the image is resolved to its attested digest, the manifests are rendered and applied
            with kubectl, the rollout is awaited, and the deployed endpoint is smoke-tested.
            Fails (exit 1) when the smoke test fails; the output `applied` says whether the
            cluster was touched, so the workflow knows whether to roll back.
revert      after a failed `run`: assigns the stage's previous version again (a forced GTO tag,
            pushed with --push), deploys and smoke-tests it, and says so on the run.
kubeconfig  the cluster credentials of the job's GitHub Environment: the secret KUBE_CONFIG, or
            OIDC to AWS (variables EKS_CLUSTER and DEPLOY_ROLE_ARN, `aws eks update-kubeconfig`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click

from mlops_template import paths
from mlops_template.ci import gha
from mlops_template.deploy import kube
from mlops_template.deploy.manifests import (
    Target,
    Values,
    load_values,
    manifests_dir,
    render,
    write_manifests,
)
from mlops_template.deploy.registry import (
    Assignment,
    Registry,
    check_stage,
    push_tag,
    tag_number,
)
from mlops_template.deploy.smoke import DeployedSmoke, smoke_deployed
from mlops_template.errors import UserError

ENVIRONMENTS = {"staging": "staging", "prod": "production"}  # GTO stage -> GitHub Environment
TITLE = "Deploy"


@dataclass(frozen=True)
class Deployed:
    target: Target
    manifests: list[Path]
    url: str
    smoke: DeployedSmoke


def project_name() -> str:
    from mlops_template.params import load_params

    return load_params().project.name


def ensure_tag(tag: str, remote: str = "origin") -> None:
    """Fetch the tag when this clone lacks it (a tag pushed by an earlier job of the run)."""
    from mlops_template.release.tags import commit_of

    if commit_of(f"refs/tags/{tag}") is None:
        subprocess.run(
            ["git", "fetch", "--quiet", remote, f"refs/tags/{tag}:refs/tags/{tag}"],
            capture_output=True,
            check=False,
        )


def resolve(ref: str, project: str) -> Assignment:
    """The stage assignment a tag names (GTO's reading of it)."""
    import gto.api

    tag = ref.removeprefix("refs/tags/")
    ensure_tag(tag)
    events = [e for e in gto.api.check_ref(".", tag) if getattr(e, "stage", None)]
    if not events:
        raise UserError(
            f"{tag!r} is not a GTO stage assignment tag in this clone",
            f"assign a stage with `gto assign {project} --version vX.Y.Z --stage prod` and push "
            "the tag it creates",
        )
    event = events[0]
    if event.artifact != project:
        raise UserError(
            f"{tag} assigns artifact {event.artifact!r}, but this project is {project!r}",
            f"assign {project} (params.yaml project.name)",
        )
    check_stage(event.stage)
    return Assignment(tag, event.version, event.stage, tag_number(tag))


def deploy_version(
    project: str, version: str, stage: str, repository: str, values: Values, url: str | None
) -> Deployed:
    """Verify the release, render and apply its manifests, wait, smoke-test the endpoint."""
    from mlops_template.deploy.release_files import fetch_release
    from mlops_template.release.tags import image_name, parse_tag

    release = parse_tag(f"{project}@{version}")
    image = image_name(repository, release)
    verified = fetch_release(
        release.tag, version, image, repository, paths.DEPLOY_DIR / stage / "release"
    )
    print(f"verified {release.tag}: {len(verified.files)} files, image {verified.image}")
    target = Target(project, version, stage, verified.image, verified.model_tag)
    written = write_manifests(render(target, values), manifests_dir(stage))
    kube.apply(manifests_dir(stage))
    gha.set_output("applied", "true")
    namespace = values.stages[stage].namespace
    kube.wait_for_rollout(values.app, namespace, values.rollout_timeout_seconds)
    endpoint = url or f"https://{values.stages[stage].host}"
    report = smoke_deployed(endpoint, verified.model_tag)
    print(report.summary(), flush=True)
    return Deployed(target, written, endpoint, report)


def append_summary(lines: list[str]) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def describe(deployed: Deployed) -> list[str]:
    target = deployed.target
    verdict = "passed" if deployed.smoke.passed else "FAILED"
    return [
        f"| {ENVIRONMENTS[target.stage]} | {target.version} | `{target.image}` | "
        f"`{target.model_tag}` | {deployed.url} | {verdict} |",
    ]


TABLE_HEAD = [
    "| environment | version | image | model | endpoint | smoke test |",
    "| --- | --- | --- | --- | --- | --- |",
]

repository_option = click.option(
    "--repository",
    envvar="GITHUB_REPOSITORY",
    required=True,
    help="OWNER/REPO of the releases (default: $GITHUB_REPOSITORY)",
)
url_option = click.option(
    "--url",
    envvar="DEPLOY_URL",
    help="smoke-test this URL instead of https://<host> from the values file ($DEPLOY_URL)",
)
values_option = click.option(
    "--values",
    "values_file",
    type=click.Path(path_type=Path),
    default=paths.DEPLOY_VALUES,
    show_default=True,
)


@click.command("run", help="Deploy the version a stage tag assigns, then smoke-test it.")
@click.option("--ref", required=True, help="the stage tag, e.g. <project>#prod#3")
@repository_option
@url_option
@values_option
def run(ref: str, repository: str, url: str | None, values_file: Path) -> int:
    with gha.annotated("mlops deploy run"):
        project = project_name()
        values = load_values(values_file)
        assignment = resolve(ref, project)
        gha.set_output("version", assignment.version)
        gha.set_output("stage", assignment.stage)
        print(f"{assignment.tag}: deploy {assignment.version} to {assignment.stage}")
        deployed = deploy_version(
            project, assignment.version, assignment.stage, repository, values, url
        )
    append_summary([f"## Deploy {assignment.tag}", "", *TABLE_HEAD, *describe(deployed)])
    if deployed.smoke.passed:
        return 0
    gha.annotate(
        "error",
        f"{assignment.version} was deployed to {assignment.stage} but fails its smoke test: "
        + "; ".join(deployed.smoke.problems)
        + ". The previous version is re-assigned and re-deployed next.",
        title=TITLE,
    )
    return 1


@click.command(
    "revert",
    help="After a failed deploy: assign the stage's previous version again and deploy it.",
)
@click.option("--ref", required=True, help="the stage tag whose deploy failed")
@click.option("--push", is_flag=True, help="push the new stage tag to origin")
@repository_option
@url_option
@values_option
def revert(ref: str, push: bool, repository: str, url: str | None, values_file: Path) -> int:
    with gha.annotated("mlops deploy revert"):
        project = project_name()
        values = load_values(values_file)
        failed = resolve(ref, project)
        registry = Registry(project)
        current = registry.current(failed.stage)
        if current is None or current.tag != failed.tag:
            raise UserError(
                f"{failed.tag} is no longer the newest {failed.stage} assignment "
                f"({current.tag if current else 'none'} is): not rolling back over it",
                "see `mlops registry`; roll back by hand with `mlops rollback --to vX.Y.Z`",
            )
        done = registry.rollback(failed.stage)
        if push:
            push_tag(done.tag)
        gha.set_output("tag", done.tag)
        gha.set_output("version", done.version)
        gha.annotate(
            "error",
            f"rolled back {failed.stage} from {failed.version} to {done.version} ({done.tag}): "
            f"{failed.version} failed after its deploy",
            title="Rolled back",
        )
        deployed = deploy_version(project, done.version, failed.stage, repository, values, url)
    append_summary(
        [
            f"## Rolled back: {failed.tag} failed, {done.tag} re-deploys {done.version}",
            "",
            *TABLE_HEAD,
            *describe(deployed),
        ]
    )
    if deployed.smoke.passed:
        print(f"{failed.stage} runs {done.version} again")
        return 0
    gha.annotate(
        "error",
        f"the previous version {done.version} fails its smoke test too: "
        + "; ".join(deployed.smoke.problems),
        title="Rollback failed",
    )
    return 1


@click.command(
    "kubeconfig",
    help="Write the cluster credentials of the job's environment to a private kubeconfig file "
    "(secret KUBE_CONFIG, or OIDC to AWS with EKS_CLUSTER and DEPLOY_ROLE_ARN) and export "
    "KUBECONFIG.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="kubeconfig file (default: $RUNNER_TEMP/kubeconfig, else build/deploy/kubeconfig)",
)
@gha.annotated("mlops deploy kubeconfig")
def kubeconfig(out: Path | None) -> None:
    from mlops_template.ci.remote import configure_aws, write_token

    folder = Path(os.environ.get("RUNNER_TEMP") or paths.DEPLOY_DIR)
    target = out or folder / "kubeconfig"
    text = os.environ.get("KUBE_CONFIG", "")
    cluster = os.environ.get("EKS_CLUSTER", "")
    role = os.environ.get("DEPLOY_ROLE_ARN", "")
    if text.strip():
        write_token(target, text)
        print(f"kubeconfig from the environment secret KUBE_CONFIG: {target}")
    elif cluster and role:
        configure_aws(folder / "aws-web-identity-token", role)
        done = subprocess.run(
            ["aws", "eks", "update-kubeconfig", "--name", cluster, "--kubeconfig", str(target)],
            check=False,
        )
        if done.returncode != 0:
            raise UserError(
                f"`aws eks update-kubeconfig --name {cluster}` failed",
                "check the role in DEPLOY_ROLE_ARN: it must trust this repository's environment "
                "and may describe the cluster (and be mapped to a Kubernetes user)",
            )
        os.chmod(target, 0o600)
        print(f"kubeconfig for EKS cluster {cluster} via OIDC, role {role}: {target}")
    else:
        raise UserError(
            "no Kubernetes credentials in this environment",
            "set the environment secret KUBE_CONFIG (a kubeconfig of a deploy service account), "
            "or the environment variables EKS_CLUSTER and DEPLOY_ROLE_ARN for OIDC "
            "(README: Running it in production)",
        )
    gha.add_env("KUBECONFIG", str(target))
