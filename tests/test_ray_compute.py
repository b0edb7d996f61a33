"""`train.compute: ray` and `mlops sweep` on a real Ray cluster: one head on 127.0.0.1
(tests/helpers_ray.py), started once for the module and stopped by its PID.

On the fork's data with the scikit-learn family (no Ray Train trainer: its fit runs on one
worker): the train stage on the cluster writes the same bytes as `local` (model and dvclive/;
`local` runs as `mlops train` in a fresh process, so its determinism pins apply before numpy
loads, as on the workers), twice in a row, so the metrics and the gate verdict are the same.
With the LightGBM and Keras families (Ray Train trainers), training is data-parallel on 2
workers, and a second run writes the same bytes, metrics and verdict. A sweep of 4 trials, 2
at a time, finishes and ranks them, and changes params.yaml only when asked.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fork import make_project
from helpers_ray import LOOPBACK_ENV, Head, free_base_port, outputs, start_head
from project import run, set_params

from mlops_template.cli import main
from mlops_template.params import load_params

# Not importorskip: importing Ray here, before the fixture sets LOOPBACK_ENV, would make the
# driver look for the head on the machine's network address instead of 127.0.0.1.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra"),
]

BASE_PORT = 26500  # GCS 26500, client 26501, agents 26502-26507, workers 26600-26699 (or +200)
SPACE = {"train.sklearn.logreg.C": [0.001, 0.01, 0.1, 1.0]}
SHORT_FIT = {"lightgbm": {"n_estimators": 20}, "keras": {"epochs": 3}}  # a test, not a model


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths
    with pytest.MonkeyPatch.context() as mp:
        for key, value in LOOPBACK_ENV.items():
            mp.setenv(key, value)
        cluster = start_head(temp_dir, free_base_port(BASE_PORT))
        mp.setenv("RAY_ADDRESS", cluster.address)
        try:
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def family() -> str:
    """The project's family (a test parametrizes it)."""
    return "sklearn"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: str) -> Path:
    repo = make_project(tmp_path / "fork", family=family)
    monkeypatch.chdir(repo)
    for stage in ("validate", "prepare"):
        assert main([stage]) == 0
    return repo


def evaluate_and_gate(repo: Path) -> tuple[dict, dict]:
    assert main(["evaluate"]) == 0
    assert main(["gate", "--no-baseline", "--record-only"]) == 0
    quality = json.loads((repo / "metrics/quality.json").read_text())
    verdict = json.loads((repo / "reports/gate.json").read_text())
    return quality, {k: verdict[k] for k in ("accepted", "reasons") if k in verdict}


def test_training_on_the_cluster_writes_what_local_training_writes(
    head: Head, project: Path, capsys
) -> None:
    run(["mlops", "train"], project)  # a fresh process: pinned before numpy loads, as in CI
    local = outputs(project)
    local_metrics, local_verdict = evaluate_and_gate(project)
    assert local_verdict["accepted"] is True

    set_params(project, {"train": {"compute": {"backend": "ray", "num_workers": 2}}})
    assert load_params().train.compute.num_workers == 2
    for attempt in (1, 2):  # two runs on the cluster: the same bytes each time
        for path in outputs(project):
            (project / path).write_bytes(b"stale")  # so equal bytes mean rewritten
        capsys.readouterr()
        assert main(["train", "--check"]) == 0
        assert f"RAY_ADDRESS={head.address} can be reached" in capsys.readouterr().out
        assert main(["train"]) == 0, f"run {attempt}"
        assert "ran on 1 of the 2 workers" in capsys.readouterr().out
        assert outputs(project) == local, f"run {attempt}"
        assert evaluate_and_gate(project) == (local_metrics, local_verdict)


def test_a_sweep_of_four_trials_two_at_a_time_ranks_them(head: Head, project: Path, capsys):
    sweep = {"metric": "log_loss", "mode": "min", "num_samples": 4, "max_concurrent": 2}
    sweep |= {"seed": 3, "space": SPACE}
    set_params(project, {"sweep": sweep})
    params_before = (project / "params.yaml").read_text()
    capsys.readouterr()
    assert main(["sweep"]) == 0
    assert "4 trials -> reports/sweep.json" in capsys.readouterr().out
    assert (project / "params.yaml").read_text() == params_before

    result = json.loads((project / "reports/sweep.json").read_text())
    trials = result["trials"]
    assert sorted(t["trial"] for t in trials) == [0, 1, 2, 3]
    assert [t["rank"] for t in trials] == [1, 2, 3, 4]
    assert sorted(t["config"]["train.sklearn.logreg.C"] for t in trials) == sorted(
        SPACE["train.sklearn.logreg.C"]
    )
    log_loss = [t["metrics"]["log_loss"] for t in trials]
    assert log_loss == sorted(log_loss) and log_loss[0] < log_loss[-1]
    assert all(0.0 <= t["metrics"]["accuracy"] <= 1.0 for t in trials)
    table = (project / "reports/sweep.md").read_text()
    assert table.count("\n| ") == 5  # the header and one row per trial

    assert main(["sweep", "--apply-best"]) == 0
    best = trials[0]["config"]["train.sklearn.logreg.C"]
    assert best == load_params().train.family_params.logreg.C


@pytest.mark.parametrize("family", ["lightgbm", "keras"])
def test_data_parallel_training_on_two_workers_gives_the_same_outputs_twice(
    head: Head, project: Path, family: str, capsys
) -> None:
    compute = {"backend": "ray", "num_workers": 2}
    set_params(project, {"train": {family: SHORT_FIT[family], "compute": compute}})
    runs = []
    for attempt in (1, 2):
        for path in outputs(project):
            (project / path).write_bytes(b"stale")  # so equal bytes mean rewritten
        capsys.readouterr()
        assert main(["train"]) == 0, f"run {attempt}"
        said = capsys.readouterr().out
        assert "trained data-parallel on 2 Ray workers (Ray Train)" in said
        assert "ran on 1 of" not in said
        runs.append((outputs(project), *evaluate_and_gate(project)))
    assert runs[1] == runs[0]  # model and dvclive/ bytes, metrics, gate verdict

    files, metrics, verdict = runs[0]
    descriptor = json.loads(files["artifacts/model/model.json"])
    assert descriptor["family"] == family
    assert descriptor["params"] == load_params().train.family_params.model_dump(mode="json")
    assert 0.0 <= json.loads(files["dvclive/metrics.json"])["train/accuracy"] <= 1.0
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert isinstance(verdict["accepted"], bool)
    assert sorted(p.name for p in (project / "artifacts").iterdir()) == ["model", "split"]
