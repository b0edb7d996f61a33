"""The parts of data-parallel training (`compute/ray_train.py`) that need no cluster: how a
worker's failure becomes one message, that a family without `ray_trainer` reads nothing more,
and how rank 0's checkpoint becomes artifacts/model/ and dvclive/ (all or nothing). Ray itself
is not imported here (the Ray tests set the loopback environment before it loads)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from fork import DATA_PATH, make_project
from helpers_ray import outputs

from mlops_template.cli import main
from mlops_template.compute.ray_train import (
    CHECKPOINT_LIVE,
    CHECKPOINT_MODEL,
    WorkerUserError,
    fit_with_trainer,
    training_error,
    write_outputs,
)
from mlops_template.errors import UserError
from mlops_template.model_io import load_model
from mlops_template.params import load_params
from mlops_template.paths import MODEL_DIR


class WorkersFailed(Exception):
    """Shaped like Ray Train's WorkerGroupError: the failures by rank."""

    def __init__(self, failures: dict[int, BaseException]) -> None:
        super().__init__("Training failed due to worker errors")
        self.worker_failures = failures


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny) -> Path:
    """A fork's project whose train stage ran once (`local`): its outputs exist."""
    repo = make_project(tmp_path / "fork")
    monkeypatch.chdir(repo)
    (repo / "artifacts/split").mkdir(parents=True)
    shutil.copy2(repo / DATA_PATH, repo / "artifacts/split/train.csv")
    assert main(["train"]) == 0
    return repo


def checkpoint_of(repo: Path, tmp_path: Path) -> Path:
    """What rank 0 checkpoints: the files `save` wrote, and the DVCLive files."""
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(repo / "artifacts/model", checkpoint / CHECKPOINT_MODEL)
    (checkpoint / CHECKPOINT_MODEL / "model.json").unlink()  # `save` does not write it
    (checkpoint / CHECKPOINT_LIVE).mkdir()
    (checkpoint / CHECKPOINT_LIVE / "metrics.json").write_text('{"train/accuracy": 0.5}\n')
    return checkpoint


def test_a_user_error_on_a_worker_keeps_its_message_and_fix() -> None:
    sent = pickle.loads(pickle.dumps(WorkerUserError("bad shape", "set schema.shape")))
    cause = RuntimeError("wrapped by Ray")
    cause.__cause__ = sent
    for failure in (sent, cause):
        error = training_error(WorkersFailed({1: RuntimeError("other"), 0: failure}), 2)
        assert (error.message, error.hint) == ("bad shape", "set schema.shape")


def test_any_other_failure_is_its_last_line_and_where_to_look() -> None:
    died = RuntimeError("Traceback (most recent call last):\n  ...\nActorDiedError: worker 1 died")
    error = training_error(WorkersFailed({1: died}), 2)
    assert error.message == (
        "training on the Ray cluster failed (2 workers): ActorDiedError: worker 1 died"
    )
    assert "cluster's logs" in (error.hint or "")
    unreachable = training_error(ConnectionError("GCS unreachable"), 1)
    assert unreachable.message.endswith("(1 workers): GCS unreachable")
    assert training_error(WorkersFailed({}), 3).message.startswith(
        "training on the Ray cluster failed (3 workers): Training failed"
    )


def test_a_family_without_a_trainer_reads_nothing(project: Path, tiny) -> None:
    params = load_params()
    model = tiny(params.train.family_params, load_model(MODEL_DIR).spec, params.train.seed)
    before = sorted(p.name for p in (project / "artifacts").iterdir())
    assert fit_with_trainer(model, params) is None
    assert sorted(p.name for p in (project / "artifacts").iterdir()) == before


def test_the_checkpoint_becomes_the_model_with_its_descriptor_and_dvclive(
    project: Path, tmp_path: Path, tiny
) -> None:
    local = outputs(project)
    loaded = load_model(MODEL_DIR)
    descriptor = write_outputs(loaded.model, "tiny", checkpoint_of(project, tmp_path))
    assert descriptor == loaded.descriptor
    written = outputs(project)
    assert {k: v for k, v in written.items() if k.startswith("artifacts/")} == {
        k: v for k, v in local.items() if k.startswith("artifacts/")
    }  # the model.json descriptor included, byte for byte
    assert [k for k in written if k.startswith("dvclive/")] == ["dvclive/metrics.json"]
    assert json.loads(written["dvclive/metrics.json"]) == {"train/accuracy": 0.5}


def test_a_checkpoint_that_does_not_load_replaces_nothing(
    project: Path, tmp_path: Path, tiny
) -> None:
    before = outputs(project)
    checkpoint = checkpoint_of(project, tmp_path)
    for saved in (checkpoint / CHECKPOINT_MODEL).iterdir():
        saved.unlink()  # `save` wrote nothing the family can load
    with pytest.raises(UserError, match="the model in the Ray Train checkpoint does not load"):
        write_outputs(load_model(MODEL_DIR).model, "tiny", checkpoint)
    assert outputs(project) == before
    assert sorted(p.name for p in (project / "artifacts").iterdir()) == ["model", "split"]
