"""`mlops package`: put the ACCEPTED model into the BentoML store, as ONNX, and export it for DVC.

It refuses a model the gate did not accept (exit 1, nothing written). Otherwise it exports the
trained model to ONNX (the family's `to_onnx`) and requires the export to agree with the trained
model on the WHOLE test split (every label the same, every probability within 1e-5) and to give
the same bytes when exported twice; else it stops, says which, and writes nothing. The served
files (model.onnx and its descriptor, artifacts/serving/, DVC-tracked) are what the service
runs: no pickle, no training library. They go into the project's BentoML store (BENTOML_HOME,
`.bentoml/` by default) under a tag whose version is the hash of those files, with labels and
metadata that say where it came from, and the store entry is exported to
artifacts/bento/model.bentomodel, which DVC tracks: a release imports exactly this file
(`bentoml models import`) and builds the bento from it.

The full record (lineage, params, metrics, the gate verdict) is also stored as provenance.json
inside the model, because BentoML metadata cannot hold nulls; the service's /metadata and the
release's model card read it from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from mlops_template import contract, model_io
from mlops_template.errors import UserError
from mlops_template.files import export_atomically, read_json, write_json
from mlops_template.params import Params, load_params
from mlops_template.paths import (
    BENTOMODEL_FILE,
    DATA_DVC,
    DVC_LOCK,
    GATE_FILE,
    MODEL_DIR,
    QUALITY,
    SERVING_DIR,
    TEST_CSV,
)
from mlops_template.records import DataRef, GateVerdict, ModelRecord, ProjectRecord, Provenance
from mlops_template.serving import onnx_model, store
from mlops_template.table import read_table

PROBA_TOLERANCE = 1e-5  # max |p_onnx - p_trained| on the test split; labels must all agree


class NotAccepted(UserError):
    """The gate verdict says no: packaging it would ship a rejected model."""


def require_accepted(verdict: GateVerdict, path: Path = GATE_FILE) -> None:
    if not verdict.accepted:
        reasons = "; ".join(verdict.reasons) or "no reason recorded"
        raise NotAccepted(
            f"the gate did not accept this model ({path}): {reasons}",
            "improve the model (or, deliberately, the rules under gate.rules in params.yaml) "
            "and rerun `dvc repro`; only accepted models are packaged",
        )


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None


def git_commit() -> str:
    """The commit checked out while packaging ("unknown" outside a git work tree)."""
    out = _git("rev-parse", "HEAD")
    return out.stdout.strip() if out and out.returncode == 0 else "unknown"


def work_tree_dirty() -> bool | None:
    """Whether files the pipeline does not write differ from HEAD (code, params, data.dvc,
    staged or not); None outside a git work tree. Untracked files do not count (as in
    `git describe --dirty`), nor do dvc.lock and the outputs it lists (metrics, plots), which
    any re-run rewrites."""
    from mlops_template.ci.repro import produced_paths, read_lock

    out = _git("diff", "--name-only", "HEAD", "--")
    if out is None or out.returncode != 0:
        return None
    produced = produced_paths(read_lock(DVC_LOCK) or {}) | {str(DVC_LOCK)}
    changed = [line for line in out.stdout.splitlines() if line.strip()]
    return any(not any(path == p or path.startswith(p + "/") for p in produced) for path in changed)


def data_md5(dvc_file: Path = DATA_DVC) -> str:
    from mlops_template.stages.data import recorded_hash

    return recorded_hash(dvc_file)[1]


def _without_nulls(value: Any) -> Any:
    """BentoML metadata rejects None: drop unset keys (the full record keeps them)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def onnx_export(model: contract.ModelFamily, family: str) -> bytes:
    """The family's ONNX export, which must give the same bytes twice (the tag is its hash)."""
    fix = f"custom/families/{family}.py (README: 'Add your own model family')"
    try:
        graph = model.to_onnx()
        again = model.to_onnx()
    except NotImplementedError as exc:
        raise UserError(
            f"the {family!r} family cannot be served: {exc}", f"write to_onnx in {fix}"
        ) from None
    except ImportError as exc:
        raise model_io.missing_packages(family, exc) from None
    if graph != again:
        raise UserError(
            f"the {family!r} family's to_onnx gives different bytes on each call, so the served "
            "model's tag (the hash of its files) would change on every packaging",
            f"make the export deterministic (fixed graph and node names, no timestamps) in {fix}",
        )
    return graph


