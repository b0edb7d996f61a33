"""What a forker brings: their own small tabular CSV and the params.yaml edits that describe it.

The kept parts (stages, gate, serving, release) are tested on this data and on the tiny
adapter in `tiny_family.py`, never on the example, so these tests survive a fork that replaces
the example. The CSV is synthetic, seeded and deterministic: 3 classes with string labels,
numbers on very different scales (one an integer column with bounds), a categorical column,
a boolean column, a nullable column with a few empty cells and a regex group of two columns.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import tiny_family
from project import REPO, Replace, set_params

CSV_NAME = "wine.csv"
DATA_PATH = f"data/{CSV_NAME}"
TARGET = "cultivar"
CLASSES = ["barolo", "grignolino", "barbera"]
REGIONS = ["north", "south", "island"]
ROWS_PER_CLASS = 60
ROWS = ROWS_PER_CLASS * len(CLASSES)
EMPTY_SULFUR = 7  # cells left empty in the nullable column
HEADER = [
    "alcohol",
    "proline",
    "hue_ratio",
    "age_days",
    "region",
    "organic",
    "sulfur",
    "score_1",
    "score_2",
    TARGET,
]
FEATURES = [c for c in HEADER if c != TARGET]

# Per class: means of the numeric columns (the scales differ by six orders of magnitude).
_MEANS = {
    "barolo": {"alcohol": 13.7, "proline": 1100.0, "hue_ratio": 0.0011, "age_days": 900},
    "grignolino": {"alcohol": 12.3, "proline": 520.0, "hue_ratio": 0.0009, "age_days": 400},
    "barbera": {"alcohol": 13.1, "proline": 630.0, "hue_ratio": 0.0006, "age_days": 1500},
}
_SPREAD = {"alcohol": 0.35, "proline": 110.0, "hue_ratio": 0.00008, "age_days": 150}
_SULFUR = {"barolo": 40.0, "grignolino": 25.0, "barbera": 60.0}
_REGION_P = {
    "barolo": [0.7, 0.2, 0.1],
    "grignolino": [0.2, 0.7, 0.1],
    "barbera": [0.1, 0.2, 0.7],
}

SCHEMA: dict[str, Any] = {
    "min_rows": 150,
    "min_rows_per_class": 40,
    "classes": list(CLASSES),
    "columns": {
        "alcohol": {"dtype": "float64", "min": 8.0, "max": 18.0},
        "proline": {"dtype": "float64", "min": 0.0, "max": 2500.0},
        "hue_ratio": {"dtype": "float64"},
        "age_days": {"dtype": "int64", "min": 0, "max": 3650},
        "region": {"dtype": "str", "values": list(REGIONS)},
        "organic": {"dtype": "bool"},
        "sulfur": {"dtype": "float64", "min": 0.0, "nullable": True},
        "score_[0-9]": {"regex": True, "count": 2, "dtype": "float64"},
        TARGET: {"dtype": "str"},
    },
    "shape": None,
}

GATE_RULES: dict[str, Any] = {
    "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.02},
    "f1_macro": {"direction": "higher", "min": 0.9, "max_regression": 0.02},
    "log_loss": {"direction": "lower", "max": 0.6, "max_relative_regression": 0.5},
    "model_size_bytes": {"direction": "lower", "max": 5_000_000},
}

TINY_PARAMS = {"temperature": 1.0}


def fork_rows(seed: int = 7) -> list[list[str]]:
    """The CSV's rows as cells (header excluded), shuffled so the classes interleave."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in CLASSES:
        means = _MEANS[label]
        for _ in range(ROWS_PER_CLASS):
            alcohol = rng.normal(means["alcohol"], _SPREAD["alcohol"])
            proline = rng.normal(means["proline"], _SPREAD["proline"])
            hue = rng.normal(means["hue_ratio"], _SPREAD["hue_ratio"])
            age = int(np.clip(round(rng.normal(means["age_days"], _SPREAD["age_days"])), 0, 3650))
            region = REGIONS[rng.choice(len(REGIONS), p=_REGION_P[label])]
            organic = bool(rng.random() < (0.7 if label == "barbera" else 0.3))
            sulfur = rng.normal(_SULFUR[label], 6.0)
            score_1 = rng.normal(CLASSES.index(label), 0.8)
            score_2 = rng.normal(0.0, 1.0)
            rows.append(
                [
                    f"{alcohol:.2f}",
                    f"{proline:.1f}",
                    f"{hue:.6f}",
                    str(age),
                    region,
                    str(organic),
                    f"{max(sulfur, 0.0):.1f}",
                    f"{score_1:.3f}",
                    f"{score_2:.3f}",
                    label,
                ]
            )
    order = rng.permutation(len(rows))
    shuffled = [rows[i] for i in order]
    for i in range(EMPTY_SULFUR):  # a few empty cells in the nullable column
        shuffled[3 + 11 * i][HEADER.index("sulfur")] = ""
    return shuffled


def csv_text(rows: list[list[str]] | None = None) -> str:
    lines = [",".join(HEADER)] + [",".join(r) for r in (fork_rows() if rows is None else rows)]
    return "\n".join(lines) + "\n"


def write_fork_csv(path: Path, rows: list[list[str]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(rows), encoding="utf-8", newline="\n")
    return path


def fork_params(family: str = "tiny", **sections: Any) -> dict[str, Any]:
    """The params.yaml edits a forker makes, for `copy_project(params=...)` / `set_params`.

    `schema` and `gate.rules` replace the example's (no pixel rules left over); other
    `sections` are deep-merged on top (e.g. `evaluate={...}`).
    """
    train: dict[str, Any] = {"family": family}
    if family == "tiny":
        train["tiny"] = dict(TINY_PARAMS)
    if family == "keras":
        train["keras"] = {"architecture": "mlp"}
    params: dict[str, Any] = {
        "project": {"name": "wine", "description": "Wine cultivar classifier (synthetic)"},
        "data": {"path": DATA_PATH, "target": TARGET},
        "schema": Replace(SCHEMA),
        "train": train,
        "evaluate": {"latency_repeats": 20, "latency_batch_size": 32},
        "gate": {"rules": Replace(GATE_RULES)},
    }
    for key, value in sections.items():
        params[key] = {**params.get(key, {}), **value} if isinstance(value, dict) else value
    return params


def make_project(root: Path, family: str = "tiny", **sections: Any) -> Path:
    """A minimal project for in-process stage tests: params.yaml (the template's, with the
    fork's edits) and the fork's CSV in data/. No git, no DVC: the stages need neither."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    set_params(root, fork_params(family, **sections))
    write_fork_csv(root / DATA_PATH)
    return root


def install_tiny(copy: Path) -> Path:
    """Add the tiny family to a project copy, as a forker adds their own family file."""
    target = copy / "src/mlops_template/custom/families/tiny.py"
    shutil.copy2(tiny_family.__file__, target)
    return target
