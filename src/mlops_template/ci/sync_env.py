"""Install the locked environment for CI: `uv sync --locked` with the extras the project needs.

Standard library only: the setup action runs it as `python3 .../ci/sync_env.py` before anything
is installed. `auto` asks `mlops_template.envspec` which extras params.yaml's train.family needs
(a family's heavy packages are downloaded only when params.yaml chooses it). Afterwards the
environment's bin folder goes on $GITHUB_PATH, so later steps run `mlops` and `dvc` directly.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the sibling modules importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mlops_template.envspec import sync_flags  # stdlib only

_EXTRA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def sync_argv(extras: str, dev: bool, params: Path = Path("params.yaml")) -> list[str]:
    """The `uv sync` command for the space-separated `extras` (`auto`, `none` or names)."""
    argv = ["uv", "sync", "--locked"]
    for word in extras.split():
        if word == "none":
            continue
        if word == "auto":
            argv += sync_flags(params).split()
        elif _EXTRA.match(word):
            argv += ["--extra", word]
        else:
            raise SystemExit(
                f"error: extra {word!r} is not a valid name\n"
                "fix: list extras from pyproject.toml, space separated (or auto / none)"
            )
    if not dev:
        argv.append("--no-dev")
    return _dedupe(argv)


def _dedupe(argv: list[str]) -> list[str]:
    out: list[str] = []
    seen = set()
    i = 0
    while i < len(argv):
        if argv[i] == "--extra" and i + 1 < len(argv):
            if argv[i + 1] not in seen:
                seen.add(argv[i + 1])
                out += argv[i : i + 2]
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def installed_extras(argv: Sequence[str]) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--extra"]


def _append(variable: str, line: str) -> None:
    target = os.environ.get(variable)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="auto", help="auto, none, or extra names")
    parser.add_argument("--dev", choices=("true", "false"), default="true")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    command = sync_argv(args.extras, args.dev == "true", Path(args.params))
    print("+ " + " ".join(command), flush=True)
    status = subprocess.run(command).returncode
    if status != 0:
        return status
    venv = Path(os.environ.get("UV_PROJECT_ENVIRONMENT") or ".venv").resolve()
    _append("GITHUB_PATH", f"{venv / 'bin'}\n")
    delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
    extras = " ".join(installed_extras(command))
    _append("GITHUB_OUTPUT", f"extras<<{delimiter}\n{extras}\n{delimiter}\n")
    print(f"environment ready in {venv} (extras: {extras or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
