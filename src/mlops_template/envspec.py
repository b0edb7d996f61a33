"""Which optional extras the environment needs, read from params.yaml before anything is installed.

Standard library only: it runs as `python3 src/mlops_template/envspec.py` before `uv sync`.
A model family's packages are the uv extra named after it (pyproject.toml), so a family that
needs none (or a heavy one that is not chosen) downloads nothing. Prints `uv sync` flags;
`--all` prints the extras of every family and of the operating tools (what the test suite
needs).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAMILIES_DIR = Path(__file__).resolve().parent / "custom" / "families"
# Extras of the operating tools, not of a model family: the tests install them too.
TOOL_EXTRAS = ("monitor", "ray", "signing")


def train_lines(params_text: str) -> list[str]:
    """The indented lines of the top-level `train:` block of params.yaml text."""
    lines, in_train = [], False
    for line in params_text.splitlines():
        if re.match(r"^train:\s*(#.*)?$", line):
            in_train = True
        elif re.match(r"^\S", line):
            in_train = False
        elif in_train:
            lines.append(line)
    return lines


def family(params_text: str) -> str:
    """train.family from params.yaml text (a block mapping, as the template writes it)."""
    for line in train_lines(params_text):
        if m := re.match(r"^\s+family:\s*['\"]?([A-Za-z0-9_]+)", line):
            return m.group(1)
    raise SystemExit("error: params.yaml has no train.family\nfix: set train.family in params.yaml")


RAY_LINES = (
    r"^\s+(compute|backend):\s*['\"]?ray['\"]?\s*(#.*)?$",  # compute: ray / backend: ray
    r"^\s+compute:\s*\{[^}]*\bbackend:\s*['\"]?ray\b",  # compute: {backend: ray, ...}
)


def trains_on_ray(params_text: str) -> bool:
    """train.compute is `ray` (or a block with `backend: ray`): the `ray` extra is needed too."""
    return any(re.match(p, line) for line in train_lines(params_text) for p in RAY_LINES)


def family_names(families_dir: Path = FAMILIES_DIR) -> list[str]:
    return sorted(p.stem for p in families_dir.glob("*.py") if not p.stem.startswith("_"))


def extras(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    with pyproject.open("rb") as handle:
        return set(tomllib.load(handle).get("project", {}).get("optional-dependencies", {}))


def sync_flags(params_path: Path = Path("params.yaml"), all_families: bool = False) -> str:
    known = family_names()
    if all_families:
        names = [*known, *TOOL_EXTRAS]
    else:
        text = params_path.read_text()
        name = family(text)
        if name not in known:
            raise SystemExit(
                f"error: train.family {name!r} in {params_path} names no model family "
                f"(known: {', '.join(known)})\n"
                f"fix: set train.family to one of them, or add "
                f"src/mlops_template/custom/families/{name}.py"
            )
        names = [name, "ray"] if trains_on_ray(text) else [name]
    available = extras()
    return " ".join(f"--extra {n}" for n in names if n in available)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--all"]:
        print(sync_flags(all_families=True))
    else:
        print(sync_flags(Path(args[0]) if args else Path("params.yaml")))
