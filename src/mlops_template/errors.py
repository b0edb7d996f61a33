"""Expected mistakes (bad data, bad params, no remote) end as one message and a fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it and exits with status 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nfix: {self.hint}"
