"""Unit tests of the stages and their bad-input messages, in-process on a temp project copy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from project import REPO, copy_project, set_params

from mlops_template.cli import main
from mlops_template.custom.dataset import write_example_data
from mlops_template.envspec import sync_flags
from mlops_template.params import load_params
from mlops_template.stages.data import data_state, workspace_hash


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project copy as cwd, with the example data in place."""
    repo = copy_project(tmp_path)
    write_example_data(repo / "data/digits.csv")
    monkeypatch.chdir(repo)
    return repo


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def edit_csv(repo: Path, edit) -> None:
    path = repo / "data/digits.csv"
    df = pd.read_csv(path)
    edited = edit(df)
    (df if edited is None else edited).to_csv(path, index=False)


def test_example_data_matches_data_dvc(tmp_path: Path) -> None:
    write_example_data(tmp_path / "data/digits.csv")
    recorded = next(line for line in (REPO / "data.dvc").read_text().splitlines() if "md5" in line)
    assert recorded.split()[-1] == workspace_hash(tmp_path / "data")


def test_data_states(project: Path) -> None:
    assert data_state() == "ok"
    (project / "data/digits.csv").write_text("pixel_0_0,label\n1,2\n")
    assert data_state() == "modified"
    (project / "data/digits.csv").unlink()
    assert data_state() == "missing"


def test_validate_writes_the_data_summary(project: Path, capsys) -> None:
    assert main(["validate"]) == 0
    summary = json.loads((project / "reports/data.json").read_text())
    assert summary["rows"] == 1797 and summary["columns"] == 65
    assert summary["per_class"]["0"] == 178
    assert list(summary["files"]) == ["digits.csv"]


def test_validate_names_an_out_of_range_pixel(project: Path, capsys) -> None:
    edit_csv(
        project, lambda df: df.__setitem__("pixel_2_3", df["pixel_2_3"].where(df.index != 7, 99))
    )
    err = error_of(capsys, "validate")
    assert "column 'pixel_2_3' breaks rule 'max 16': row 9: 99" in err
    assert not (project / "reports/data.json").exists()


def test_validate_names_a_missing_column(project: Path, capsys) -> None:
    edit_csv(project, lambda df: df.drop(columns=["pixel_4_4"]))
    err = error_of(capsys, "validate")
    assert "expected 64 columns matching 'pixel_[0-7]_[0-7]', found 63" in err


def test_validate_names_a_non_numeric_cell(project: Path, capsys) -> None:
    def edit(df: pd.DataFrame) -> None:
        df["pixel_0_5"] = df["pixel_0_5"].astype(object)
        df.loc[3, "pixel_0_5"] = "x"

    edit_csv(project, edit)
    err = error_of(capsys, "validate")
    assert "column 'pixel_0_5' must be int64" in err and "row 5: 'x'" in err


def test_validate_names_an_unknown_label_and_thin_classes(project: Path, capsys) -> None:
    edit_csv(project, lambda df: df.__setitem__("label", df["label"].where(df.index != 0, 11)))
    assert "column 'label' breaks rule 'one of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]': row 2: 11" in (
        error_of(capsys, "validate")
    )
    write_example_data(project / "data/digits.csv")
    edit_csv(project, lambda df: df.drop(index=df.index[df["label"] == 3][:100]))
    assert "too few rows per class (minimum 150): class 3: 83" in error_of(capsys, "validate")


def test_validate_rejects_an_unreadable_file(project: Path, capsys) -> None:
    (project / "data/digits.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    assert "is not a readable CSV" in error_of(capsys, "validate")
    (project / "data/digits.csv").unlink()
    assert "run `mlops data`" in error_of(capsys, "validate")


def test_prepare_is_stratified_and_seeded(project: Path) -> None:
    assert main(["prepare"]) == 0
    first = (project / "artifacts/split/test.csv").read_bytes()
    test = pd.read_csv(project / "artifacts/split/test.csv")
    whole = pd.read_csv(project / "data/digits.csv")
    assert len(test) == 450
    expected = whole["label"].value_counts() * 0.25
    assert (test["label"].value_counts() - expected).abs().max() <= 1
    assert main(["prepare"]) == 0
    assert (project / "artifacts/split/test.csv").read_bytes() == first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": {"family": "xgboost"}}, "train.family: Input should be 'keras' or 'sklearn'"),
        ({"train": {"keras": {"epochz": 3}}}, "train.keras.epochz: unknown key"),
        ({"prepare": {"test_size": 1.5}}, "prepare.test_size: Input should be less than 1"),
        ({"surprise": 1}, "surprise: unknown key"),
    ],
)
def test_bad_params_get_one_clear_message(project: Path, capsys, change, message) -> None:
    set_params(project, change)
    assert message in error_of(capsys, "prepare")


def test_malformed_params_yaml(project: Path, capsys) -> None:
    (project / "params.yaml").write_text("train:\n  family: keras\n seed: 1\n")
    assert "params.yaml is not valid YAML at line 3" in error_of(capsys, "train")


def test_envspec_installs_tensorflow_only_for_keras(project: Path) -> None:
    assert sync_flags(project / "params.yaml") == "--extra keras"
    set_params(project, {"train": {"family": "sklearn"}})
    assert sync_flags(project / "params.yaml") == ""
    set_params(project, {"train": {"family": "torch"}})
    with pytest.raises(SystemExit, match=r"unknown train\.family 'torch'"):
        sync_flags(project / "params.yaml")


def test_sklearn_path_never_imports_tensorflow(project: Path) -> None:
    """The family switch must keep TensorFlow out of the sklearn path (a fresh interpreter)."""
    import subprocess
    import sys

    set_params(project, {"train": {"family": "sklearn"}, "evaluate": {"latency_repeats": 10}})
    code = (
        "import sys\n"
        "from mlops_template.cli import main\n"
        "for stage in ('validate', 'prepare', 'train', 'evaluate'):\n"
        "    assert main([stage]) == 0, stage\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
    assert load_params(project / "params.yaml").train.family == "sklearn"
