"""`mlops`: one entry point for the pipeline stages, the CI actions and the release steps.

Each command lives in its own module exposing `register(subparsers)`; that module's parser
stores its `run(args) -> int` as `func`. Expected mistakes raise UserError and end as one
message with a fix (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_template.errors import UserError

# Modules that register commands, in the order `mlops --help` lists them.
COMMAND_MODULES = [
    "mlops_template.stages.data",
    "mlops_template.stages.validate",
    "mlops_template.stages.prepare",
    "mlops_template.stages.train",
    "mlops_template.stages.evaluate",
    "mlops_template.stages.gate",
    "mlops_template.stages.package",
    "mlops_template.stages.summary",
    "mlops_template.report.cli",
    "mlops_template.ci.cli",
    "mlops_template.release.cli",
]


def _quiet_telemetry() -> None:
    """Telemetry off unless the user opted in explicitly; BentoML's store lives in the repo."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")
    os.environ.setdefault("BENTOML_HOME", str(Path.cwd() / ".bentoml"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_telemetry()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"fix: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
