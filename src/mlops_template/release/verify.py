"""`mlops release reproduced` and `mlops release gate`: may this commit's model be released?

reproduced  reads the record `mlops ci repro` wrote (build/ci/repro.json) and fails unless CI
            reproduced the pipeline: the committed dvc.lock was up to date and nothing
            contradicted the committed metrics, or CI recomputed the committed
            metrics/quality.json (exactly, or within params.yaml ci.tolerances). Metrics that CI
            computed differently always fail: the release would ship numbers nobody can get.
gate        runs the acceptance gate (params.yaml gate.rules) on the metrics CI computed, against
            the metrics committed at the previous release's tag (`--baseline TAG`); the first
            release (`--baseline ""`) has no baseline, so only the value bounds (min, max)
            apply. A rejected model fails the step with the reasons as error annotations, so
            the release stops there.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlops_template.ci import gha
from mlops_template.cli import baseline_option, out_option, params_option
from mlops_template.paths import DVC_LOCK, MODEL_DIR, RELEASE_VERDICT, REPRO_FILE
from mlops_template.records import ReproRecord


def reproduction_problems(record: ReproRecord) -> list[str]:
    """Why CI's run does not vouch for the committed results (empty: it does)."""
    if record.metrics_reproduced is True:
        return []
    if record.metrics_reproduced is False:
        return [
            "CI did not reproduce the committed metrics/quality.json",
            *(m.describe() for m in record.mismatches),
            *record.notes,
        ]
    if record.lock_up_to_date:
        return []
    return ["dvc.lock is out of date and no committed metrics were reproduced", *record.notes]


@click.command(
    "reproduced",
    help="Fail unless CI reproduced the pipeline: dvc.lock up to date and nothing contradicting "
    "the committed metrics, or the committed metrics/quality.json recomputed within "
    "params.yaml ci.tolerances.",
)
@click.option("--file", type=click.Path(path_type=Path), default=REPRO_FILE, show_default=True)
def reproduced(file: Path) -> int:
    with gha.annotated("mlops release reproduced"):
        record = ReproRecord.read(file)
    problems = reproduction_problems(record)
    if not problems:
        how = (
            "committed metrics reproduced in CI"
            if record.metrics_reproduced
            else "dvc.lock up to date"
        )
        print(f"reproducible: {how}")
        return 0
    for problem in problems:
        gha.annotate("error", problem, title="Not reproducible")
    gha.annotate(
        "error",
        "no release: run `dvc repro` on main, commit dvc.lock and the metrics it writes, "
        "and tag that commit",
        title="Not reproducible",
    )
    return 1


def model_hash(lock_text: str | None) -> str | None:
    """The hash dvc.lock records for the trained model (artifacts/model), or None."""
    import yaml

    if not lock_text:
        return None
    stages = (yaml.safe_load(lock_text) or {}).get("stages") or {}
    for stage in stages.values():
        for out in (stage or {}).get("outs") or []:
            if str(out.get("path", "")).rstrip("/") == str(MODEL_DIR):
                return str(out.get("md5"))
    return None


def recorded_model_problem(committed_lock: str | None, workspace_lock: str | None) -> str | None:
    """Why the model this run holds is not the one the tagged commit records (None: it is)."""
    committed, here = model_hash(committed_lock), model_hash(workspace_lock)
    if committed is None:
        return f"the tagged commit's dvc.lock records no {MODEL_DIR} (run `dvc repro`, commit)"
    if here != committed:
        return (
            f"this run's {MODEL_DIR} ({here}) is not the model the tagged commit's dvc.lock "
            f"records ({committed}): training here did not give the same bytes, so the release "
            "would ship a model nobody reviewed"
        )
    return None


@click.command(
    "recorded",
    help="Fail unless the trained model here has exactly the hash the tagged commit's dvc.lock "
    "records (pulled from the DVC remote, or retrained to the same bytes).",
)
@click.option("--rev", default="HEAD", show_default=True, help="the tagged commit")
def recorded(rev: str) -> int:
    from mlops_template.metrics_io import git_show

    with gha.annotated("mlops release recorded"):
        committed = git_show(rev, str(DVC_LOCK))
    workspace = DVC_LOCK.read_text() if DVC_LOCK.exists() else None
    problem = recorded_model_problem(committed, workspace)
    if problem is None:
        print(f"the model is the one {rev}'s dvc.lock records ({model_hash(committed)})")
        return 0
    gha.annotate("error", problem, title="Not the recorded model")
    gha.annotate(
        "error",
        "no release: configure a DVC remote (README: 'DVC remote with OIDC') and push the "
        "model from main (`dvc push`), so the release pulls exactly those bytes; or commit "
        "dvc.lock from a machine whose training gives the same bytes (x86-64 with AVX2)",
        title="Not the recorded model",
    )
    return 1


@click.command(
    "gate",
    help="Gate the metrics CI computed against the previous release's committed metrics "
    '(`--baseline TAG`; `--baseline ""` for the first release: value bounds only). A rejected '
    "model fails the step with the reasons as error annotations.",
)
@baseline_option("the previous release's tag (empty: the first release, no baseline)", default="")
@params_option()
@out_option(RELEASE_VERDICT)
def gate(baseline: str, params: Path, out: Path) -> int:
    from mlops_template.ci.verdict import report_rejection
    from mlops_template.stages.gate import gate_and_show

    with gha.annotated("mlops release gate"):
        verdict = gate_and_show(params, baseline, out=out)
    gha.set_output("accepted", "true" if verdict.accepted else "false")
    gha.set_output("summary", verdict.summary)
    if verdict.accepted:
        return 0
    return report_rejection(verdict.record())
