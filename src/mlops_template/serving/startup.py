"""What the service checks before it serves, and the line it logs when it does.

- Which model: the exact tag (a bento records it; a dev server takes the packaged model of
  the checkout). Nothing packaged yet, or a BentoML store that does not hold the tag (the
  store is `.bentoml/` in the repository, but BentoML looks in ~/bentoml unless BENTOML_HOME
  says otherwise), stops the server with one message saying what to run.
- The files are the ones packaged: a model's version is the hash of its files
  (store.model_version), so the stored files are hashed again and must give the tag's version.
  A file changed after packaging (tampering, a partial copy, a disk error) stops the server.

`exit_on_user_error` turns these into `error: ... / fix: ...` on stderr and exit status 2, as
the `mlops` CLI reports mistakes: `bentoml serve` would print ~55 lines of traceback.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_template.contract import FeatureSpec
from mlops_template.errors import UserError
from mlops_template.paths import SERVING_DIR
from mlops_template.serving import config, store
from mlops_template.signing import SIGNATURE_NAME

BENTOML_MODEL_FILE = "model.yaml"  # BentoML's own record in a stored model, not a model file
LISTED_COLUMNS = 8  # columns described in the start-up line

SERVE_HINT = (
    "run `make run` first (it trains and packages the model), then `make serve`; or serve an "
    "exact packaged tag: `bentoml serve --arg model_tag=NAME:VERSION`"
)


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """One message and exit status 2 for an expected start-up mistake; no traceback."""
    try:
        yield
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"fix: {exc.hint}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(2) from None


def service_args() -> config.ServiceArgs:
    """The template arguments (`--arg key=value`), or one message naming each bad one."""
    import bentoml
    from pydantic import ValidationError

    try:
        return bentoml.use_arguments(config.ServiceArgs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(
            f"invalid --arg: {problems}", "see src/mlops_template/serving/config.py"
        ) from None


def served_tag(explicit: str | None, root: Path | None = None) -> str:
    """The exact tag to serve (see store.served_model_tag), with the fix a server user needs."""
    root = root or Path.cwd()
    if not explicit and not (root / SERVING_DIR / "model.json").exists():
        raise UserError(
            f"no model to serve: nothing is packaged in {root} (no {SERVING_DIR}/model.json)",
            SERVE_HINT,
        )
    return store.served_model_tag(explicit, root)


def stored_model(tag: str) -> Any:
    """The stored model with exactly this tag, or one message naming the store searched."""
    try:
        return store.get_stored_model(tag)
    except UserError:
        home = os.environ.get("BENTOML_HOME")
        where = home or "~/bentoml (BENTOML_HOME is not set)"
        raise UserError(
            f"model {tag} is not in the BentoML store at {where}",
            "`mlops package` stores it in .bentoml/ of the repository: serve with "
            "BENTOML_HOME=$PWD/.bentoml (`make serve` sets it), or run `make run` first if "
            "nothing is packaged yet",
        ) from None


def stored_files_version(model_path: Path | str) -> str:
    """The version the stored model's files hash to, as the package stage hashed them: the
    store adds BentoML's model.yaml and provenance.json, which are not model files."""
    model_path = Path(model_path)
    extra = {BENTOML_MODEL_FILE, store.PROVENANCE, SIGNATURE_NAME}
    with tempfile.TemporaryDirectory(prefix="model-files-") as mirror:
        for path in model_path.rglob("*"):
            relative = path.relative_to(model_path)
            if not path.is_file() or relative.as_posix() in extra:
                continue
            link = Path(mirror) / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
        return store.model_version(mirror)


def verify_files(tag: str, model_path: Path | str) -> None:
    """Refuse a stored model whose files no longer hash to its tag's version."""
    _, version = store.split_tag(tag)
    try:
        actual = stored_files_version(model_path)
    except UserError:
        actual = "nothing (no model files)"
    if actual != version:
        raise UserError(
            f"model {tag} was changed after packaging: its files in {model_path} hash to "
            f"{actual}, not {version}",
            f"replace it with the packaged copy: `bentoml models delete -y {tag}` and "
            "`bentoml models import artifacts/bento/model.bentomodel` (or `dvc repro package "
            "--force`)",
        )


def describe_spec(spec: FeatureSpec, max_rows: int) -> str:
    columns = [
        f"{c.name} ({c.describe()}{', or null' if c.nullable else ''})" for c in spec.columns
    ]
    text = f"{len(columns)} columns: " + ", ".join(columns[:LISTED_COLUMNS])
    if len(columns) > LISTED_COLUMNS:
        text += f" and {len(columns) - LISTED_COLUMNS} more"
    if spec.shape:
        text += f"; or nested as {'x'.join(map(str, spec.shape))}"
    return f"{text}; 1..{max_rows} instances per request"


def startup_line(
    tag: str, family: str, spec: FeatureSpec, max_rows: int, limits: dict[str, Any]
) -> str:
    """The one line the server logs when it starts serving: what, and with which limits."""
    knobs = ", ".join(f"{k}={v}" for k, v in limits.items())
    return (
        f"serving model {tag} (family {family}, classes {list(spec.classes)}); input: "
        f"{describe_spec(spec, max_rows)}; {knobs}"
    )
