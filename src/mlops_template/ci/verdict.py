"""`mlops ci gate` and `mlops ci verdict`: the acceptance gate as a CI check.

`ci gate` runs the gate (`mlops_template.stages.gate`) against a baseline revision (the PR's
base commit), writes reports/gate.json and the step outputs. With `--no-fail` it records a
rejection without failing, so the workflow can still build and upload the report; `ci verdict`,
the workflow's last step, then fails the job and gives the reasons as error annotations on the PR.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlops_template.ci import gha
from mlops_template.cli import baseline_option, out_option, params_option
from mlops_template.paths import GATE_FILE
from mlops_template.records import STALE_FIX, GateVerdict, ReproRecord

TITLE = "Acceptance gate"


def report_rejection(verdict: GateVerdict) -> int:
    """Error annotations for a rejected model; the exit status that fails the check."""
    for reason in verdict.reasons or ["the verdict lists no reasons"]:
        gha.annotate("error", reason, title=TITLE)
    gha.annotate("error", verdict.summary or "model not accepted", title=TITLE)
    return 1


@click.command("gate", help=__doc__)
@baseline_option("git revision whose committed metrics are the baseline", required=True)
@params_option()
@out_option()
@click.option(
    "--no-fail",
    is_flag=True,
    help="exit 0 when not accepted (record only; fail later with `mlops ci verdict`)",
)
@gha.annotated("mlops ci gate")
def gate(baseline: str, params: Path, out: Path, no_fail: bool) -> int:
    from mlops_template.stages.gate import gate_and_show

    verdict = gate_and_show(params, baseline, out=out)
    gha.set_output("accepted", "true" if verdict.accepted else "false")
    gha.set_output("summary", verdict.summary)
    gha.set_output("verdict-file", str(out))
    if verdict.accepted or no_fail:
        return 0
    return report_rejection(verdict.record())


def report_stale(record: ReproRecord) -> int:
    """Error annotations for committed results CI did not reproduce; 1 when params.yaml
    `ci.on_stale` is `fail` (the default), 0 when it is `warn`."""
    problems = record.stale_problems()
    if not problems:
        return 0
    level = "error" if record.on_stale == "fail" else "warning"
    for problem in problems:
        gha.annotate(level, f"{problem}. {STALE_FIX}", title="Committed results are stale")
    return 1 if record.on_stale == "fail" else 0


@click.command(
    "verdict",
    help="Fail (exit 1) with the reasons when the verdict is a rejection, or when CI did not "
    "reproduce the committed results (--repro; params.yaml ci.on_stale: fail).",
)
@click.option("--file", type=click.Path(path_type=Path), default=GATE_FILE, show_default=True)
@click.option(
    "--repro",
    type=click.Path(path_type=Path),
    default=None,
    help="also check the reproducibility record `mlops ci repro` wrote",
)
@gha.annotated("mlops ci verdict")
def verdict(file: Path, repro: Path | None) -> int:
    recorded = GateVerdict.read(file)
    stale = report_stale(ReproRecord.read(repro)) if repro is not None else 0
    if not recorded.accepted:
        return report_rejection(recorded)
    print(f"model accepted: {gha.escape(recorded.summary)}")
    if stale:
        return stale
    return 0
