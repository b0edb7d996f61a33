"""`mlops release tag`: tag parsing (plain and GTO), the previous release by version order,
the image name, and the git checks (tag checked out, on main), in real temporary git repos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.release.tags import (
    check_project,
    check_release,
    image_name,
    parse_tag,
    previous_release,
    try_parse,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("tag", "version", "name", "numbers"),
    [
        ("v1.2.3", "v1.2.3", None, (1, 2, 3)),
        ("refs/tags/v0.0.1", "v0.0.1", None, (0, 0, 1)),
        ("v10.20.30", "v10.20.30", None, (10, 20, 30)),
        ("wine@v2.0.0", "v2.0.0", "wine", (2, 0, 0)),
        ("churn-model@v1.0.10", "v1.0.10", "churn-model", (1, 0, 10)),
        ("wine_2.red@v1.0.0", "v1.0.0", "wine_2.red", (1, 0, 0)),  # any valid project.name
    ],
)
def test_release_tags_parse(tag: str, version: str, name: str | None, numbers: tuple) -> None:
    parsed = parse_tag(tag)
    assert (parsed.version, parsed.name, parsed.numbers) == (version, name, numbers)
    assert parsed.tag == tag.removeprefix("refs/tags/")


@pytest.mark.parametrize(
    "tag",
    [
        "1.2.3",  # no v
        "v1.2",
        "v01.2.3",  # leading zero
        "v1.2.3-rc.1",  # pre-releases are not release tags
        "V1.2.3",
        "Wine@v1.0.0",  # image names are lowercase
        "@v1.0.0",
        "a@b@v1.0.0",
        "wine..red@v1.0.0",  # not an image path component
        "-wine@v1.0.0",
        "wine#production#1",  # a GTO stage assignment, not a version
        "wine@deprecated",
        "",
    ],
)
def test_other_tags_are_not_releases(tag: str) -> None:
    assert try_parse(tag) is None
    with pytest.raises(UserError) as caught:
        parse_tag(tag)
    assert "is not a release tag" in caught.value.message
    assert "v1.2.0" in caught.value.hint and "@v1.2.0" in caught.value.hint


def test_previous_release_is_the_highest_lower_version_not_the_last_in_text_order() -> None:
    tags = ["v1.9.0", "v1.10.0", "v1.2.0", "v2.0.0", "v1.10.1", "notes", "v0.1.0-rc.1"]
    assert previous_release(parse_tag("v1.11.0"), tags) == parse_tag("v1.10.1")
    assert previous_release(parse_tag("v1.10.0"), tags) == parse_tag("v1.9.0")
    assert previous_release(parse_tag("v1.2.0"), tags) is None  # the first release
    assert previous_release(parse_tag("v1.2.0"), ["v1.2.0"]) is None  # itself is not previous


def test_previous_release_keeps_to_the_same_style_and_gto_name() -> None:
    tags = ["v1.0.0", "wine@v1.1.0", "wine@v0.9.0", "churn@v1.2.0", "v1.1.5"]
    assert previous_release(parse_tag("wine@v2.0.0"), tags) == parse_tag("wine@v1.1.0")
    assert previous_release(parse_tag("churn@v1.2.1"), tags) == parse_tag("churn@v1.2.0")
    assert previous_release(parse_tag("v2.0.0"), tags) == parse_tag("v1.1.5")
    assert previous_release(parse_tag("other@v1.0.0"), tags) is None


def test_image_name_is_lowercase_and_gto_releases_get_their_own() -> None:
    assert image_name("Acme/Wine", parse_tag("v1.0.0")) == "ghcr.io/acme/wine"
    assert image_name("acme/wine", parse_tag("churn@v1.0.0")) == "ghcr.io/acme/wine/churn"
    for bad in ("", "acme", "acme/", "/wine", "acme/wine/extra"):
        with pytest.raises(UserError, match="is not OWNER/REPO"):
            image_name(bad, parse_tag("v1.0.0"))


# --------------------------------------------------------------------------- git


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    (repo / "history.txt").write_text((repo / "history.txt").read_text() + message + "\n")
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone as actions/checkout makes it with fetch-depth 0: origin/main and all tags.

    upstream main: A (v1.0.0) - B (v1.10.0) - C; branch `feature`: D (tagged v9.0.0) on B.
    """
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    (upstream / "history.txt").write_text("")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "A")
    git(upstream, "tag", "v1.0.0")
    commit(upstream, "B")
    git(upstream, "tag", "-a", "v1.10.0", "-m", "annotated")
    commit(upstream, "C")
    git(upstream, "checkout", "-q", "-b", "feature", "HEAD~1")
    commit(upstream, "D")
    git(upstream, "tag", "v9.0.0")
    git(upstream, "checkout", "-q", "main")
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(repo))
    monkeypatch.chdir(repo)
    return repo


