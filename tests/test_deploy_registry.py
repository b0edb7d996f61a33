"""Promotion and rollback as GTO stage tags, in real git repos (GTO's Python API, as the CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deploy_fixtures import git, registry_repo

from mlops_template.cli import main
from mlops_template.deploy.registry import Registry, push_tag
from mlops_template.deploy.run import resolve
from mlops_template.errors import UserError

PROJECT = "shop"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    repo = registry_repo(root, PROJECT, ["v1.0.0", "v1.1.0", "v2.0.0"])
    git(repo, "tag", "-a", "v9.9.9", "-m", "a plain release tag: not a GTO version")
    git(repo, "tag", "-a", "other@v3.0.0", "-m", "another artifact's release")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the module's repo (and its bare origin): copying beats re-creating."""
    shutil.copytree(template, tmp_path / "copy")
    repo = tmp_path / "copy" / "repo"
    git(repo, "remote", "set-url", "origin", str(tmp_path / "copy" / "origin.git"))
    monkeypatch.chdir(repo)
    for name, value in {
        "GIT_AUTHOR_NAME": "Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    }.items():
        monkeypatch.setenv(name, value)
    return repo


def reg(repo: Path) -> Registry:
    return Registry(PROJECT, repo)


def tags(repo: Path, pattern: str = f"{PROJECT}#*") -> list[str]:
    return git(repo, "tag", "--list", pattern).split()


def test_versions_are_the_projects_gto_release_tags_in_version_order(repo: Path) -> None:
    assert reg(repo).versions() == ["v1.0.0", "v1.1.0", "v2.0.0"]


def test_assign_writes_gtos_numbered_stage_tag_on_the_versions_commit(repo: Path) -> None:
    done = reg(repo).assign("v1.1.0", "prod")
    assert (done.tag, done.version, done.stage, done.number) == (
        f"{PROJECT}#prod#1",
        "v1.1.0",
        "prod",
        1,
    )
    assert git(repo, "rev-parse", f"{done.tag}^{{commit}}") == git(
        repo, "rev-parse", f"{PROJECT}@v1.1.0^{{commit}}"
    )
    assert git(repo, "cat-file", "-t", done.tag) == "tag"  # annotated, as gto writes them


def test_current_and_previous_follow_the_assignment_order(repo: Path) -> None:
    registry = reg(repo)
    assert registry.current("prod") is None and registry.previous("prod") is None
    registry.assign("v1.0.0", "prod")
    assert registry.current("prod").version == "v1.0.0"
    assert registry.previous("prod") is None  # one version only
    registry.assign("v2.0.0", "prod")
    assert registry.current("prod").version == "v2.0.0"
    assert registry.previous("prod") == "v1.0.0"
    registry.assign("v1.1.0", "staging")  # another stage does not count
    assert registry.previous("prod") == "v1.0.0"
    assert registry.current("staging").version == "v1.1.0"


def test_rollback_reassigns_the_previous_version_with_force(repo: Path) -> None:
    registry = reg(repo)
    registry.assign("v1.0.0", "prod")
    registry.assign("v2.0.0", "prod")
    done = registry.rollback("prod")
    assert (done.tag, done.version) == (f"{PROJECT}#prod#3", "v1.0.0")
    assert registry.current("prod").version == "v1.0.0"
    assert registry.previous("prod") == "v2.0.0"  # rolling back twice goes forward again
    assert tags(repo) == [f"{PROJECT}#prod#1", f"{PROJECT}#prod#2", f"{PROJECT}#prod#3"]


def test_rollback_to_a_named_version(repo: Path) -> None:
    registry = reg(repo)
    for version in ("v1.0.0", "v1.1.0", "v2.0.0"):
        registry.assign(version, "prod")
    assert registry.rollback("prod", to="v1.0.0").version == "v1.0.0"


def test_rollback_mistakes_get_one_message_with_the_fix(repo: Path) -> None:
    registry = reg(repo)
    cases = [
        ([], None, "no version of shop was ever assigned to prod", "gto assign shop"),
        (["v1.0.0"], None, "v1.0.0 is the only version prod ever had", "--to vX.Y.Z"),
        (["v2.0.0"], "v2.0.0", "v2.0.0 is already the version in prod", "--to"),
        ([], "v3.0.0", "v3.0.0 is not a release of shop", "v1.0.0, v1.1.0, v2.0.0"),
        ([], "v9.9.9", "no tag shop@v9.9.9", "pick a released version"),
        ([], "2.0", "'2.0' is not a version", "vX.Y.Z"),
    ]
    for assign, to, message, fix in cases:  # one repo, assignments accumulate
        for version in assign:
            registry.assign(version, "prod")
        before = tags(repo)
        with pytest.raises(UserError) as caught:
            registry.rollback("prod", to=to)
        assert message in caught.value.message
        assert fix in (caught.value.hint or "")
        assert tags(repo) == before  # nothing half-done


def test_unknown_stage_and_version_are_refused(repo: Path) -> None:
    with pytest.raises(UserError, match="unknown stage 'production'"):
        reg(repo).assign("v1.0.0", "production")
    with pytest.raises(UserError, match=r"v1\.0\.1 is not a release"):
        reg(repo).assign("v1.0.1", "prod")


def test_outside_a_git_repo_the_fix_says_where_to_run(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(UserError) as caught:
        Registry(PROJECT, outside).rollback("prod")
    assert "not a git repository" in caught.value.message
    assert "git clone" in (caught.value.hint or "")


def test_push_tag_sends_the_tag_to_origin(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghs_not_a_real_token")  # only a github.com header
    done = reg(repo).assign("v1.0.0", "prod")
    push_tag(done.tag, repo)
    origin = repo.parent / "origin.git"
    assert git(origin, "tag", "--list", f"{PROJECT}#*").split() == [done.tag]
    assert "extraheader" not in (repo / ".git" / "config").read_text()


def test_push_to_a_missing_remote_is_one_message(repo: Path) -> None:
    done = reg(repo).assign("v1.0.0", "prod")
    with pytest.raises(UserError, match="git push nowhere"):
        push_tag(done.tag, repo, remote="nowhere")


def test_resolve_reads_a_stage_tag_with_gto(repo: Path) -> None:
    done = reg(repo).assign("v2.0.0", "staging")
    found = resolve(f"refs/tags/{done.tag}", PROJECT)
    assert (found.tag, found.version, found.stage) == (done.tag, "v2.0.0", "staging")
    with pytest.raises(UserError, match="is not a GTO stage assignment tag"):
        resolve(f"{PROJECT}@v2.0.0", PROJECT)  # a release tag, not an assignment
    with pytest.raises(UserError, match="assigns artifact 'shop', but this project is 'cart'"):
        resolve(done.tag, "cart")


def test_cli_registry_and_rollback(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = reg(repo)
    registry.assign("v1.0.0", "prod")
    registry.assign("v2.0.0", "prod")
    assert main(["registry", "--project", PROJECT]) == 0
    out = capsys.readouterr().out
    assert "shop: released v1.0.0, v1.1.0, v2.0.0" in out
    assert "prod     v2.0.0 (shop#prod#2, previous v1.0.0)" in out
    assert "staging  (none)" in out

    assert main(["rollback", "--project", PROJECT]) == 0
    out = capsys.readouterr().out
    assert "prod: v2.0.0 -> v1.0.0 (shop#prod#3)" in out
    assert "git push origin 'shop#prod#3'" in out

    assert main(["rollback", "--project", PROJECT, "--to", "v7.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: v7.0.0 is not a release of shop") and "\nfix: " in err
    assert "Traceback" not in err
