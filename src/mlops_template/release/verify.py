"""`mlops release reproduced` and `mlops release gate`: may this commit's model be released?

reproduced  reads the record `mlops ci repro` wrote (build/ci/repro.json) and fails unless CI
            reproduced the pipeline: the committed dvc.lock was up to date and nothing
            contradicted the committed metrics, or CI recomputed the committed
            metrics/quality.json within params.yaml ci.metrics_tolerance. Metrics that CI
            computed differently always fail: the release would ship numbers nobody can get.
gate        runs the acceptance gate (params.yaml gate.rules) on the metrics CI computed, against
            the metrics committed at the previous release's tag; the first release has no
            baseline, so only the value bounds (min, max) apply. A rejected model fails the step
            with the reasons as error annotations, so the release stops there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.release.tags import annotated

REPRO_FILE = Path("build/ci/repro.json")
VERDICT_FILE = Path("dist/gate-verdict.json")


def reproduction_problems(record: dict[str, Any]) -> list[str]:
    """Why CI's run does not vouch for the committed results (empty: it does)."""
    reproduced = record.get("metrics_reproduced")
    up_to_date = record.get("lock_up_to_date")
    notes = [str(n) for n in record.get("notes") or []]
    if reproduced is True:
        return []
    if reproduced is False:
        return [
            "CI did not reproduce the committed metrics/quality.json within "
            f"{record.get('tolerance')}",
            *notes,
        ]
    if up_to_date is True:
        return []
    return ["dvc.lock is out of date and no committed metrics were reproduced", *notes]


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{path} not found", "run the repro action (`mlops ci repro`) before this step"
        ) from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON", "rerun `mlops ci repro`") from None
    if not isinstance(record, dict):
        raise UserError(f"{path} holds no reproducibility record", "rerun `mlops ci repro`")
    return record


def run_reproduced(args: argparse.Namespace) -> int:
    with annotated("mlops release reproduced"):
        record = read_record(Path(args.file))
    problems = reproduction_problems(record)
    if not problems:
        how = (
            "committed metrics reproduced in CI"
            if record.get("metrics_reproduced")
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


def release_gate(
    previous_tag: str | None, params: Path = Path("params.yaml"), out: Path = VERDICT_FILE
) -> Any:
    """The gate's verdict on the working tree's metrics against the previous release's."""
    from mlops_template.stages.gate import run_gate

    return run_gate(params, baseline_rev=previous_tag or None, out=out)


def run_gate(args: argparse.Namespace) -> int:
    from mlops_template.ci.verdict import report_rejection
    from mlops_template.gate import format_verdict

    with annotated("mlops release gate"):
        verdict = release_gate(args.previous or None, Path(args.params), Path(args.out))
    print(format_verdict(verdict))
    print(f"verdict written to {args.out}")
    gha.set_output("accepted", "true" if verdict.accepted else "false")
    gha.set_output("summary", verdict.summary)
    if verdict.accepted:
        return 0
    return report_rejection(verdict.to_dict())


def register(sub: Any) -> None:
    reproduced = sub.add_parser(
        "reproduced",
        help="fail unless CI reproduced the pipeline (build/ci/repro.json)",
        description=__doc__.splitlines()[0],
    )
    reproduced.add_argument("--file", default=str(REPRO_FILE), help="%(default)s")
    reproduced.set_defaults(func=run_reproduced)

    gate = sub.add_parser(
        "gate",
        help="gate the model against the previous release (value bounds only for the first)",
        description=__doc__.splitlines()[0],
    )
    gate.add_argument(
        "--previous",
        default="",
        metavar="TAG",
        help="the previous release's tag (empty: first release, no baseline)",
    )
    gate.add_argument("--params", default="params.yaml", help="%(default)s")
    gate.add_argument("--out", default=str(VERDICT_FILE), help="verdict JSON (%(default)s)")
    gate.set_defaults(func=run_gate)
