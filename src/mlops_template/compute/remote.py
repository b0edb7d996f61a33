"""`train.compute: ray`: the train stage's fit, on the Ray cluster.

A family with a Ray Train trainer (the contract's `ray_trainer`) trains data-parallel on
`num_workers` workers (`ray_train.py`). Any other family's fit runs on one worker: exactly what
`local` runs (`stages.train.fit_logged`, through the model contract) with the same determinism
pins; the worker reads the split file itself (the data never passes through this process),
saves the model and the DVCLive files in a temporary directory and sends those files back;
they replace artifacts/model/ and dvclive/ only once everything succeeded. Limits, for now:
- The workers read the split at the path this process sees: one machine, or a cluster whose
  nodes mount the repository at the same path (e.g. a volume in a KubeRay pod template).
- Without `ray_trainer`, the fit is one process: it runs on one worker of `num_workers`.
- The model's files come back through Ray's object store: fine for models up to a few GB.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlops_template import contract
from mlops_template.compute import cluster, ray_train
from mlops_template.errors import UserError
from mlops_template.model_io import (
    ModelDescriptor,
    read_descriptor,
    write_dir_atomically,
    write_model_dir,
)
from mlops_template.params import Params
from mlops_template.paths import LIVE_DIR, MODEL_DIR, TRAIN_CSV
from mlops_template.table import feature_spec, read_header

Tree = dict[str, bytes]  # relative path -> content


def read_tree(root: Path) -> Tree:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def replace_tree(target: Path, tree: Tree) -> None:
    """Write `tree` into a temp dir beside `target`, then swap it in (never half-written)."""

    def fill(tmp: Path) -> None:
        for rel, data in tree.items():
            path = tmp / rel
            if not path.resolve().is_relative_to(tmp.resolve()):
                raise ValueError(f"{rel!r} is outside the output directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    write_dir_atomically(target, fill)


def fit_on_worker(
    params: Params, train_csv: str, name: str, family: type[contract.ModelFamily]
) -> dict[str, Any]:
    """Runs on a Ray worker: the stage's fit, with its outputs returned as files.

    The family class comes with the call, so a family registered at run time (a plugin) works
    there too. A UserError comes back as a value (its fix would not survive pickling)."""
    from mlops_template.stages.train import fit_logged

    if name not in contract.family_names():
        contract.register_family(name, family)
    try:
        if not Path(train_csv).is_file():
            raise UserError(
                f"the Ray worker cannot read the split file {train_csv}",
                "the workers read the split where `mlops train` sees it: run on one machine, "
                "or mount the repository at the same path on every node of the cluster",
            )
        with tempfile.TemporaryDirectory() as tmp:
            model = fit_logged(params, Path(train_csv), Path(tmp) / "live")
            write_model_dir(Path(tmp) / "model", model, name)
            return {"model": read_tree(Path(tmp) / "model"), "live": read_tree(Path(tmp) / "live")}
    except UserError as exc:
        return {"error": [exc.message, exc.hint]}


def train_on_ray(params: Params) -> ModelDescriptor:
    compute = params.train.compute
    name = params.train.family
    train_csv = TRAIN_CSV.resolve()
    if not train_csv.is_file():
        raise UserError(f"{TRAIN_CSV} not found", "run `dvc repro prepare` first")
    family = contract.get_family(name)
    spec = feature_spec(params, read_header(TRAIN_CSV))
    model = family(params.train.family_params, spec, params.train.seed)
    with cluster.connected() as ray:
        descriptor = ray_train.fit_with_trainer(model, params)
        if descriptor is not None:
            return descriptor
        task = ray.remote(num_cpus=compute.cpus_per_worker, max_retries=0)(fit_on_worker)
        try:
            out = ray.get(task.remote(params, str(train_csv), name, family))
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
            raise UserError(
                f"the Ray worker fitting the model died ({type(exc).__name__})",
                "look at the cluster's logs (often memory): give the workers larger nodes",
            ) from None
    if "error" in out:
        raise UserError(*out["error"])
    replace_tree(LIVE_DIR, out["live"])
    replace_tree(MODEL_DIR, out["model"])
    if compute.num_workers > 1:
        print(
            f"note: the {name} family's fit is one process: it ran on 1 of the "
            f"{compute.num_workers} workers train.compute.num_workers asks for"
        )
    return read_descriptor(MODEL_DIR)
