"""Talk to the GitHub Actions runner: step outputs and annotations, no-ops outside Actions.

Values written here may come from a pull request (report text, reasons): outputs use a random
heredoc delimiter, and annotations and log lines go through `escape`, so no value can forge
another output or a workflow command.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_template.errors import UserError


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def set_output(name: str, value: str) -> None:
    """Append `name=value` to $GITHUB_OUTPUT (multi-line safe); print it when not in Actions."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        print(f"output {name}={value}")
        return
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def add_env(name: str, value: str) -> None:
    """Export `name=value` to the following steps ($GITHUB_ENV); single-line values only."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name}: environment values must be one line")
    target = os.environ.get("GITHUB_ENV")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
    os.environ[name] = value


def escape(value: object) -> str:
    """`value` as text that cannot be a workflow command when printed to the runner's log.

    The one escape for anything that came from a PR (an artifact, a report, a file name) on its
    way to the log: `%`, CR and LF are percent-encoded as the runner's own encoding does, so the
    text stays on one line, and `::` and `##[` (the command prefixes) are broken the same way.
    """
    text = str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace("::", ":%3A").replace("##[", "#%23[")


def _escape_property(text: str) -> str:
    return escape(text).replace(":", "%3A").replace(",", "%2C")


def annotate(level: str, message: str, title: str | None = None) -> None:
    """An `::error::`, `::warning::` or `::notice::` line in Actions; `level: message` elsewhere."""
    if level not in {"error", "warning", "notice"}:
        raise ValueError(f"unknown annotation level {level!r}")
    if in_actions():
        props = f" title={_escape_property(title)}" if title else ""
        print(f"::{level}{props}::{escape(message)}", flush=True)
    else:
        prefix = f"{title}: " if title else ""
        print(f"{level}: {prefix}{message}", file=sys.stderr, flush=True)


@contextmanager
def annotated(title: str) -> Iterator[None]:
    """A mistake also becomes an error annotation in Actions (shown on the run's page).

    A context manager, and a decorator for a command's function: `@gha.annotated("mlops ci x")`.
    """
    try:
        yield
    except UserError as exc:
        if in_actions():
            fix = f" Fix: {exc.hint}" if exc.hint else ""
            annotate("error", f"{exc.message}.{fix}", title=title)
        raise
