"""`mlops data`: make data/ match data.dvc, from the DVC cache, else a remote, else the example.

It never trains on bytes that data.dvc does not record: an edited data/ without `dvc add`, or a
regenerated example that differs, stops here with the fix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import click
import yaml

from mlops_template.errors import UserError
from mlops_template.params import load_params
from mlops_template.paths import DATA_DVC

DVC_FILE = DATA_DVC


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dvc", *args], capture_output=True, text=True)


def recorded_hash(dvc_file: Path = DVC_FILE) -> tuple[Path, str]:
    """The path and md5 that data.dvc records for its one output."""
    if not dvc_file.exists():
        raise UserError(
            f"{dvc_file} not found", "track your data with `dvc add data` and commit data.dvc"
        )
    try:
        (out,) = yaml.safe_load(dvc_file.read_text())["outs"]
        return Path(out["path"]), str(out["md5"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        raise UserError(
            f"{dvc_file} is not a valid DVC file with one output",
            "restore it from git (`git checkout data.dvc`)",
        ) from None


def workspace_hash(path: Path) -> str | None:
    """DVC's md5 of a file, or of a directory (md5 of its sorted file manifest + '.dir')."""
    if path.is_file():
        return hashlib.md5(path.read_bytes()).hexdigest()
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
    if not files:
        return None
    manifest = [
        {"md5": hashlib.md5(f.read_bytes()).hexdigest(), "relpath": f.relative_to(path).as_posix()}
        for f in files
    ]
    return hashlib.md5(json.dumps(manifest, sort_keys=True).encode()).hexdigest() + ".dir"


def data_state(dvc_file: Path = DVC_FILE) -> str:
    """'ok' when the workspace matches data.dvc, 'missing' when absent, else 'modified'."""
    path, expected = recorded_hash(dvc_file)
    actual = workspace_hash(path)
    if actual is None:
        return "missing"
    return "ok" if actual == expected else "modified"


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def _has_remote() -> bool:
    listed = _dvc("remote", "list")
    return listed.returncode == 0 and bool(listed.stdout.strip())


def _from_cache(dvc_file: Path) -> bool:
    return _dvc("checkout", str(dvc_file)).returncode == 0 and data_state(dvc_file) == "ok"


def _from_remote(dvc_file: Path) -> None:
    pulled = _dvc("pull", str(dvc_file))
    if pulled.returncode != 0 or data_state(dvc_file) != "ok":
        raise UserError(
            f"`dvc pull {dvc_file}` failed: {_last_line(pulled.stderr)}",
            "check the remote's credentials (`dvc remote list`, `dvc pull -v`), or remove the "
            "remote to use the bundled example",
        )


def _from_example(dvc_file: Path, data_path: Path) -> None:
    """Regenerate the example next to data/, then swap it in only if it matches data.dvc."""
    from mlops_template.custom.dataset import write_example_data  # a fork may delete it

    data_dir = Path(data_path.parts[0])
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir="."))
    try:
        write_example_data(staging / data_path.relative_to(data_dir))
        if data_dir.exists():
            shutil.rmtree(data_dir)
        staging.rename(data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if data_state(dvc_file) != "ok":
        shutil.rmtree(data_dir)
        raise UserError(
            f"{dvc_file} records data that is not the bundled example (your own data, or an "
            "example written by another environment), and no DVC remote is configured to "
            "fetch it from",
            "configure the DVC remote that holds the data and commit .dvc/config (README: "
            "'DVC remote with OIDC'; `dvc remote add -d storage s3://BUCKET/dvc`, then "
            "`dvc push` where the data is); or put the data in data/ and run `dvc add data`",
        )
    _dvc("commit", "--force", str(dvc_file))  # put the bytes in the local cache for push/checkout


def ensure_data(dvc_file: Path = DVC_FILE, data_path: Path | None = None) -> str:
    """Make the workspace data match data.dvc; returns where it came from."""
    data_path = data_path or Path(load_params().data.path)
    state = data_state(dvc_file)
    if state == "ok":
        return "workspace"
    if state == "modified":
        raise UserError(
            "data/ differs from what data.dvc records",
            "to keep your new data: `dvc add data` and commit data.dvc; "
            "to discard the edit: `dvc checkout --force data.dvc`",
        )
    if _from_cache(dvc_file):
        return "cache"
    if _has_remote():
        _from_remote(dvc_file)
        return "remote"
    _from_example(dvc_file, data_path)
    return "bootstrap"


@click.command("data", help=__doc__)
@click.option("--source-file", help="write where the data came from into this file")
def data(source_file: str | None) -> None:
    source = ensure_data()
    messages = {
        "workspace": "data/ matches data.dvc",
        "cache": "data/ restored from the DVC cache",
        "remote": "data/ pulled from the DVC remote",
        "bootstrap": "data/ regenerated from the bundled example (no DVC remote configured) "
        "and checked against data.dvc",
    }
    print(messages[source])
    if source_file:
        Path(source_file).write_text(source + "\n")
