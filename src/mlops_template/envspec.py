"""Which optional extras the environment needs, read from params.yaml before anything is installed.

Standard library only: it runs as `python3 src/mlops_template/envspec.py` before `uv sync`, so
the scikit-learn family never downloads TensorFlow. Prints `uv sync` flags (`--extra keras`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FAMILY_EXTRAS = {"keras": ["keras"], "sklearn": []}


def family(params_text: str) -> str:
    """train.family from params.yaml text (a block mapping, as the template writes it)."""
    in_train = False
    for line in params_text.splitlines():
        if re.match(r"^train:\s*(#.*)?$", line):
            in_train = True
        elif re.match(r"^\S", line):
            in_train = False
        elif in_train and (m := re.match(r"^\s+family:\s*['\"]?([A-Za-z_]+)", line)):
            return m.group(1)
    raise SystemExit(
        "error: params.yaml has no train.family\nfix: set train.family: keras or sklearn"
    )


def sync_flags(params_path: Path = Path("params.yaml")) -> str:
    name = family(params_path.read_text())
    if name not in FAMILY_EXTRAS:
        raise SystemExit(
            f"error: unknown train.family {name!r} in {params_path}\n"
            f"fix: use one of {', '.join(FAMILY_EXTRAS)}"
        )
    return " ".join(f"--extra {extra}" for extra in FAMILY_EXTRAS[name])


if __name__ == "__main__":
    print(sync_flags(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("params.yaml")))
