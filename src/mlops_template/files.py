"""Write outputs all at once: a crash or a bad input never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError


def write_text_atomic(path: Path | str, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path | str, fix: str) -> Any:
    """The JSON in `path`; a missing or unparsable file is one UserError that says `fix`.

    The one JSON reader for the project's records (verdicts, metrics, provenance), so every
    broken file gets the same message shape instead of a traceback.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} not found", fix) from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror})", fix) from None
    return parse_json(text, str(path), fix)


def parse_json(text: str, source: str, fix: str) -> Any:
    """JSON text from `source` (a file at a git revision, a tool's output); UserError if broken."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})", fix
        ) from None


def write_json(path: Path | str, data: Any, *, strict: bool = False) -> None:
    """Stable JSON (sorted keys, fixed indent) so identical results give identical bytes.

    `strict` refuses NaN/Infinity, for files that other tools parse as standard JSON.
    """
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=not strict)
    write_text_atomic(path, text + "\n")


def export_atomically(target: Path | str, export: Callable[[str], str]) -> Path:
    """Let `export(absolute temp path) -> written path` write beside the target, then rename.

    For exporters that write a whole file themselves (`bentoml export`); the path handed over
    is absolute because BentoML writes relative export paths to `/`.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        os.replace(export(str(tmp_dir / target.name)), target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target
