"""A release ships only what a commit says: the provenance records a dirty work tree (inputs
that differ from HEAD; the outputs a re-run rewrites do not count), and the release refuses a
model packaged from one (or one the gate rejected)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from act_harness import GIT_IDENTITY
from test_release_card import PACKAGED

from mlops_template.errors import UserError
from mlops_template.records import PackagedModel
from mlops_template.release.build import check_releasable
from mlops_template.stages.package import git_commit, work_tree_dirty


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env=GIT_IDENTITY, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    git(tmp_path, "add", "params.yaml")
    git(tmp_path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_clean_checkout_is_not_dirty_and_names_its_commit(repo: Path) -> None:
    assert work_tree_dirty() is False
    assert git_commit() == git(repo, "rev-parse", "HEAD")


def test_an_edited_tracked_file_makes_it_dirty(repo: Path) -> None:
    (repo / "params.yaml").write_text("seed: 2\n")
    assert work_tree_dirty() is True


def test_a_staged_change_makes_it_dirty(repo: Path) -> None:
    (repo / "params.yaml").write_text("seed: 2\n")
    git(repo, "add", "params.yaml")
    assert work_tree_dirty() is True


def test_a_deleted_tracked_file_makes_it_dirty(repo: Path) -> None:
    (repo / "params.yaml").unlink()
    assert work_tree_dirty() is True


LOCK = """\
schema: '2.0'
stages:
  evaluate:
    cmd: mlops evaluate
    outs:
    - path: metrics/serving.json
      hash: md5
      md5: 1
    - path: plots
      hash: md5
      md5: 2.dir
"""


@pytest.fixture
def pipeline_repo(repo: Path) -> Path:
    """The repo with dvc.lock and the git-tracked outputs it lists, committed."""
    (repo / "dvc.lock").write_text(LOCK)
    (repo / "metrics").mkdir()
    (repo / "metrics" / "serving.json").write_text('{"p50_ms": 1.0}\n')
    (repo / "metrics" / "serving.json.orig").write_text("{}\n")
    (repo / "plots").mkdir()
    (repo / "plots" / "curve.csv").write_text("x,y\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "results")
    return repo


def test_rewritten_pipeline_outputs_and_dvc_lock_do_not_count(pipeline_repo: Path) -> None:
    (pipeline_repo / "metrics" / "serving.json").write_text('{"p50_ms": 1.3}\n')
    (pipeline_repo / "plots" / "curve.csv").write_text("x,y\n1,2\n")
    (pipeline_repo / "dvc.lock").write_text(LOCK.replace("md5: 1", "md5: 3"))
    assert work_tree_dirty() is False


def test_a_file_beside_an_output_still_counts(pipeline_repo: Path) -> None:
    (pipeline_repo / "metrics" / "serving.json.orig").write_text('{"edited": true}\n')
    assert work_tree_dirty() is True


def test_an_input_change_counts_among_rewritten_outputs(pipeline_repo: Path) -> None:
    (pipeline_repo / "metrics" / "serving.json").write_text('{"p50_ms": 1.3}\n')
    (pipeline_repo / "params.yaml").write_text("seed: 2\n")
    assert work_tree_dirty() is True


def test_untracked_files_do_not_count_as_git_describe_dirty(repo: Path) -> None:
    (repo / "notes.txt").write_text("scratch\n")
    assert work_tree_dirty() is False


def test_outside_git_it_is_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert work_tree_dirty() is None
    assert git_commit() == "unknown"


def packaged(**provenance: object) -> PackagedModel:
    record = {**PACKAGED["provenance"], **provenance}
    return PackagedModel.model_validate({**PACKAGED, "provenance": record})


def test_the_release_refuses_a_model_packaged_from_a_dirty_tree() -> None:
    with pytest.raises(UserError) as caught:
        check_releasable(packaged(dirty=True), Path("model.bentomodel"))
    assert "uncommitted changes" in caught.value.message
    assert PACKAGED["provenance"]["git_commit"] in caught.value.message
    assert "dvc repro --force --single-item package" in caught.value.hint


@pytest.mark.parametrize("dirty", [False, None], ids=["clean", "not-recorded"])
def test_a_clean_or_unrecorded_tree_is_released(dirty: bool | None) -> None:
    check_releasable(packaged(dirty=dirty), Path("model.bentomodel"))


def test_a_record_without_the_field_reads_as_not_recorded() -> None:
    assert "dirty" not in PACKAGED["provenance"]
    assert PackagedModel.model_validate(PACKAGED).provenance.dirty is None


def test_the_release_refuses_a_rejected_model_first() -> None:
    gate = {**PACKAGED["provenance"]["gate"], "accepted": False}
    with pytest.raises(UserError, match="the gate did not accept"):
        check_releasable(packaged(gate=gate, dirty=True), Path("model.bentomodel"))
