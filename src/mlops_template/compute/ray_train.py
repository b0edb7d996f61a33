"""`train.compute: ray` for a family with a Ray Train trainer (the contract's `ray_trainer`):
data-parallel training on `num_workers` workers.

The driver (`mlops train`) reads the split file into Ray's object store through Ray Data (read
tasks on the cluster; the rows never pass through this process), hands the family the common
trainer arguments, runs the trainer, and turns the checkpoint of rank 0 (the files `save`
wrote, and the DVCLive files) into artifacts/model/ (loaded with the family's `load`, written
with its descriptor by model_io) and dvclive/, each swapped in whole once all of it is ready.

`worker_loop` is what runs on each worker: the split's rows as the feature frame and class
indices, the family's fit, the training accuracy on rank 0's DVCLive, `save` on every worker
(a collective library may need all workers there), a checkpoint from rank 0.

Determinism: with the same `num_workers` and seed, two runs give the same model and metrics
(tested): every worker gets every row in the file's order (Ray Data with order preserved) and
takes its share by rank, and the pins of `determinism` reach the workers. What differs from
`local`, and why: the data-parallel fit is another computation. Each worker fits on its share
(the LightGBM example: histograms of each share, summed over the network; the Keras example:
each global batch split over the workers, gradients averaged), so the trees or weights, and
then the metrics, are not those of one process on all rows. The CI reproducibility check
compares a run with the committed results of the same `train.compute`, so commit results made
with the backend CI uses.

Limits: every worker holds all rows of the split (like `local`, once per worker; the families'
preprocessing statistics need them all), so the split must fit in a worker's memory; the split
file and the checkpoint directory (beside artifacts/model/) are read and written at the paths
this process sees: one machine, or a cluster whose nodes mount the repository at the same path.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_template import contract
from mlops_template.errors import UserError
from mlops_template.model_io import DESCRIPTOR, ModelDescriptor
from mlops_template.params import Params
from mlops_template.paths import LIVE_DIR, MODEL_DIR, TRAIN_CSV

TRAIN = "train"  # the dataset's name in the trainer
CHECKPOINT_MODEL = "model"  # what `save` wrote, in rank 0's checkpoint
CHECKPOINT_LIVE = "live"  # DVCLive's files, in rank 0's checkpoint
ACCURACY = "train/accuracy"

Fit = Callable[[contract.ModelFamily, Any, Any, Any, int, int], None]


class WorkerUserError(Exception):
    """A UserError raised on a worker: message and fix both survive pickling (in `args`)."""

    def __init__(self, message: str, hint: str | None) -> None:
        super().__init__(message, hint)


# ----------------------------------------------------------------------------- on a worker


def worker_loop(fit: Fit) -> Callable[[dict[str, Any]], None]:
    """The `train_loop_per_worker` of a family's trainer, around its `fit` (see the contract)."""
    return functools.partial(_run_worker, fit=fit)


def _run_worker(config: dict[str, Any], fit: Fit) -> None:
    import ray.train

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    model: contract.ModelFamily = config["model"]
    try:
        rows = ray.train.get_dataset_shard(TRAIN).materialize().to_pandas()
        spec = model.spec
        X, y = spec.frame(rows), spec.class_indices(rows[spec.target])
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / CHECKPOINT_MODEL).mkdir()
            live = _live(out / CHECKPOINT_LIVE) if rank == 0 else None
            try:
                fit(model, X, y, live, rank, world)
                accuracy = float((model.predict_proba(X).argmax(axis=1) == y).mean())
                if live is not None:
                    live.summary[ACCURACY] = round(accuracy, 6)
            finally:
                if live is not None:
                    live.end()
            model.save(out / CHECKPOINT_MODEL)
            checkpoint = ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None
            ray.train.report({ACCURACY: accuracy}, checkpoint=checkpoint)
    except UserError as exc:
        raise WorkerUserError(exc.message, exc.hint) from None


def _live(directory: Path) -> Any:
    """DVCLive as the local fit opens it (stages/train.py)."""
    from dvclive import Live

    return Live(str(directory), dvcyaml=False, save_dvc_exp=False, report=None)


# ----------------------------------------------------------------------------- the driver


