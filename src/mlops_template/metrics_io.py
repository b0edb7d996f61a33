"""Read metrics files, here or at a git revision, as one flat {name: value} mapping.

Names are flattened with "." exactly as `dvc metrics diff --json` shows them, so a gate rule,
a report row and a DVC diff all speak of the same `latency.single_p95_ms`.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError
from mlops_template.files import parse_json
from mlops_template.paths import METRICS_FILES


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def parse_metrics(text: str, source: str) -> dict[str, Any]:
    """Parse one metrics file's JSON (NaN/Infinity allowed, as Python writes them)."""
    data = parse_json(text, source, "regenerate it with `dvc repro evaluate`")
    if not isinstance(data, dict):
        raise UserError(
            f"{source} must hold a JSON object of metrics",
            "regenerate it with `dvc repro evaluate`",
        )
    return flatten(data)


def merge(parts: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source, flat in parts:
        for name, value in flat.items():
            if name in merged:
                raise UserError(
                    f"metric {name!r} appears in more than one metrics file ({source})",
                    "give each metric one home",
                )
            merged[name] = value
    return merged


def load_metrics(paths: Iterable[str] = METRICS_FILES, root: Path = Path()) -> dict[str, Any]:
    """The metrics in the working tree; a missing file contributes nothing."""
    parts = []
    for rel in paths:
        path = root / rel
        if path.exists():
            parts.append((rel, parse_metrics(path.read_text(), rel)))
    return merge(parts)


def git_show(rev: str, path: str, root: Path = Path()) -> str | None:
    """The file's text at `rev`, or None when the file is absent there. Unknown rev -> UserError."""
    check = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise UserError(
            f"git revision {rev!r} not found",
            "fetch it first (e.g. `git fetch origin main`) or name another revision",
        )
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else None


def load_metrics_at_rev(
    rev: str, paths: Iterable[str] = METRICS_FILES, root: Path = Path()
) -> dict[str, Any] | None:
    """The metrics committed at `rev`, or None when no metrics file exists there (no baseline)."""
    parts = []
    for rel in paths:
        text = git_show(rev, rel, root)
        if text is not None:
            parts.append((f"{rev}:{rel}", parse_metrics(text, f"{rev}:{rel}")))
    return merge(parts) if parts else None


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
