"""The example's data and params: the digits CSV the bundled generator writes is what data.dvc
records, and the example's params.yaml describes it (64 pixels in an 8x8 grid, 10 classes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from project import REPO

from mlops_template.cli import main
from mlops_template.params import load_params
from mlops_template.stages.data import data_state, workspace_hash
from mlops_template.table import feature_spec, read_header

CSV = "data/digits.csv"


def write_example_data(path: Path) -> None:
    # Imported here: `pytest -m "not example"` still collects this module after a fork
    # deleted the example's generator.
    from mlops_template.custom.dataset import write_example_data as write

    write(path)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example's params.yaml and data.dvc, with the example data written, as cwd."""
    for name in ("params.yaml", "data.dvc"):
        shutil.copy2(REPO / name, tmp_path / name)
    write_example_data(tmp_path / CSV)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_example_data_matches_data_dvc(example: Path) -> None:
    recorded = next(line for line in (REPO / "data.dvc").read_text().splitlines() if "md5" in line)
    assert recorded.split()[-1] == workspace_hash(example / "data")


def test_data_states(example: Path) -> None:
    assert data_state() == "ok"
    (example / CSV).write_text("pixel_0_0,label\n1,2\n")
    assert data_state() == "modified"
    (example / CSV).unlink()
    assert data_state() == "missing"


def test_the_example_params_describe_64_pixels_in_an_8x8_grid(example: Path) -> None:
    params = load_params()
    assert params.data.path == CSV and params.project.name == "digits"
    spec = feature_spec(params, read_header(example / CSV))
    assert len(spec.names) == 64 and spec.names[19] == "pixel_2_3"
    assert spec.shape == (8, 8) and spec.classes == tuple(range(10))
    assert {(c.kind, c.integer, c.min, c.max) for c in spec.columns} == {("numeric", True, 0, 16)}


def test_the_example_data_validates(example: Path) -> None:
    assert main(["validate"]) == 0
    summary = json.loads((example / "reports/data.json").read_text())
    assert summary["rows"] == 1797 and summary["columns"] == 65
    assert summary["per_class"]["0"] == 178
    assert list(summary["files"]) == ["digits.csv"]


def test_a_pixel_out_of_range_is_named(example: Path, capsys) -> None:
    df = pd.read_csv(example / CSV)
    df.loc[7, "pixel_2_3"] = 99
    df.to_csv(example / CSV, index=False)
    assert main(["validate"]) == 2
    assert "column 'pixel_2_3' breaks rule 'max 16': row 9: 99" in capsys.readouterr().err


def test_the_template_holds_the_bundled_example_so_the_act_tests_run() -> None:
    from project import holds_bundled_example

    assert holds_bundled_example() is True