def trainer_args(model: contract.ModelFamily, params: Params, storage: Path) -> dict[str, Any]:
    """What every family's trainer takes: the split (materialized in the object store, read
    from the file by the cluster), the scaling, where checkpoints go, the unfitted model."""
    import ray.data
    import ray.train

    compute = params.train.compute
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress, on every run
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows in the file's order
    context.enable_progress_bars = False
    train = ray.data.read_csv(str(TRAIN_CSV.resolve()), convert_options=_types(params))
    return {
        "train_loop_config": {"model": model},
        "datasets": {TRAIN: train.materialize()},  # before the workers hold the CPUs
        "dataset_config": ray.train.DataConfig(datasets_to_split=[]),  # all rows to each
        "scaling_config": ray.train.ScalingConfig(
            num_workers=compute.num_workers,
            resources_per_worker={"CPU": compute.cpus_per_worker},
        ),
        "run_config": ray.train.RunConfig(name="train", storage_path=str(storage)),
    }


def _types(params: Params) -> Any:
    """Read the columns the schema types as strings as strings (as `table.read_table` does)."""
    import pyarrow as pa
    import pyarrow.csv

    from mlops_template.table import read_header

    schema = params.schema_
    names = [n for n in read_header(TRAIN_CSV) if (r := schema.rule_for(n)) and r.dtype == "str"]
    if any(isinstance(c, str) for c in schema.classes):
        names.append(params.data.target)
    return pyarrow.csv.ConvertOptions(column_types={n: pa.string() for n in names})


def fit_with_trainer(model: contract.ModelFamily, params: Params) -> ModelDescriptor | None:
    """Fit through the family's trainer and write the outputs; None when it has none (and
    then nothing was read: a family without the hook runs as before)."""
    if type(model).ray_trainer is contract.ModelFamily.ray_trainer:
        return None
    import ray.train

    MODEL_DIR.parent.mkdir(parents=True, exist_ok=True)
    storage = Path(tempfile.mkdtemp(prefix=".ray-train-", dir=MODEL_DIR.parent)).resolve()
    try:
        try:
            trainer = model.ray_trainer(trainer_args(model, params, storage))
        except FileNotFoundError as exc:
            raise UserError(
                f"the Ray cluster cannot read the split file ({exc})",
                "the cluster reads the split where `mlops train` sees it: run on one machine, "
                "or mount the repository at the same path on every node",
            ) from None
        if trainer is None:
            return None
        try:
            result = trainer.fit()
        except (ray.train.TrainingFailedError, ray.exceptions.RayError) as exc:
            raise training_error(exc, params.train.compute.num_workers) from None
        if result.checkpoint is None:
            raise UserError(
                f"the {params.train.family} family's Ray trainer reported no checkpoint",
                "its worker loop must be mlops_template.compute.ray_train.worker_loop(fit)",
            )
        with result.checkpoint.as_directory() as files:
            descriptor = write_outputs(model, params.train.family, Path(files))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    n = params.train.compute.num_workers
    print(f"trained data-parallel on {n} Ray worker{'s' if n > 1 else ''} (Ray Train)")
    return descriptor


def training_error(exc: Exception, workers: int) -> UserError:
    """One message for a failed fit: a worker's UserError as it was raised, or the failure's
    last line (a Ray traceback says what happened at its end)."""
    failures = getattr(exc, "worker_failures", None) or {}
    for failure in failures.values():
        cause = failure
        while cause is not None:
            if isinstance(cause, WorkerUserError):
                return UserError(*cause.args)
            cause = cause.__cause__
    lines = str(next(iter(failures.values()), exc)).strip().splitlines()
    return UserError(
        f"training on the Ray cluster failed ({workers} workers): {lines[-1] if lines else exc}",
        "look at the cluster's logs (a worker that died is often out of memory: give the "
        "workers larger nodes, or lower train.compute.num_workers)",
    )


def write_outputs(model: contract.ModelFamily, name: str, checkpoint: Path) -> ModelDescriptor:
    """artifacts/model/ (the files rank 0's `save` wrote, as written, and the descriptor) and
    dvclive/, each swapped in whole. Nothing is replaced unless the family's `load` reads the
    model. The files are not saved again here: a pickle written by a long-lived process (a
    test's) can differ in layout from run to run, and the worker's are the trained model's."""
    from mlops_template.compute.remote import read_tree, replace_tree

    family = type(model)
    try:
        fitted = family.load(checkpoint / CHECKPOINT_MODEL, model.params, model.spec, model.seed)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"the model in the Ray Train checkpoint does not load ({exc})",
            "the family's worker loop must be mlops_template.compute.ray_train.worker_loop(fit)"
            ", which saves the model with the family's `save`",
        ) from None
    descriptor = ModelDescriptor.of(fitted, name)
    files = read_tree(checkpoint / CHECKPOINT_MODEL)
    files[DESCRIPTOR] = descriptor.to_bytes()
    live = read_tree(checkpoint / CHECKPOINT_LIVE)
    replace_tree(LIVE_DIR, live)
    replace_tree(MODEL_DIR, files)
    return descriptor
