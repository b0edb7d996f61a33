"""The parts of `train.compute: ray` that need no cluster: what a worker does with the
contract (called here directly), and how its files replace the outputs (all or nothing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fork import DATA_PATH, make_project

from mlops_template import contract
from mlops_template.cli import main
from mlops_template.compute.remote import fit_on_worker, read_tree, replace_tree
from mlops_template.params import load_params


def test_replace_tree_swaps_in_every_file_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "model"
    (target / "old").mkdir(parents=True)
    (target / "old" / "left-over.bin").write_bytes(b"old")
    tree = {"model.json": b"{}\n", "weights/layer.npy": b"\x00\x01"}
    replace_tree(target, tree)
    assert read_tree(target) == tree
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp dir left behind
    replace_tree(target, {})  # an empty tree is an empty directory, not a missing one
    assert target.is_dir() and read_tree(target) == {}


def test_a_failed_write_leaves_the_old_outputs(tmp_path: Path) -> None:
    target = tmp_path / "model"
    replace_tree(target, {"model.json": b"old"})
    with pytest.raises(OSError):
        replace_tree(target, {"model.json": b"new", "a": b"file", "a/b": b"under a file"})
    assert read_tree(target) == {"model.json": b"old"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_worker_fits_through_the_contract_and_returns_the_stage_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny
) -> None:
    repo = make_project(tmp_path / "fork")
    monkeypatch.chdir(repo)
    (repo / "artifacts/split").mkdir(parents=True)
    shutil.copy2(repo / DATA_PATH, repo / "artifacts/split/train.csv")  # the split, all of it
    assert main(["train"]) == 0
    local = {root: read_tree(repo / root) for root in ("artifacts/model", "dvclive")}
    params = load_params()
    monkeypatch.delitem(contract._REGISTERED, "tiny")  # a worker knows only the class it gets
    out = fit_on_worker(params, str(repo / "artifacts/split/train.csv"), "tiny", tiny)
    assert out == {"model": local["artifacts/model"], "live": local["dvclive"]}
    assert "tiny" in contract.family_names()


def test_a_path_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        replace_tree(tmp_path / "model", {"../escaped": b"x"})
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "model").exists()


def test_a_worker_that_cannot_read_the_split_says_so(tmp_path: Path, tiny) -> None:
    repo = make_project(tmp_path / "fork")
    params = load_params(repo / "params.yaml")
    out = fit_on_worker(params, str(tmp_path / "elsewhere/train.csv"), "tiny", tiny)
    message, fix = out["error"]
    assert message == f"the Ray worker cannot read the split file {tmp_path}/elsewhere/train.csv"
    assert "mount the repository at the same path on every node" in fix