def check_agreement(
    trained: np.ndarray, exported: np.ndarray, tolerance: float = PROBA_TOLERANCE
) -> None:
    """The export must give the trained model's labels on every row, and its probabilities
    within `tolerance`."""
    problems = []
    if trained.shape != exported.shape:
        problems.append(
            f"it gives {exported.shape} probabilities, the trained model {trained.shape}"
        )
    elif len(trained):
        differ = int(np.sum(trained.argmax(axis=1) != exported.argmax(axis=1)))
        gap = float(np.max(np.abs(trained - exported)))
        if differ:
            problems.append(f"{differ} of {len(trained)} test rows get another label")
        if not gap <= tolerance:  # NaN too
            problems.append(f"probabilities differ by up to {gap:.2e} (tolerance {tolerance:g})")
    if problems:
        raise UserError(
            "the ONNX export disagrees with the trained model on the test split: "
            + "; ".join(problems)
            + "; nothing was packaged",
            "fix the family's to_onnx (the same preprocessing, float precision and class order "
            "as predict_proba); `dvc repro package` checks it again",
        )


def export_serving_model(
    params: Params,
    model_dir: Path = MODEL_DIR,
    test_csv: Path = TEST_CSV,
    target: Path = SERVING_DIR,
) -> onnx_model.ServingDescriptor:
    """Export the trained model to ONNX, check it on the whole test split, write `target`."""
    trained = model_io.load_model(model_dir)
    family = trained.descriptor.family
    graph = onnx_export(trained.model, family)
    descriptor = onnx_model.ServingDescriptor(
        family=family,
        variant=trained.descriptor.variant,
        batchable=contract.get_family(family).batchable,
        spec=trained.spec,
    )
    served = onnx_model.OnnxModel(graph, descriptor)
    X = trained.spec.frame(read_table(test_csv, params))
    check_agreement(trained.predict_proba(X), served.predict_proba(X))
    onnx_model.write_serving_dir(target, graph, descriptor)
    return descriptor


def provenance_record(verdict: GateVerdict) -> Provenance:
    descriptor = model_io.read_descriptor(MODEL_DIR)
    params = load_params()
    return Provenance(
        project=ProjectRecord(**params.project.model_dump()),
        model=ModelRecord(
            name=store.model_name(params.project.name),
            version=store.model_version(SERVING_DIR),
            family=descriptor.family,
            architecture=descriptor.variant,
            classes=list(descriptor.spec.classes),
            features=descriptor.spec.names,
            spec=descriptor.spec.model_dump(mode="json"),
        ),
        git_commit=git_commit(),
        dirty=work_tree_dirty(),
        data=DataRef(dvc_file=str(DATA_DVC), md5=data_md5()),
        params=params.model_dump(by_alias=True, mode="json"),
        metrics=read_json(QUALITY, "run `dvc repro evaluate` first"),
        gate=verdict,
    )


def labels_and_metadata(record: Provenance) -> tuple[dict[str, str], dict[str, Any]]:
    model, gate = record.model, record.gate
    labels = {
        "family": model.family,
        "architecture": model.architecture,
        "gate": "accepted" if gate.accepted else "rejected",
        "git-commit": record.git_commit,
        "data-md5": record.data.md5,
    }
    metadata = _without_nulls(
        {
            "family": model.family,
            "architecture": model.architecture,
            "classes": model.classes,
            "git_commit": record.git_commit,
            "data_md5": record.data.md5,
            "params": record.params,
            "metrics": record.metrics,
            "gate": {
                "accepted": gate.accepted,
                "summary": gate.summary,
                "baseline": gate.baseline.source,
            },
        }
    )
    return labels, metadata


def save_to_store(tag: str, record: Provenance) -> Any:
    """Save the served files plus provenance.json under `tag`; an identical entry is reused."""
    import bentoml
    from bentoml.exceptions import NotFound

    labels, metadata = labels_and_metadata(record)
    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        stored = store.read_provenance(existing.path).to_json()
        if existing.info.labels == labels and stored == record.to_json():
            return existing
        bentoml.models.delete(tag)  # same files, newer record (e.g. a new verdict): replace it
    with bentoml.models.create(tag, labels=labels, metadata=metadata) as bento_model:
        shutil.copytree(SERVING_DIR, bento_model.path, dirs_exist_ok=True)
        write_json(bento_model.path_of(store.PROVENANCE), record.to_json())
    return bentoml.models.get(tag)


def export_bentomodel(tag: str, target: Path = BENTOMODEL_FILE) -> Path:
    """`bentoml export` of the model, with no half-written file on failure."""
    import bentoml

    return export_atomically(target, lambda path: bentoml.models.export_model(tag, path))


def package() -> Provenance:
    """Export, store and export the accepted model; its record (with its tag) is returned."""
    verdict = GateVerdict.read(GATE_FILE)
    require_accepted(verdict)
    export_serving_model(load_params())
    record = provenance_record(verdict)
    save_to_store(record.tag, record)
    export_bentomodel(record.tag)
    return record


@click.command("package", help=__doc__)
def package_command() -> int:
    try:
        record = package()
    except NotAccepted as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"fix: {exc.hint}", file=sys.stderr)
        return 1
    home = os.environ.get("BENTOML_HOME", "~/bentoml")
    print(f"packaged {record.model.family} model {record.tag} -> {BENTOMODEL_FILE} (store: {home})")
    return 0
