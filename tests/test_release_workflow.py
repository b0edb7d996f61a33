"""release.yml read as a file: least privilege per job, no caches, one run per tag, and tag
filters that agree with the tag parser. (tests/test_act_release.py runs it.)"""

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
    assert jobs["publish"]["needs"] == "build"
    assert set(jobs["image"]["needs"]) == {"build", "publish"}  # no image without a release
    text = WORKFLOW.read_text()
    assert "secrets." not in text  # the job token only, through env/with


def test_no_cache_is_restored_and_one_run_per_tag(workflow: dict[str, Any]) -> None:
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    setups = [s for s in steps if s.get("uses") == "./actions/setup"]
    assert len(setups) == 2 and all(s["with"]["cache"] == "false" for s in setups)
    assert not any("actions/cache" in str(s.get("uses", "")) for s in steps)
    assert "${{ github.ref }}" in workflow["concurrency"]["group"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
