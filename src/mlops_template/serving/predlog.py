"""A sample of the answered predictions as JSON lines, the input of drift monitoring.

Off by default. Configured by environment variables read once at start (a bad value stops the
server with one message):
- MLOPS_PREDICTION_LOG: a directory; the log is `predictions.jsonl` in it (unset: no log);
- MLOPS_PREDICTION_LOG_SAMPLE: the fraction of answered /predict requests logged, 0..1
  (default 1.0); every instance of a sampled request is logged;
- MLOPS_PREDICTION_LOG_MAX_BYTES: size at which the file is rotated (default 10_000_000);
- MLOPS_PREDICTION_LOG_BACKUPS: rotated files kept, predictions.jsonl.1 .. .N (default 5), so
  the log never holds more than MAX_BYTES x (BACKUPS + 1).

Each line is one `records.PredictionRecord` (time, model tag, the instance's features by
column name, the predicted label and its probability). Only answers the client received
(200) are logged, as for the metrics. The sample is deterministic: with a fraction f, request
k is logged when floor(k f) grows, so 0.25 logs every fourth request, exactly.

The request never waits for the log and never fails because of it: the answer is sent first,
the lines are built and written by a thread of their own, a full queue drops samples (counted
in a warning), and a write error is logged once as a warning. The log holds what clients sent:
treat the directory as you treat the requests (access, retention, personal data).
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import os
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_template.contract import FeatureSpec
from mlops_template.errors import UserError
from mlops_template.records import PredictionRecord

ENV_DIR = "MLOPS_PREDICTION_LOG"
ENV_SAMPLE = "MLOPS_PREDICTION_LOG_SAMPLE"
ENV_MAX_BYTES = "MLOPS_PREDICTION_LOG_MAX_BYTES"
ENV_BACKUPS = "MLOPS_PREDICTION_LOG_BACKUPS"
LOG_FILE = "predictions.jsonl"
DEFAULT_SAMPLE = 1.0
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_BACKUPS = 5
QUEUE_REQUESTS = 1000  # sampled requests waiting to be written; more are dropped

logger = logging.getLogger("mlops_template.serving")


@dataclass(frozen=True)
class PredictionLogSettings:
    directory: Path
    sample: float = DEFAULT_SAMPLE
    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS

    @property
    def path(self) -> Path:
        return self.directory / LOG_FILE


def settings_from_env(environ: Mapping[str, str] | None = None) -> PredictionLogSettings | None:
    """The prediction log's settings, None when it is off; UserError for a bad value."""
    environ = os.environ if environ is None else environ
    directory = environ.get(ENV_DIR, "").strip()
    if not directory:
        return None
    sample = _number(environ, ENV_SAMPLE, DEFAULT_SAMPLE, float, "a fraction from 0 to 1")
    if not 0.0 <= sample <= 1.0:
        raise UserError(
            f"{ENV_SAMPLE}={environ[ENV_SAMPLE]} is outside 0..1",
            f"set it to the fraction of requests to log, e.g. 0.1 (default {DEFAULT_SAMPLE})",
        )
    max_bytes = _number(environ, ENV_MAX_BYTES, DEFAULT_MAX_BYTES, int, "a whole number")
    backups = _number(environ, ENV_BACKUPS, DEFAULT_BACKUPS, int, "a whole number")
    if max_bytes < 1 or backups < 1:
        name, value = (ENV_MAX_BYTES, max_bytes) if max_bytes < 1 else (ENV_BACKUPS, backups)
        raise UserError(
            f"{name}={value} must be at least 1 (the log would never rotate)",
            f"defaults: {ENV_MAX_BYTES}={DEFAULT_MAX_BYTES}, {ENV_BACKUPS}={DEFAULT_BACKUPS}",
        )
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{ENV_DIR}={directory}: cannot create the directory ({exc.strerror})",
            "point it to a writable directory, or unset it to serve without a prediction log",
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(
            f"{ENV_DIR}={directory} is not writable by this user",
            "point it to a writable directory, or unset it to serve without a prediction log",
        )
    return PredictionLogSettings(path, sample, max_bytes, backups)


