"""Shared by the monitor tests: the fork's project split by the real `mlops prepare`, and
prediction logs written as the service writes them (one PredictionRecord a line, rotated)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from fork import TARGET, make_project

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
    target: str = TARGET,
) -> list[dict[str, Any]]:
    """One log record per row (every column but `target` is a feature; the predictions are
    the labels unless given), the last logged at `end` (default: now), `step` apart."""
    end = end or datetime.now(UTC)
    labels = list(frame[target]) if predictions is None else list(predictions)
    features = frame.drop(columns=[target]).to_dict("records")
    out = []
    for i, (row, label) in enumerate(zip(features, labels, strict=True)):
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


# --------------------------------------------------------------------------- PromQL names

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
             "unless", "offset", "inf", "nan"}  # fmt: skip


def promql_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not functions, labels or keywords)."""
    text = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr))))
    names = set()
    for match in _NAME.finditer(text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def recording_rules(*files: Path) -> dict[str, list[str]]:
    """Recorded series name -> the expressions that record it, from Prometheus rule files."""
    import yaml

    found: dict[str, list[str]] = {}
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    found.setdefault(rule["record"], []).append(rule["expr"])
    return found


def raw_names(expr: str, recorded: dict[str, list[str]]) -> set[str]:
    """The service series an expression reads, through the recording rules it uses."""
    out = set()
    for name in promql_names(expr):
        if name in recorded:
            for inner in recorded[name]:
                out |= raw_names(inner, recorded)
        else:
            out.add(name)
    return out


def dashboard_queries(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
