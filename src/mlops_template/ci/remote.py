"""`mlops ci credentials` and `mlops ci push`: the main workflow's DVC remote, without stored keys.

No remote configured: both say so with a notice and do nothing (the template works without one:
CI caches the DVC store, and the example data rebuilds itself).

An S3 remote with the repository variable AWS_ROLE_ARN: GitHub's OIDC token (the job needs
`id-token: write`) is written to a private file and AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN
point boto (under dvc-s3) at it; boto exchanges it for short-lived credentials with STS's
AssumeRoleWithWebIdentity on its own. No long-lived cloud key is stored anywhere. Any other
remote uses whatever credentials the workflow provides in its environment.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import click

from mlops_template.ci import gha
from mlops_template.ci.repro import run_streaming
from mlops_template.errors import UserError, run_checked
from mlops_template.paths import CI_DIR

AUDIENCE = "sts.amazonaws.com"
TOKEN_FILE_NAME = "aws-web-identity-token"
NO_REMOTE = (
    "No DVC remote configured: data, models and the run-cache stay in the CI cache only. "
    "To share them, add one (`dvc remote add -d storage s3://bucket/path`, commit .dvc/config) "
    "and set the repository variable AWS_ROLE_ARN to a role this repository may assume via OIDC."
)


def default_remote() -> tuple[str, str] | None:
    """(name, url) of the default DVC remote (else the only one), or None.

    Read from `dvc config --list` (one `key=value` per line): `dvc remote list` is a table
    that wraps long URLs over several lines."""
    # A failure is not "no remote": a release would then skip verification.
    listed = run_checked(
        ["dvc", "config", "--list"],
        "check .dvc/config (`dvc remote list`) and that this is the project's DVC repository",
    )
    remotes: dict[str, str] = {}
    name = ""
    for line in listed.stdout.splitlines():
        key, _, value = line.strip().partition("=")
        if key.startswith("remote.") and key.endswith(".url"):
            remotes[key[len("remote.") : -len(".url")]] = value
        elif key == "core.remote":
            name = value
    if not remotes:
        return None
    if name in remotes:
        return name, remotes[name]
    if len(remotes) == 1:
        return next(iter(remotes.items()))
    raise UserError(
        f"DVC has {len(remotes)} remotes ({', '.join(sorted(remotes))}) and none is the default"
        + (f" ({name!r} is not one of them)" if name else ""),
        "choose one: `dvc remote default NAME` (and commit .dvc/config)",
    )


def request_oidc_token(audience: str = AUDIENCE) -> str:
    """The job's OIDC token (JWT) for `audience`, from the Actions runtime."""
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise UserError(
            "no OIDC token available in this job",
            "give the job `permissions: id-token: write` (only the job that talks to the cloud)",
        )
    sep = "&" if "?" in url else "?"
    request = urllib.request.Request(
        f"{url}{sep}audience={urllib.parse.quote(audience, safe='')}",
        headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read().decode("utf-8")).get("value")
    except (OSError, ValueError) as exc:
        raise UserError(f"could not get the OIDC token: {exc}", "rerun the job") from None
    if not isinstance(token, str) or not token:
        raise UserError("the OIDC token answer holds no token", "rerun the job")
    return token


def write_token(path: Path, token: str) -> None:
    """Write the token readable by this user only (it is a credential for a few minutes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.chmod(path, 0o600)


def configure_aws(token_file: Path, role_arn: str) -> None:
    write_token(token_file, request_oidc_token())
    gha.add_env("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    gha.add_env("AWS_ROLE_ARN", role_arn)
    gha.add_env("AWS_ROLE_SESSION_NAME", f"github-{os.environ.get('GITHUB_RUN_ID', 'local')}")


@click.command("credentials", help=__doc__)
@click.option(
    "--token-dir",
    default=str(CI_DIR),
    show_default=True,
    help="where the OIDC token file goes when $RUNNER_TEMP is unset",
)
@gha.annotated("mlops ci credentials")
def credentials(token_dir: str) -> None:
    remote = default_remote()
    if remote is None:
        gha.annotate("notice", NO_REMOTE, title="DVC remote")
        gha.set_output("remote", "false")
        return
    name, url = remote
    gha.set_output("remote", "true")
    role = os.environ.get("AWS_ROLE_ARN", "")
    if url.startswith("s3://") and role:
        configure_aws(Path(os.environ.get("RUNNER_TEMP") or token_dir) / TOKEN_FILE_NAME, role)
        print(f"DVC remote '{name}' ({url}): AWS credentials via OIDC, role {role}")
    elif url.startswith("s3://"):
        gha.annotate(
            "notice",
            f"DVC remote '{name}' is on S3 but the repository variable AWS_ROLE_ARN is not set: "
            "using whatever AWS credentials the environment has",
            title="DVC remote",
        )
    else:
        print(f"DVC remote '{name}' ({url}): using the credentials in the environment")


@click.command("push", help="dvc push --run-cache, or a notice when no remote.")
@gha.annotated("mlops ci push")
def push() -> None:
    remote = default_remote()
    if remote is None:
        gha.annotate("notice", f"Skipping dvc push. {NO_REMOTE}", title="DVC remote")
        return
    token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    if token_file and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        write_token(Path(token_file), request_oidc_token())  # fresh: tokens last minutes
    status, _ = run_streaming(["dvc", "push", "--run-cache"])
    if status != 0:
        raise UserError(
            f"`dvc push --run-cache` to '{remote[0]}' failed (exit status {status})",
            "check the remote's credentials: the role in AWS_ROLE_ARN must trust this "
            "repository's OIDC subject and may write to the bucket",
        )
