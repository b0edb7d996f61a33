"""release.yml read as a file: least privilege per job, no caches, one run per tag, tag filters
that agree with the tag parser, the on-main check before any project code, a reviewed `release`
environment for everything that publishes. (tests/test_act_release.py runs it.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_template.release.tags import try_parse

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "release.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as True
    return data


def filter_regex(pattern: str) -> re.Pattern[str]:
    """A GitHub Actions ref filter as a regex: `*` any run of non-`/`, `+` one or more of the
    preceding character or class, `[...]` a class; everything else literal."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        elif char == "*":
            out += "[^/]*"
        elif char == "+":
            out += "+"
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def test_it_runs_on_release_tags_only_and_the_filters_agree_with_the_parser(
    workflow: dict[str, Any],
) -> None:
    assert list(workflow["on"]) == ["push"]
    assert set(workflow["on"]["push"]) == {"tags"}
    filters = [filter_regex(p) for p in workflow["on"]["push"]["tags"]]
    for tag in (
        "v1.2.3",
        "v10.0.11",
        "wine@v1.0.0",
        "churn-model@v2.3.4",
        "v1.2",
        "1.2.3",
        "v1.2.3-rc.1",
        "v1.2.3.4",
        "wine#prod#1",
        "wine@deprecated",
    ):
        triggers = any(f.match(tag) for f in filters)
        assert triggers == (try_parse(tag) is not None), tag


def test_each_job_gets_only_the_permissions_it_uses(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["publish"]["permissions"] == {
        "contents": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert jobs["image"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert jobs["image"]["needs"] == "build"
    assert set(jobs["publish"]["needs"]) == {"build", "image"}  # the release comes last
    text = WORKFLOW.read_text()
    assert "secrets." not in text  # the job token only, through env/with


def test_no_cache_is_restored_and_one_run_per_tag(workflow: dict[str, Any]) -> None:
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    setups = [s for s in steps if s.get("uses") == "./actions/setup"]
    assert len(setups) == 2 and all(s["with"]["cache"] == "false" for s in setups)
    assert not any("actions/cache" in str(s.get("uses", "")) for s in steps)
    assert "${{ github.ref }}" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_publishing_jobs_wait_for_the_release_environment(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert "environment" not in jobs["build"]  # building needs no approval, shipping does
    for name in ("publish", "image"):
        assert jobs[name]["environment"] == "release", name


def test_the_on_main_check_is_plain_git_before_any_project_code(
    workflow: dict[str, Any],
) -> None:
    steps = workflow["jobs"]["build"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"]["fetch-depth"] == 0
    check = steps[1]
    assert "uses" not in check
    script = check["run"]
    for project_code in ("mlops", "python", "uv ", "dvc ", "./", "make"):
        assert project_code not in script, project_code
    assert "git merge-base --is-ancestor" in script
    assert "refs/tags/${GITHUB_REF_NAME}^{commit}" in script  # the tag names HEAD
    assert steps[2]["uses"] == "./actions/setup"  # the tagged commit's own code starts here


def test_a_version_is_checked_unpublished_before_building_and_before_pushing(
    workflow: dict[str, Any],
) -> None:
    build = [s.get("run", "") for s in workflow["jobs"]["build"]["steps"]]
    release_check = next(i for i, r in enumerate(build) if "unpublished --release" in r)
    repro = next(
        i
        for i, s in enumerate(workflow["jobs"]["build"]["steps"])
        if s.get("uses") == "./actions/repro"
    )
    assert release_check < repro  # fail before half an hour of training
    image = [s.get("run", "") for s in workflow["jobs"]["image"]["steps"]]
    image_check = next(i for i, r in enumerate(image) if "unpublished --image" in r)
    push = next(i for i, r in enumerate(image) if "mlops release image" in r)
    assert image_check < push and "--push" in image[push]


def test_the_release_packages_afresh_and_verifies_pulled_objects(workflow: dict[str, Any]) -> None:
    runs = [s.get("run", "") for s in workflow["jobs"]["build"]["steps"]]
    assert "dvc repro --force --single-item package" in runs
    verify = runs.index("mlops release verify-pulls")
    repro = next(
        i
        for i, s in enumerate(workflow["jobs"]["build"]["steps"])
        if s.get("uses") == "./actions/repro"
    )
    assert verify < repro


def test_the_release_pulls_with_a_read_only_role_of_its_own(workflow: dict[str, Any]) -> None:
    steps = workflow["jobs"]["build"]["steps"]
    credentials = next(s for s in steps if s.get("run") == "mlops ci credentials")
    assert credentials["env"] == {"AWS_ROLE_ARN": "${{ vars.AWS_RELEASE_ROLE_ARN }}"}
    assert "vars.AWS_ROLE_ARN" not in WORKFLOW.read_text()  # main's read/write role


def test_the_bento_is_built_on_a_pinned_base_from_signed_model_files(
    workflow: dict[str, Any],
) -> None:
    steps = workflow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    pin = next(i for i, r in enumerate(runs) if r.startswith("mlops release pin-base"))
    sign = next(i for i, r in enumerate(runs) if r.startswith("mlops release sign"))
    build = next(i for i, r in enumerate(runs) if r.startswith("mlops release build"))
    smoke = next(i for i, r in enumerate(runs) if r.startswith("mlops release smoke"))
    recorded = runs.index("mlops release recorded")
    assert recorded < pin < build and recorded < sign < build < smoke
    pinned = runs[pin].split("--out ")[1].split()[0]
    assert f"--bentofile {pinned}" in runs[build]  # the bento records the resolved digest
    assert "--key" not in runs[sign]  # keyless on GitHub: Sigstore and this job's OIDC token
    assert "dist/model.sig" in runs[sign]  # shipped with the release files
    checksums = runs.index("mlops release checksums dist")
    assert sign < checksums  # SHA256SUMS and the attestation cover the signature too
    setup = next(s for s in steps if s.get("uses") == "./actions/setup")
    assert "signing" in setup["with"]["extras"].split()
    # Only the job that signs (and pulls with the release role) holds an OIDC token without
    # attesting; the image job's token is for its attestation.
    holders = {n for n, j in workflow["jobs"].items() if j["permissions"].get("id-token")}
    attesting = {n for n, j in workflow["jobs"].items() if j["permissions"].get("attestations")}
    assert holders - attesting == {"build"}
