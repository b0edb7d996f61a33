"""A fork's two changes, as a forker makes them: their own data with params-only edits, and their
own model family as one new file. The kept parts must not know either (nor the example)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fork import CLASSES, install_tiny
from project import REPO, run
from test_pipeline import make_fork, repro

SRC = REPO / "src/mlops_template"
KEPT_PACKAGES = ("stages", "serving", "release", "ci", "report")
KEPT_MODULES = (
    "gate.py",
    "model_io.py",
    "envspec.py",
    "contract.py",
    "table.py",
    "params.py",
    "task.py",
    "paths.py",
)
NAMES = re.compile(r"digits|keras|sklearn|scikit|lightgbm|tensorflow|xgboost|torch", re.IGNORECASE)
# "digits" as a plain word (hex digits, a `digits` argument) names no dataset.
GENERIC = re.compile(r"hex digits|letters, digits|\bdigits\s*[=:)}]|[(*{]digits\b|, digits=")
LIBRARY_IMPORT = re.compile(r"^\s*(from sklearn[.\w]* import |import sklearn)")


def kept_files() -> list[Path]:
    """Every module but the forker's own (custom/): the listed ones and whatever is added."""
    files = [p for d in KEPT_PACKAGES for p in sorted((SRC / d).rglob("*.py"))]
    named = [SRC / name for name in KEPT_MODULES]
    rest = sorted(p for p in SRC.glob("*.py") if p not in named)
    return files + named + rest


def docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def family_mentions(path: Path) -> list[str]:
    """Lines of `path` that name a family, a model library or the example, outside docstrings
    (scikit-learn used as a library, e.g. for metrics or the split, is allowed)."""
    text = path.read_text()
    skip = docstring_lines(ast.parse(text))
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if number in skip or LIBRARY_IMPORT.match(line):
            continue
        if NAMES.search(GENERIC.sub("", line)):
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
            found.append(f"{where}:{number}: {line.strip()}")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may show the keras example."""\n'
        "from sklearn.metrics import f1_score\n"
        "WIDTH = 8  # hex digits\n"
        'FAMILY = "lightgbm"\n'
        "if family == 'Keras':\n"
        "    name = 'digits-model'\n"
    )
    assert [m.split(": ", 1)[1] for m in family_mentions(sample)] == [
        'FAMILY = "lightgbm"',
        "if family == 'Keras':",
        "name = 'digits-model'",
    ]


def test_no_kept_module_names_a_family_or_the_example() -> None:
    assert len(kept_files()) > 20
    mentions = [m for path in kept_files() for m in family_mentions(path)]
    assert mentions == []


@pytest.mark.slow
def test_the_sklearn_path_never_imports_tensorflow(tmp_path: Path) -> None:
    """Choosing a light family keeps TensorFlow out of every stage (a fresh interpreter)."""
    from fork import make_project

    make_project(tmp_path, "sklearn")
    code = (
        "import sys\n"
        "from mlops_template.cli import main\n"
        "for stage in ('validate', 'prepare', 'train', 'evaluate'):\n"
        "    assert main([stage]) == 0, stage\n"
        "assert not {'tensorflow', 'keras', 'lightgbm'} & set(sys.modules)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.slow
def test_a_family_added_as_one_file_runs_the_whole_pipeline(tmp_path: Path) -> None:
    """The tiny family as a forker adds one: a file in custom/families/ and its params block."""
    repo = make_fork(tmp_path, "tiny")
    install_tiny(repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "our family"], repo)
    run(["mlops", "data"], repo)
    repro(repo)
    model = json.loads((repo / "artifacts/model/model.json").read_text())
    assert (model["family"], model["variant"]) == ("tiny", "centroid")
    assert sorted(p.name for p in (repo / "artifacts/model").iterdir()) == [
        "centroids.npy",
        "model.json",
        "scaling.json",
    ]
    quality = json.loads((repo / "metrics/quality.json").read_text())
    assert quality["accuracy"] >= 0.95 and set(quality["f1_per_class"]) == set(CLASSES)
    assert json.loads((repo / "reports/gate.json").read_text())["accepted"] is True
    assert (repo / "artifacts/bento/model.bentomodel").stat().st_size > 0
    flags = run([sys.executable, "src/mlops_template/envspec.py"], repo)
    assert flags.stdout.strip() == ""  # no extra of its own: nothing to install


@pytest.mark.slow
@pytest.mark.keras
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="needs the keras extra (uv sync --extra keras)",
)
def test_the_keras_mlp_reaches_095_with_params_only_edits(tmp_path: Path) -> None:
    repo = make_fork(tmp_path, "keras")
    run(["mlops", "data"], repo)
    repro(repo)
    model = json.loads((repo / "artifacts/model/model.json").read_text())
    assert (model["family"], model["variant"]) == ("keras", "mlp")
    quality = json.loads((repo / "metrics/quality.json").read_text())
    assert quality["accuracy"] >= 0.95
    assert json.loads((repo / "reports/gate.json").read_text())["accepted"] is True
    assert (repo / "artifacts/bento/model.bentomodel").stat().st_size > 0


def test_a_fork_with_its_own_data_skips_the_act_tests(tmp_path: Path) -> None:
    from project import holds_bundled_example

    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "data.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n"
    )
    assert holds_bundled_example(tmp_path) is False
