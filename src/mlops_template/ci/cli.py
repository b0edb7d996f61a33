"""`mlops ci ...`: the logic behind the composite actions in actions/ and the workflows.

Each subcommand is what one action step runs; the YAML only wires inputs to flags. In GitHub
Actions a mistake also becomes an error annotation, so it shows on the PR's checks page.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

from mlops_template.ci import artifact, comment, gha, remote, repro, verdict
from mlops_template.errors import UserError

SUBCOMMAND_MODULES = (repro, verdict, artifact, comment, remote)


def _annotated(func: Callable[[Any], int]) -> Callable[[Any], int]:
    @functools.wraps(func)
    def wrapper(args: Any) -> int:
        try:
            return func(args)
        except UserError as exc:
            if gha.in_actions():
                fix = f" Fix: {exc.hint}" if exc.hint else ""
                gha.annotate("error", f"{exc.message}.{fix}", title=f"mlops ci {args.ci_command}")
            raise

    return wrapper


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ci", help="CI steps: repro check, gate, report artifact, PR comment, DVC push"
    )
    sub = parser.add_subparsers(dest="ci_command", required=True, metavar="STEP")
    for module in SUBCOMMAND_MODULES:
        module.register(sub)
    for choice in sub.choices.values():
        func = choice.get_default("func")
        if func is not None:
            choice.set_defaults(func=_annotated(func))
