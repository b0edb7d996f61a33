"""`mlops release verify-pulls`: the release re-hashes every object it pulls from the DVC remote.

DVC trusts what its remote sends unless the remote's `verify` option is on (it is off by
default): with it, `dvc pull`/`dvc fetch` recompute each downloaded file's hash and refuse one
that does not match its name, so a tampered or corrupted object in the bucket cannot reach the
release. The option is set in .dvc/config.local (the clone's own, never committed), for the
remote the release pulls from (the default one), so the committed configuration is unchanged.
"""

from __future__ import annotations

import subprocess

import click

from mlops_template.ci import gha
from mlops_template.ci.remote import default_remote
from mlops_template.errors import UserError


def verify_default_remote() -> str | None:
    """Turn `verify` on for the default DVC remote; its name, or None without a remote."""
    found = default_remote()
    if found is None:
        return None
    name, _ = found
    done = subprocess.run(
        ["dvc", "remote", "modify", "--local", name, "verify", "true"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise UserError(
            f"`dvc remote modify --local {name} verify true` failed: {done.stderr.strip()}",
            "check .dvc/config (`dvc remote list`)",
        )
    return name


@click.command("verify-pulls", help=__doc__)
def verify_pulls() -> None:
    with gha.annotated("mlops release verify-pulls"):
        name = verify_default_remote()
    if name is None:
        print("no DVC remote: nothing is pulled, the pipeline re-runs from the data")
    else:
        print(f"DVC remote {name!r}: every pulled object is re-hashed (verify = true)")