def test_a_tag_on_main_passes_and_finds_the_previous_release(clone: Path) -> None:
    git(clone, "tag", "v1.11.0", "origin/main")
    git(clone, "checkout", "-q", "v1.11.0")
    checked = check_release("v1.11.0", "acme/wine")
    assert checked.commit == git(clone, "rev-parse", "origin/main")
    assert checked.previous == parse_tag("v1.10.0")  # v9.0.0 is not reachable (a branch)
    assert checked.image == "ghcr.io/acme/wine"


def test_an_older_commit_of_main_may_be_tagged(clone: Path) -> None:
    git(clone, "tag", "v1.0.1", "origin/main~2")  # a patch release of A
    git(clone, "checkout", "-q", "v1.0.1")
    checked = check_release("v1.0.1", "acme/wine")
    assert checked.previous == parse_tag("v1.0.0")


def test_a_tag_off_main_is_refused(clone: Path) -> None:
    git(clone, "checkout", "-q", "v9.0.0")
    with pytest.raises(UserError) as caught:
        check_release("v9.0.0", "acme/wine")
    assert "is not on main: only merged code is released" in caught.value.message
    assert "merge it into main first" in caught.value.hint


def test_the_checked_out_commit_must_be_the_tagged_one(clone: Path) -> None:
    git(clone, "checkout", "-q", "origin/main")
    with pytest.raises(UserError, match=r"HEAD \(\w+\) is not the commit tagged v1\.0\.0"):
        check_release("v1.0.0", "acme/wine")
    with pytest.raises(UserError, match=r"tag v3\.0\.0 is not in this clone"):
        check_release("v3.0.0", "acme/wine")


def test_a_shallow_checkout_without_the_branch_says_how_to_fetch_it(clone: Path) -> None:
    git(clone, "checkout", "-q", "v1.0.0")
    git(clone, "update-ref", "-d", "refs/remotes/origin/main")
    with pytest.raises(UserError) as caught:
        check_release("v1.0.0", "acme/wine")
    assert "origin/main is not in this clone" in caught.value.message
    assert "fetch-depth: 0" in caught.value.hint
    assert check_release("v1.0.0", "acme/wine", branch="feature").previous is None


def test_the_cli_writes_the_step_outputs(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    git(clone, "tag", "wine@v0.2.0", "origin/main~1")
    git(clone, "tag", "Wine@v0.3.0", "origin/main")  # not a release tag: ignored
    git(clone, "tag", "wine@v0.3.0", "origin/main")
    git(clone, "checkout", "-q", "wine@v0.3.0")
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_REPOSITORY", "Acme/Wine")
    monkeypatch.setenv("GITHUB_REF_NAME", "wine@v0.3.0")
    # an empty branch means main
    assert main(["release", "tag", "--branch", "", "--project", "wine"]) == 0
    assert "previous release: wine@v0.2.0" in capsys.readouterr().out
    text = outputs.read_text()
    for line in (
        "wine@v0.3.0",
        "v0.3.0",
        "wine@v0.2.0",
        "ghcr.io/acme/wine/wine",
        git(clone, "rev-parse", "HEAD"),
    ):
        assert f"\n{line}\n" in text
    assert "previous-tag<<" in text and "image<<" in text and "commit<<" in text


def test_the_cli_refuses_a_bad_tag_with_one_message_and_an_annotation(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/wine")
    assert main(["release", "tag", "release-1", "--project", "wine"]) == 2
    captured = capsys.readouterr()
    assert "::error title=mlops release tag::'release-1' is not a release tag" in captured.out
    assert captured.err.startswith("error: 'release-1' is not a release tag\nfix: tag the")
    assert "Traceback" not in captured.err


# --------------------------------------------------------------------------- the project's name


def test_a_gto_tag_must_name_the_project() -> None:
    check_project(parse_tag("v1.0.0"), "wine")  # a plain tag is any project's
    check_project(parse_tag("wine@v1.0.0"), "wine")
    with pytest.raises(UserError) as caught:
        check_project(parse_tag("churn@v1.0.0"), "wine")
    assert caught.value.message == (
        "tag churn@v1.0.0 names 'churn', but this project is 'wine' (params.yaml project.name)"
    )
    assert caught.value.hint == "tag the release as v1.0.0 or wine@v1.0.0"


def test_the_cli_takes_the_project_name_from_params(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Without --project, `project.name` in params.yaml is the only name a tag may carry."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["project"]["name"] = "wine"
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    git(clone, "tag", "wine@v2.0.0", "origin/main")
    git(clone, "tag", "churn@v2.0.0", "origin/main")
    git(clone, "checkout", "-q", "wine@v2.0.0")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/wine")
    assert main(["release", "tag", "wine@v2.0.0"]) == 0
    assert "image: ghcr.io/acme/wine/wine:v2.0.0" in capsys.readouterr().out
    assert main(["release", "tag", "churn@v2.0.0"]) == 2
    err = capsys.readouterr().err
    assert "error: tag churn@v2.0.0 names 'churn', but this project is 'wine'" in err
    assert "Traceback" not in err
