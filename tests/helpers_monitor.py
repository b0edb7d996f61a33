"""Shared by the monitor tests: the fork's project split by the real `mlops prepare`, and
prediction logs written as the service writes them (one PredictionRecord a line, rotated)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from fork import FEATURES, TARGET, make_project

from mlops_template.cli import main
from mlops_template.paths import TEST_CSV

MODEL = "wine-model:0123456789abcdef"


def split_project(root: Path, **sections: Any) -> Path:
    """The fork's project with its train/test split (run in `root`: the caller chdirs)."""
    make_project(root, family="sklearn", **sections)
    return root


def prepare_here() -> None:
    assert main(["prepare"]) == 0


def split_test_rows() -> pd.DataFrame:
    """The test split as read back from its CSV (the cells a client would have sent)."""
    return pd.read_csv(TEST_CSV, dtype={"region": str})


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars -> JSON types
        return value.item()
    return value


def records(
    frame: pd.DataFrame,
    predictions: Sequence[Any] | None = None,
    end: datetime | None = None,
    step: timedelta = timedelta(seconds=30),
) -> list[dict[str, Any]]:
    """One log record per row, the last logged at `end` (default: now), `step` apart."""
    end = end or datetime.now(UTC)
    labels = list(frame[TARGET]) if predictions is None else list(predictions)
    out = []
    for i, (row, label) in enumerate(zip(frame[FEATURES].to_dict("records"), labels, strict=True)):
        moment = end - step * (len(frame) - 1 - i)
        out.append(
            {
                "time": moment.isoformat().replace("+00:00", "Z"),
                "model": MODEL,
                "features": {k: _cell(v) for k, v in row.items()},
                "prediction": _cell(label),
                "confidence": 0.9,
            }
        )
    return out


def write_log(folder: Path, lines: Sequence[dict[str, Any] | str], files: int = 1) -> Path:
    """`lines` (oldest first) over `files` files: predictions.jsonl.<files-1> .. .jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    size = math.ceil(len(texts) / files) if texts else 0
    for k in range(files):
        part = texts[k * size : (k + 1) * size]
        number = files - 1 - k
        name = "predictions.jsonl" + (f".{number}" if number else "")
        (folder / name).write_text("".join(t + "\n" for t in part), encoding="utf-8")
    return folder
