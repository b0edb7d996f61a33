"""The window of the prediction log that the drift check compares with the training split.

The service writes `predictions.jsonl` and rotates it to `predictions.jsonl.1` (newest) ..
`.N` (oldest); each line is one `PredictionRecord`. The window is the newest `last` records
logged within `hours` of now. Anything that is not what the service writes stops the check
with one message: the log is evidence, so a line is never skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlops_template.errors import UserError
from mlops_template.params import WindowParams
from mlops_template.records import PredictionRecord

LOG_NAME = "predictions.jsonl"
_ROTATED = re.compile(rf"^{re.escape(LOG_NAME)}(?:\.(\d+))?$")
ENABLE_FIX = (
    "enable the service's prediction log (MLOPS_PREDICTION_LOG=<dir>) and copy that folder "
    "here (monitor.yml fetches it from PREDICTION_LOG_URL)"
)


@dataclass(frozen=True)
class Window:
    records: list[PredictionRecord]
    start: datetime
    end: datetime
    logged: int  # records in the whole log

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.records})


def log_files(log: Path) -> list[Path]:
    """The log's files, oldest first (`.N` .. `.1`, then the live file)."""
    if log.is_file():
        return [log]
    if not log.is_dir():
        raise UserError(f"prediction log {log} not found", ENABLE_FIX)
    found = []
    for path in log.iterdir():
        match = _ROTATED.match(path.name)
        if match and path.is_file():
            found.append((-int(match.group(1) or 0), path))
    if not found:
        raise UserError(f"prediction log {log} holds no {LOG_NAME}* file", ENABLE_FIX)
    return [path for _, path in sorted(found)]


def parse_time(text: str, source: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UserError(
            f"{source} has time {text[:40]!r}, not an ISO 8601 UTC time (…Z)",
            PredictionRecord.FIX,
        )
    return moment.astimezone(UTC)


def read_log(log: Path) -> list[tuple[datetime, PredictionRecord]]:
    """Every record of the log with its time; the first bad line is a UserError."""
    out = []
    for path in log_files(log):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                source = f"{path}:{number}"
                record = PredictionRecord.parse_text(line, source)
                out.append((parse_time(record.time, source), record))
    return out


def select(
    log: Path, window: WindowParams, features: list[str], now: datetime | None = None
) -> Window:
    """The newest `window.last` records of the last `window.hours`; checked against `features`."""
    logged = read_log(log)
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=window.hours) if window.hours is not None else None
    recent = [(t, r) for t, r in logged if since is None or t >= since]
    recent.sort(key=lambda pair: pair[0])
    chosen = recent[-window.last :]
    age = f"in the last {window.hours:g} h" if window.hours is not None else "at all"
    if not chosen:
        raise UserError(
            f"the prediction log {log} has no record logged {age} ({len(logged)} in total)",
            "check that the service logs predictions and that the log was fetched recently, "
            "or widen monitor.window.hours in params.yaml",
        )
    if len(chosen) < window.min_records:
        raise UserError(
            f"the window holds {len(chosen)} predictions logged {age}, fewer than "
            f"monitor.window.min_records ({window.min_records}): too few to test for drift",
            "wait for more traffic, log a larger sample, or lower monitor.window.min_records",
        )
    _check_columns(chosen, features, log)
    return Window([r for _, r in chosen], chosen[0][0], chosen[-1][0], len(logged))


def _check_columns(
    chosen: list[tuple[datetime, PredictionRecord]], features: list[str], log: Path
) -> None:
    expected = set(features)
    for moment, record in chosen:
        keys = set(record.features)
        if keys != expected:
            missing = sorted(expected - keys)
            unknown = sorted(keys - expected)
            parts = []
            if missing:
                parts.append("missing " + ", ".join(map(repr, missing[:8])))
            if unknown:
                parts.append("unknown " + ", ".join(repr(k[:40]) for k in unknown[:8]))
            raise UserError(
                f"{log}: the record logged at {moment.isoformat()} by {record.model[:80]!r} "
                f"does not match the schema's feature columns ({'; '.join(parts)})",
                "compare a log written by a model trained with this params.yaml schema "
                "(check out the commit of the deployed model)",
            )
