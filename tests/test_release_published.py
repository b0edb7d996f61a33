"""`mlops release unpublished`: a version whose GitHub Release or image tag exists is refused,
and an unanswered question refuses too. `gh` and `docker` are the act stand-ins
(tests/act/bin, which answer from a folder as GitHub and the registry would), run as
subprocesses by the real command."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from act_harness import STUB_BIN, STUB_SCRIPT

from mlops_template.cli import main

IMAGE = "ghcr.io/acme/digits:v1.0.0"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def unpublished(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`mlops release unpublished ARGS` (in this process) with the stand-ins first on PATH."""

    def run(stubs: Path, *args: str, **env: str) -> Done:
        monkeypatch.setenv("PATH", f"{STUB_BIN}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("ACT_STUB_DIR", str(stubs))
        monkeypatch.setenv("ACT_STUB_SCRIPT", str(STUB_SCRIPT))
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        for key, value in {"GITHUB_REPOSITORY": "acme/digits", **env}.items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = main(["release", "unpublished", *args])
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


def calls(stubs: Path) -> list[dict]:
    lines = (stubs / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def answer(stubs: Path, path: str, body: dict) -> None:
    (stubs / "gh").mkdir(exist_ok=True)
    (stubs / "gh" / (path.replace("/", "_") + ".json")).write_text(json.dumps(body))


def test_a_new_version_passes_after_asking_github_and_the_registry(
    tmp_path: Path, unpublished
) -> None:
    done = unpublished(tmp_path, "--release", "v1.0.0", "--image", IMAGE)
    assert done.returncode == 0, done.stderr
    assert "release v1.0.0: not published yet in acme/digits" in done.stdout
    assert f"image {IMAGE}: not in the registry yet" in done.stdout
    gh, docker = calls(tmp_path)
    assert gh["argv"] == [
        "release",
        "view",
        "v1.0.0",
        "--repo",
        "acme/digits",
        "--json",
        "tagName,url,isDraft",
    ]
    assert docker["argv"] == ["buildx", "imagetools", "inspect", IMAGE]


def test_an_existing_release_is_refused(tmp_path: Path, unpublished) -> None:
    url = "https://github.com/acme/digits/releases/tag/v1.0.0"
    answer(tmp_path, "repos/acme/digits/releases/tags/v1.0.0", {"tagName": "v1.0.0", "url": url})
    done = unpublished(tmp_path, "--release", "v1.0.0", "--image", IMAGE)
    assert done.returncode == 2
    assert f"acme/digits already has a release v1.0.0 ({url})" in done.stderr
    assert "fix: release a new version" in done.stderr
    assert "Traceback" not in done.stderr
    assert [c["kind"] for c in calls(tmp_path)] == ["gh"]  # stops at the first answer


def test_a_release_of_another_version_does_not_count(tmp_path: Path, unpublished) -> None:
    answer(tmp_path, "repos/acme/digits/releases/tags/v1.0.0", {"tagName": "v1.0.0"})
    done = unpublished(tmp_path, "--release", "v1.0.1")
    assert done.returncode == 0, done.stderr


def test_an_existing_image_tag_is_refused(tmp_path: Path, unpublished) -> None:
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "ghcr.io_acme_digits_v1.0.0").write_text("sha256:" + "a" * 64)
    done = unpublished(tmp_path, "--image", IMAGE)
    assert done.returncode == 2
    assert f"the registry already has {IMAGE}" in done.stderr


def test_the_same_version_under_another_image_name_does_not_count(
    tmp_path: Path, unpublished
) -> None:
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "ghcr.io_acme_digits_v1.0.0").write_text("sha256:" + "a" * 64)
    done = unpublished(tmp_path, "--image", "ghcr.io/acme/digits/wine:v1.0.0")
    assert done.returncode == 0, done.stderr


def test_an_unanswered_question_refuses_too(tmp_path: Path, unpublished) -> None:
    done = unpublished(tmp_path, "--release", "v1.0.0", ACT_STUB_FAIL="gh")
    assert done.returncode == 2
    assert "could not ask GitHub whether release v1.0.0 exists" in done.stderr
    assert "HTTP 401" in done.stderr
    done = unpublished(tmp_path, "--image", IMAGE, ACT_STUB_FAIL="docker")
    assert done.returncode == 2
    assert f"could not ask the registry whether {IMAGE} exists" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to check"),
        (("--release", "v1.0.0", "--repository", ""), "no repository to ask"),
    ],
)
def test_nothing_to_ask_is_a_usage_mistake(
    tmp_path: Path, unpublished, args: tuple, message: str
) -> None:
    done = unpublished(tmp_path, *args, GITHUB_REPOSITORY="")
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "calls.jsonl").exists()
