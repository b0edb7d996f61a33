"""Expected mistakes (bad data, bad params, no remote) end as one message and a fix."""

from __future__ import annotations

import subprocess
from typing import Any


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it and exits with status 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nfix: {self.hint}"


def run_checked(
    argv: list[str],
    fix: str,
    *,
    missing: str | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run a tool the template drives (git, gh, dvc, ...); its failure is one UserError that
    quotes the tool's own last words and says how to fix it, not a traceback.

    `missing` is the fix when the program is not installed; keyword arguments go to
    subprocess.run (cwd, env, timeout)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    except FileNotFoundError:
        raise UserError(
            f"{argv[0]} is not installed (or not on PATH)", missing or f"install {argv[0]}"
        ) from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-500:]
        raise UserError(f"`{' '.join(argv[:3])}` failed: {said}", fix)
    return done
