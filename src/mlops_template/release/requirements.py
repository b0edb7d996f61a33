"""The bento's requirements: exactly the locked versions, with their hashes, and nothing more.

`uv export --locked` writes every package of uv.lock (all extras, no dev group, not the project
itself) as a requirements file with each distribution's SHA-256; the bento keeps only the
packages its service needs (the bentofile's: the service runs the model's ONNX export with ONNX
Runtime, whatever the family), with everything they depend on according to uv.lock, so the image
installs the reviewed lock, verified by hash, and carries no training library.
`uv export --locked` fails when uv.lock does not match pyproject.toml: a release never installs
an unlocked version.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    """PEP 503 name: `Scikit_Learn` -> `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> tuple[str, list[str]]:
    """`bentoml[io]==1.4` -> ("bentoml", ["io"])."""
    match = _NAME.match(requirement.strip())
    if match is None:
        raise UserError(f"{requirement!r} is not a package requirement", "fix the bentofile")
    extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
    return normalize(match.group(1)), extras


def lock_closure(lock: dict[str, Any], roots: Iterable[str]) -> set[str]:
    """The packages `roots` need according to uv.lock (names, normalized), extras followed."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock.get("package") or []:
        packages.setdefault(normalize(package["name"]), []).append(package)
    needed: set[str] = set()
    pending = [requirement_name(root) for root in roots]
    seen: set[tuple[str, str]] = set()
    while pending:
        name, extras = pending.pop()
        if name not in packages:
            raise UserError(
                f"the bento needs {name!r}, which uv.lock does not hold",
                "add it to pyproject.toml (or the family's extra) and run `uv lock`",
            )
        needed.add(name)
        for key in ["", *extras]:
            if (name, key) in seen:
                continue
            seen.add((name, key))
            for package in packages[name]:
                deps = (
                    package.get("dependencies")
                    if not key
                    else (package.get("optional-dependencies") or {}).get(key)
                )
                for dep in deps or []:
                    pending.append((normalize(dep["name"]), list(dep.get("extra") or [])))
    return needed


def keep_packages(exported: str, names: set[str]) -> str:
    """The blocks of a `uv export` requirements file (a requirement line and its `--hash`
    continuation lines) whose package is in `names`."""
    kept: list[str] = []
    keep = False
    for line in exported.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            keep = requirement_name(line)[0] in names
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


def export_lock(project: Path) -> str:
    """`uv export --locked` of the project at `project`: every locked package, hashed."""
    command = [
        "uv",
        "export",
        "--locked",
        "--format",
        "requirements-txt",
        "--all-extras",
        "--no-dev",
        "--no-emit-project",
        "--no-header",
        "--no-annotate",
        "--directory",
        str(project),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError("uv is not installed here", "install it (`make` bootstraps it)") from None
    if done.returncode != 0:
        raise UserError(
            f"`uv export --locked` failed: {done.stderr.strip()[-600:]}",
            "run `uv lock` and commit uv.lock (it must match pyproject.toml)",
        )
    return done.stdout


def locked_requirements(packages: Iterable[str], project: Path = Path(".")) -> str:
    """The requirements file of `packages` and their dependencies, as uv.lock pins and hashes
    them."""
    lock_file = project / "uv.lock"
    if not lock_file.is_file():
        raise UserError(
            f"{lock_file} not found: the bento installs exactly the locked packages",
            "run from the project's root (with pyproject.toml and uv.lock)",
        )
    names = lock_closure(tomllib.loads(lock_file.read_text()), packages)
    return keep_packages(export_lock(project), names)
