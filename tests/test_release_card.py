"""`mlops release card` and `mlops release checksums`: what a release page shows and how a
download is verified."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from helpers_serving import mlops
from test_package import packaged_fork

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.records import DataSummary, GateVerdict, PackagedModel
from mlops_template.release import card as release_card
from mlops_template.release.checksums import write_checksums
from mlops_template.serving import store

SPEC = {
    "columns": [
        {"name": "alcohol", "kind": "numeric", "min": 8.0, "max": 18.0},
        {"name": "age_days", "kind": "numeric", "integer": True, "min": 0.0},
        {"name": "region", "kind": "categorical", "values": ["north", "south"]},
        {"name": "organic", "kind": "boolean", "nullable": True},
    ],
    "target": "cultivar",
    "classes": ["barolo", "barbera", "grignolino"],
}
RECORD = {
    "project": {"name": "wine", "description": "Wine cultivar classifier."},
    "model": {
        "name": "wine-model",
        "version": "abc123",
        "family": "sklearn",
        "architecture": "logreg",
        "classes": SPEC["classes"],
        "features": [c["name"] for c in SPEC["columns"]],
        "spec": SPEC,
    },
    "git_commit": "1111111111111111111111111111111111111111",
    "data": {"dvc_file": "data.dvc", "md5": "feedbeef.dir"},
    "params": {
        "train": {
            "family": "sklearn",
            "sklearn": {"estimator": "logreg", "logreg": {"C": 1.0}},
            "keras": {"epochs": 40},
            "lightgbm": {"num_leaves": 15},
        },
        "gate": {
            "rules": {
                "accuracy": {"direction": "higher", "min": 0.9},
                "log_loss": {"direction": "lower", "max": 0.2},
            }
        },
    },
    "metrics": {"accuracy": 0.95, "log_loss": 0.1, "f1_per_class": {"0": 0.9}},
    "gate": {
        "accepted": True,
        "baseline": {"source": "git:HEAD", "available": True},
        "rules": [
            {
                "metric": "accuracy",
                "direction": "higher",
                "value": 0.95,
                "baseline": 0.94,
                "checks": [{"kind": "min", "reason": "accuracy 0.95 is above the minimum 0.9"}],
                "passed": True,
            }
        ],
        "reasons": [],
        "summary": "accepted: 2 rules passed",
    },
}
PACKAGED = {"tag": "wine-model:abc123", "labels": {}, "provenance": RECORD}


def render_card(packaged, version, previous, source, lock, data, commit="c", **kwargs):
    """The card of a packaged model given as its JSON (what the .bentomodel holds)."""
    return release_card.render_card(
        PackagedModel.model_validate(packaged),
        version,
        previous,
        source,
        lock,
        None if data is None else DataSummary.model_validate(data),
        commit=commit,
        **kwargs,
    )


LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {
            "cmd": "mlops train",
            "outs": [{"path": "artifacts/model", "hash": "md5", "md5": "0123abcd.dir"}],
        }
    },
}


def test_the_card_compares_with_the_previous_release_in_the_gate_direction():
    previous = {"accuracy": 0.96, "log_loss": 0.2, "f1_per_class.0": 0.9}
    card = render_card(PACKAGED, "v1.2.0", previous, "git:v1.1.0", LOCK, None, commit="c0ffee")
    assert card.startswith("# Model card: wine-model v1.2.0")
    assert "| `accuracy` | 0.95 | 0.96 | -0.01 (worse) |" in card
    assert "| `log_loss` | 0.1 | 0.2 | -0.1 (better) |" in card
    assert "| `f1_per_class.0` | 0.9 | 0.9 | +0 |" in card
    assert "against the previous release (git:v1.1.0)" in card
    assert "`wine-model:abc123`" in card and "`feedbeef.dir`" in card
    assert "| Gate verdict | accepted: 2 rules passed |" in card
    assert "**accepted** — accepted: 2 rules passed" in card
    assert "| `accuracy` | higher | 0.95 | 0.94 | accuracy 0.95 is above the minimum 0.9 |" in card
    assert "| train | `artifacts/model` | `0123abcd.dir` |" in card
    assert "`1111111111111111111111111111111111111111`" in card and "`c0ffee`" in card
    assert "| `train.sklearn.logreg.C` | 1 |" in card
    assert "train.keras" not in card and "train.lightgbm" not in card  # the served family's only


def test_the_card_describes_the_model_from_the_project_and_its_feature_spec():
    card = render_card(PACKAGED, "v1.2.0", None, None, None, None, commit="c")
    assert "Wine cultivar classifier." in card
    assert (
        "A sklearn model (logreg) of 4 feature columns (2 numeric, 1 categorical, 1 boolean) "
        "that predicts `cultivar`, one of the classes `barolo`, `barbera`, `grignolino`."
    ) in card
    assert "| `alcohol` | numeric | a number from 8 to 18 | no |" in card
    assert "| `age_days` | numeric | an integer >= 0 | no |" in card
    assert "| `region` | categorical | one of 'north', 'south' | no |" in card
    assert "| `organic` | boolean | true or false | yes |" in card
    assert "each instance the 4 feature values in the column order above" in card
    assert "nested lists" not in card  # no shape declared
    assert "digits" not in card.lower()


def test_the_card_says_the_bento_runs_onnx_and_lists_what_it_installs():
    packages = ["bentoml==1.4.39", "onnxruntime==1.32.0"]
    card = render_card(PACKAGED, None, None, None, None, None, commit="c", packages=packages)
    runs = next(line for line in card.splitlines() if line.startswith("The bento runs"))
    assert "ONNX export (`model.onnx`" in runs and "nothing is unpickled" in runs
    assert "it installs `bentoml==1.4.39`, `onnxruntime==1.32.0` and their locked" in runs
    unknown = render_card(PACKAGED, None, None, None, None, None, commit="c")
    assert "no training library is installed." in unknown  # no bentofile: no package list


def test_the_cards_package_list_is_the_bentofiles_pinned(tmp_path):
    from importlib import metadata

    bentofile = tmp_path / "bentofile.yaml"
    bentofile.write_text("service: s:S\npython:\n  packages: [numpy, onnxruntime]\n")
    assert release_card.bento_packages(bentofile) == [
        f"numpy=={metadata.version('numpy')}",
        f"onnxruntime=={metadata.version('onnxruntime')}",
    ]
    assert release_card.bento_packages(tmp_path / "missing.yaml") is None


def test_the_card_of_a_gridded_model_says_instances_may_be_nested():
    spec = {
        "columns": [{"name": f"p{i}", "kind": "numeric"} for i in range(4)],
        "target": "y",
        "classes": [0, 1],
        "shape": [2, 2],
    }
    record = {**RECORD, "model": {**RECORD["model"], "spec": spec, "classes": [0, 1]}}
    card = render_card({**PACKAGED, "provenance": record}, None, None, None, None, None, "c")
    assert "4 feature columns (4 numeric)" in card and "`0`, `1`" in card
    assert "or nested lists of shape 2 x 2" in card


def test_a_first_release_says_there_is_nothing_to_compare():
    card = render_card(
        PACKAGED,
        None,
        None,
        None,
        None,
        {"rows": 10, "columns": 3, "per_class": {"barolo": 4}},
        commit="c",
    )
    assert "No previous release to compare with." in card
    assert "| `accuracy` | 0.95 | — | — |" in card
    assert "dvc.lock not found" in card
    assert "| rows | 10 |" in card


def test_checksums_verify_with_sha256sum(tmp_path):
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        pytest.skip("coreutils sha256sum is not installed")
    (tmp_path / "a.bento").write_bytes(b"bento bytes")
    (tmp_path / "MODEL_CARD.md").write_text("# card\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("x")
    (tmp_path / ".partial").write_text("temp file of an interrupted write")
    sums = write_checksums(tmp_path)
    assert sums.stat().st_mode & 0o777 == 0o644
    lines = sums.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["MODEL_CARD.md", "a.bento", "sub/x.txt"]
    check = [sha256sum, "-c", "SHA256SUMS"]
    ok = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "a.bento").write_bytes(b"tampered")
    bad = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1 and "a.bento: FAILED" in bad.stdout


def test_checksums_of_an_empty_or_missing_directory_are_an_error(tmp_path):
    with pytest.raises(UserError):
        write_checksums(tmp_path)
    with pytest.raises(UserError):
        write_checksums(tmp_path / "missing")


@pytest.mark.slow
def test_the_card_cli_reads_the_packaged_model_and_the_previous_tag(tmp_path_factory):
    root = packaged_fork(tmp_path_factory, "card")
    (root / "dvc.lock").write_text(json.dumps(LOCK))  # JSON is YAML
    quality = root / "metrics" / "quality.json"
    current = json.loads(quality.read_text())
    git = ["git", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    quality.write_text(json.dumps({**current, "accuracy": current["accuracy"] - 0.01}))
    subprocess.run([*git, "add", "metrics/quality.json"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "previous release"], check=True)
    subprocess.run([*git, "tag", "v0.0.1"], check=True)
    quality.write_text(json.dumps(current))

    done = mlops(
        root,
        "release",
        "card",
        "--out",
        "dist/MODEL_CARD.md",
        "--version",
        "v0.1.0",
        "--previous-rev",
        "v0.0.1",
    )
    assert done.returncode == 0, done.stderr
    card = (root / "dist" / "MODEL_CARD.md").read_text()
    packaged = store.read_bentomodel(root / paths.BENTOMODEL_FILE).to_json()
    assert f"`{packaged['tag']}`" in card
    assert f"| `accuracy` | {current['accuracy']:.6g} | " in card
    assert "+0.01 (better)" in card
    assert "against the previous release (git:v0.0.1)" in card

    missing = mlops(root, "release", "card", "--out", "x.md", "--previous-metrics", "nope.json")
    assert missing.returncode == 2 and "nope.json not found" in missing.stderr


def test_the_card_shows_the_release_verdict_when_given():
    release_verdict = {
        "accepted": True,
        "summary": "accepted: 2 rules passed against git:v1.1.0",
        "reasons": [],
        "rules": [],
    }
    card = render_card(
        PACKAGED,
        "v1.2.0",
        None,
        None,
        None,
        None,
        commit="c",
        verdict=GateVerdict.model_validate(release_verdict),
    )
    assert "accepted: 2 rules passed against git:v1.1.0" in card
    packaged = render_card(PACKAGED, "v1.2.0", None, None, None, None, commit="c")
    assert "| accepted: 2 rules passed |" in packaged
    assert "| accepted: 2 rules passed |" not in card  # not the packaging-time verdict