def _number(environ: Mapping[str, str], name: str, default: Any, kind: type, what: str) -> Any:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise UserError(
            f"{name}={text!r} is not {what}", f"unset it for the default ({default})"
        ) from None


class _Handler(logging.handlers.RotatingFileHandler):
    """Rotates by size; a write error is reported once as a warning, never raised."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            logger.warning(
                "the prediction log %s cannot be written; predictions are not logged until it can",
                self.baseFilename,
                exc_info=True,
            )


class PredictionLog:
    """Samples answered /predict requests and writes one line per instance (see the module)."""

    def __init__(self, settings: PredictionLogSettings, spec: FeatureSpec, model_tag: str):
        from mlops_template.serving.schemas import InstanceReader

        self.settings = settings
        self.names = spec.names
        self.reader = InstanceReader(spec)
        self.model_tag = model_tag
        self.handler = _Handler(
            settings.path,
            maxBytes=settings.max_bytes,
            backupCount=settings.backups,
            encoding="utf-8",
            delay=True,  # opened by the worker that writes, not by every process importing this
        )
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self._credit = 0.0
        self._queue: queue.Queue[tuple[str, bytes, bytes] | None] = queue.Queue(QUEUE_REQUESTS)
        self.dropped = 0
        self._writer: threading.Thread | None = None

    def sampled(self) -> bool:
        """Whether this request is logged: exactly `sample` of the requests, spread evenly."""
        self._credit += self.settings.sample
        if self._credit >= 1.0:
            self._credit -= 1.0
            return True
        return False

    def submit(self, request_body: bytes, answer_body: bytes) -> None:
        """Queue an answered request for the log if it is sampled; never raises, never waits."""
        try:
            if not self.sampled():
                return
            if self._writer is None:
                self._start()
            when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self._queue.put_nowait((when, request_body, answer_body))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("prediction log behind: %d sampled requests dropped", self.dropped)
        except Exception:
            logger.warning("could not queue a prediction log entry", exc_info=True)

    def lines(self, when: str, request_body: bytes, answer_body: bytes) -> list[str]:
        """One JSON line (a PredictionRecord) per instance of an answered request."""
        instances = json.loads(request_body)["instances"]
        answers = json.loads(answer_body)
        out = []
        for instance, answer in zip(instances, answers, strict=True):
            features = dict(zip(self.names, self.reader.values(instance), strict=True))
            record = PredictionRecord(
                time=when,
                model=self.model_tag,
                features=features,
                prediction=answer["label"],
                confidence=answer["confidence"],
            )
            out.append(record.model_dump_json())
        return out

    def flush(self) -> None:
        """Wait until every queued request is written (tests, shutdown)."""
        self._queue.join()

    def _start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._writer.start()
        atexit.register(self.close)  # a worker stopping writes what it has queued

    def close(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(10)
        self.handler.close()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                for line in self.lines(*item):
                    self.handler.emit(
                        logging.LogRecord("predictions", logging.INFO, "", 0, line, None, None)
                    )
                self.handler.flush()
            except Exception:
                logger.warning("could not write a prediction log entry", exc_info=True)
            finally:
                self._queue.task_done()


def from_env(spec: FeatureSpec, model_tag: str, workers: int) -> PredictionLog | None:
    """The service's prediction log as the environment configures it (None: off)."""
    settings = settings_from_env()
    if settings is None:
        return None
    if workers > 1:
        raise UserError(
            f"{ENV_DIR} is set and the service runs {workers} workers: the log file is "
            "written by one worker",
            f"serve with one worker (--arg workers=1), or unset {ENV_DIR}",
        )
    return PredictionLog(settings, spec, model_tag)
