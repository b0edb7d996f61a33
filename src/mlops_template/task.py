"""What the metrics measure: the task (target, classes, test split definition) as a record with
a fingerprint. A baseline's metrics are comparable only when they measured the same task, so a
fork's first run is never judged against the template's example (or any other task's) numbers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_template.params import Params


class TaskRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    classes: list[int | str]
    test_size: float
    split_seed: int
    fingerprint: str = ""

    def with_fingerprint(self) -> TaskRecord:
        body = self.model_dump(mode="json", exclude={"fingerprint"})
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return self.model_copy(update={"fingerprint": digest})


def task_record(params: Params) -> TaskRecord:
    return TaskRecord(
        target=params.data.target,
        classes=list(params.schema_.classes),
        test_size=params.prepare.test_size,
        split_seed=params.prepare.seed,
    ).with_fingerprint()


def parse_task(text: str | None) -> TaskRecord | None:
    """A task record from its JSON text; None when absent or unreadable (no comparable task)."""
    if text is None:
        return None
    try:
        return TaskRecord.model_validate_json(text)
    except ValidationError:
        return None


def read_task(path: Path) -> TaskRecord | None:
    return parse_task(path.read_text()) if path.exists() else None


def mismatch(current: TaskRecord, baseline: TaskRecord | None) -> str | None:
    """Why the baseline's metrics are not comparable with the current ones, or None."""
    if baseline is None:
        return "the baseline records no task (it predates task fingerprints)"
    if baseline.fingerprint == current.fingerprint:
        return None
    diffs = [
        f"{field} {getattr(baseline, field)!r} -> {getattr(current, field)!r}"
        for field in ("target", "classes", "test_size", "split_seed")
        if getattr(baseline, field) != getattr(current, field)
    ]
    return "the baseline measured a different task (" + "; ".join(diffs) + ")"
