"""The real deploy workflow, run by act on a throwaway fork of the template: promotion, a manual
rollback and an automatic one, each asserting exactly what kubectl was asked to apply and which
GTO tags the repository holds afterwards.

The fork has three GTO releases (`<project>@v1.0.0`, `v2.0.0`, `v3.0.0`) and a bare `origin`
(GitHub's git server, here a real one on disk) that the workflow pushes its tags to.
(1) `gto assign ... --version v1.0.0 --stage prod`, tag pushed: v1.0.0 is verified, rendered,
    applied and smoke-tested.
(2) v2.0.0 promoted the same way.
(3) workflow_dispatch with no version: the workflow assigns the previous prod version (v1.0.0,
    a forced GTO tag), pushes the tag and deploys it.
(4) v3.0.0 promoted, but its release says it holds another model than the endpoint serves, so
    the smoke test fails: the rollback job assigns v1.0.0 again, pushes that tag and re-deploys.

Stand-ins for what cannot exist here, recording what they were sent: `gh` (the GitHub Release's
files, seeded as the release workflow publishes them, and the attestations), `kubectl` (no
cluster), docker/login-action. The deployed endpoint is a real BentoML server on 127.0.0.1
serving a real packaged model (the vars.DEPLOY_URL the smoke test calls); the stand-in cluster
always runs that model, which is what v1 and v2 release, and v3 claims another.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from act_harness import REPO_SLUG, STUB_ACTIONS, ActRun, clean_env, event_payload, run_workflow
from deploy_fixtures import attest, git, image_digest, write_release
from helpers_serving import DevServer, packaged_project, post
from project import copy_project

from mlops_template.deploy.manifests import Target, load_values, render

pytestmark = pytest.mark.slow

VERSIONS = ("v1.0.0", "v2.0.0", "v3.0.0")
OTHER_MODEL = "another-model:0000"  # what v3.0.0's release claims to hold
KUBECONFIG_SECRET = "apiVersion: v1 # a stand-in: kubectl is the stub"
STUBS = {"docker/login-action": STUB_ACTIONS / "docker-login"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act-deploy")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(url, model tag) of a real served model on 127.0.0.1."""

    project = packaged_project(tmp_path_factory, "deploy-endpoint")
    server = DevServer(project)
    try:
        server.wait_ready()
        status, metadata = post(f"{server.url}/metadata", {})
        assert status == 200, metadata
        yield server.url, metadata["tag"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fork(work: Path) -> dict[str, Any]:
    """The fork (its working clone checked out by each run) and its bare origin."""
    repo = copy_project(work / "fork")
    project = yaml.safe_load((repo / "params.yaml").read_text())["project"]["name"]
    for version in VERSIONS:
        git(repo, "commit", "-q", "--allow-empty", "-m", f"work released as {version}")
        git(repo, "tag", "-a", f"{project}@{version}", "-m", f"Release {version}")
    git(work, "init", "-q", "--bare", "origin.git")
    git(repo, "remote", "add", "origin", f"https://github.com/{REPO_SLUG}.git")
    fork = {"repo": repo, "origin": work / "origin.git", "project": project}
    git(repo, "push", "-q", "origin", "main", "--tags", env=to_origin(fork))
    return fork


def to_origin(fork: dict[str, Any]) -> dict[str, str]:
    """act names the repository after origin's URL (acme/digits); git, in the test and in the
    workflow's steps, goes to the bare repository instead (a rewrite in the environment, which
    act's own reading of .git/config does not see)."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{fork['origin']}.insteadOf",
        "GIT_CONFIG_VALUE_0": f"https://github.com/{REPO_SLUG}.git",
    }


@pytest.fixture(scope="module")
def seed(work: Path, fork: dict[str, Any], endpoint: Any) -> Path:
    """The GitHub Releases and what GitHub holds attestations for."""
    project, (_, served_tag) = fork["project"], endpoint
    folder = work / "seed"
    releases = [
        write_release(folder / "releases", project, v, OTHER_MODEL if v == "v3.0.0" else served_tag)
        for v in VERSIONS
    ]
    attest(folder, releases, {f"{image(fork)}:{v}": image_digest(image(fork), v) for v in VERSIONS})
    return folder


def image(fork: dict[str, Any]) -> str:
    return f"ghcr.io/acme/digits/{fork['project']}"


def gto(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gto"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def promote(fork: dict[str, Any], version: str) -> str:
    """What a maintainer does: `gto assign`, push the tag; act then runs on that tag's commit."""
    repo = fork["repo"]
    git(repo, "fetch", "-q", "origin", "--tags", env=to_origin(fork))  # tags runs pushed
    gto(repo, "assign", fork["project"], "--version", version, "--stage", "prod")
    tag = max(stage_tags(repo), key=lambda t: int(t.rsplit("#", 1)[1]))
    git(repo, "push", "-q", "origin", tag, env=to_origin(fork))
    git(repo, "checkout", "-q", tag)
    return tag


def stage_tags(repo: Path) -> list[str]:
    found = git(repo, "tag", "--list", "*#prod#*").split()
    return sorted(found, key=lambda t: int(t.rsplit("#", 1)[1]))


def same_commit(repo: Path, tag: str, other: str) -> bool:
    return git(repo, "rev-parse", f"{tag}^{{commit}}") == git(
        repo, "rev-parse", f"{other}^{{commit}}"
    )


def deploy(fork, seed, endpoint, work: Path, event: str, payload: dict[str, Any]) -> ActRun:
    return run_workflow(
        fork["repo"],
        "deploy.yml",
        event,
        payload,
        work,
        stubs=STUBS,
        seed=seed,
        variables={"DEPLOY_URL": endpoint[0]},
        secrets={"KUBE_CONFIG": KUBECONFIG_SECRET},
        env=to_origin(fork),
    )


def tag_push(fork, seed, endpoint, work: Path, version: str) -> tuple[ActRun, str]:
    tag = promote(fork, version)
    sha = git(fork["repo"], "rev-parse", "HEAD")
    payload = event_payload("push_tag", ref=f"refs/tags/{tag}", sha=sha)
    return deploy(fork, seed, endpoint, work, "push", payload), tag


def expected_manifests(fork: dict[str, Any], version: str, model_tag: str) -> dict[str, str]:
    repo = fork["repo"]
    target = Target(
        fork["project"],
        version,
        "prod",
        f"{image(fork)}@{image_digest(image(fork), version)}",
        model_tag,
    )
    return render(target, load_values(repo / "deploy/values.yaml"), repo / "deploy/templates")


def applied(run: ActRun) -> list[dict[str, str]]:
    return [call["files"] for call in run.calls_of("kubectl") if call["argv"][0] == "apply"]


def rollouts(run: ActRun) -> list[list[str]]:
    return [call["argv"] for call in run.calls_of("kubectl") if call["argv"][0] == "rollout"]


ROLLOUT = [
    "rollout", "status", "deployment/model-service", "--namespace", "model-prod",
    "--timeout=600s",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(fork, seed, endpoint, work: Path) -> dict[str, Any]:
    """The four scenarios, in order (each starts from what the one before left)."""
    out: dict[str, Any] = {}
    out["v1"] = tag_push(fork, seed, endpoint, work / "run-1", "v1.0.0")
    out["v1-tags"] = stage_tags(fork["origin"])
    out["v2"] = tag_push(fork, seed, endpoint, work / "run-2", "v2.0.0")
    out["v2-tags"] = stage_tags(fork["origin"])
    git(fork["repo"], "checkout", "-q", "main")
    payload = event_payload("deploy_dispatch", version="")
    out["rollback"] = deploy(fork, seed, endpoint, work / "run-3", "workflow_dispatch", payload)
    out["rollback-tags"] = stage_tags(fork["origin"])
    out["v3"] = tag_push(fork, seed, endpoint, work / "run-4", "v3.0.0")
    out["v3-tags"] = stage_tags(fork["origin"])
    return out


def test_1_promoting_v1_deploys_exactly_its_manifests(runs, fork, endpoint) -> None:
    run, tag = runs["v1"]
    assert run.returncode == 0, run.log[-8000:]
    assert tag == f"{fork['project']}#prod#1"
    assert applied(run) == [expected_manifests(fork, "v1.0.0", endpoint[1])]
    assert rollouts(run) == [ROLLOUT]
    assert all(c["kubeconfig"].endswith("/kubeconfig") for c in run.calls_of("kubectl"))
    assert f"smoke test passed: {endpoint[0]} serves {endpoint[1]}" in run.log
    assert runs["v1-tags"] == [tag]  # nothing but the maintainer's tag
    verified = [
        c["argv"][2] for c in run.calls_of("gh") if c["argv"][:2] == ["attestation", "verify"]
    ]
    assert verified[-1] == f"oci://{image(fork)}:v1.0.0"
    assert len(verified) == 5  # SHA256SUMS, the bento, the card, the verdict; the image
    assert not run.step_succeeded("Assign the previous version again")


def test_2_promoting_v2_deploys_v2(runs, fork, endpoint) -> None:
    run, tag = runs["v2"]
    assert run.returncode == 0, run.log[-8000:]
    assert tag == f"{fork['project']}#prod#2"
    assert applied(run) == [expected_manifests(fork, "v2.0.0", endpoint[1])]
    assert rollouts(run) == [ROLLOUT]
    assert runs["v2-tags"] == [f"{fork['project']}#prod#1", tag]


def test_3_a_manual_rollback_assigns_and_deploys_the_previous_version(runs, fork, endpoint) -> None:
    run = runs["rollback"]
    assert run.returncode == 0, run.log[-8000:]
    new = f"{fork['project']}#prod#3"
    assert runs["rollback-tags"] == [*runs["v2-tags"], new]  # pushed to origin
    assert same_commit(fork["origin"], new, f"{fork['project']}@v1.0.0")
    assert "prod: v2.0.0 -> v1.0.0" in run.log
    assert applied(run) == [expected_manifests(fork, "v1.0.0", endpoint[1])]
    assert rollouts(run) == [ROLLOUT]


def test_4_a_failing_smoke_test_rolls_back_by_itself(runs, fork, endpoint) -> None:
    run, tag = runs["v3"]
    assert run.returncode != 0  # the deploy failed, and the run shows it
    assert tag == f"{fork['project']}#prod#4"
    assert run.step_failed("Deploy the assigned version and smoke-test it"), run.log[-8000:]
    assert f"/metadata names model {endpoint[1]}, but the release holds {OTHER_MODEL}" in run.log
    rollback = f"{fork['project']}#prod#5"
    assert runs["v3-tags"] == [*runs["rollback-tags"], tag, rollback]
    assert same_commit(fork["origin"], rollback, f"{fork['project']}@v1.0.0")
    assert (
        f"::error title=Rolled back::rolled back prod from v3.0.0 to v1.0.0 ({rollback})" in run.log
    )
    assert run.step_succeeded("Assign the previous version again, deploy and smoke-test it")
    assert applied(run) == [
        expected_manifests(fork, "v3.0.0", OTHER_MODEL),
        expected_manifests(fork, "v1.0.0", endpoint[1]),
    ]
    assert rollouts(run) == [ROLLOUT, ROLLOUT]
    pushes = [c for c in run.calls_of("gh") if c["argv"][:2] == ["release", "download"]]
    assert [c["argv"][2] for c in pushes] == [
        f"{fork['project']}@v3.0.0",
        f"{fork['project']}@v1.0.0",
    ]
