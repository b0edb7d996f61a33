"""`mlops gate`: check the evaluated metrics against the acceptance rules in params.yaml.

The baseline is the metrics committed at a git revision, named the same way everywhere:
`--baseline REV` (here default HEAD, i.e. the model this change replaces; `mlops ci gate` gets
the PR's base, `mlops release gate` the previous release's tag; an empty REV means none). The
pipeline's gate stage uses `--no-baseline`: DVC cannot see a git revision, so a recorded verdict
must not rest on one; `make run` checks the change bounds against HEAD after `dvc repro`. Here it
can also be a metrics JSON file (`--baseline-file`), or none (`--no-baseline`). The verdict goes
to reports/gate.json for the PR report and the release, and the exit status fails the job:
0 accepted, 1 not accepted, 2 a mistake to fix (see `mlops_template.errors`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import click

from mlops_template import metrics_io, task
from mlops_template.cli import baseline_option, out_option, params_option
from mlops_template.errors import UserError
from mlops_template.files import write_json
from mlops_template.gate import Verdict, evaluate_gate, format_verdict, parse_rules
from mlops_template.params import load_params
from mlops_template.paths import GATE_FILE, PARAMS_FILE, TASK_FILE

DEFAULT_REV = "HEAD"


@click.command("gate", help=__doc__)
@params_option()
@baseline_option(
    f"compare with the metrics committed at this git revision (default: {DEFAULT_REV})"
)
@click.option(
    "--baseline-file",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="compare with this metrics JSON file",
)
@click.option("--no-baseline", is_flag=True, help="check value bounds only (min, max)")
@out_option()
@click.option(
    "--record-only",
    is_flag=True,
    help="exit 0 when not accepted: the verdict is recorded (the pipeline's gate stage, so "
    "dvc.lock records it; the package stage then refuses a rejected model)",
)
def gate(
    params: Path,
    baseline: str | None,
    baseline_file: Path | None,
    no_baseline: bool,
    out: Path,
    record_only: bool,
) -> int:
    if sum((baseline is not None, baseline_file is not None, no_baseline)) > 1:
        raise click.UsageError("use one of --baseline, --baseline-file and --no-baseline")
    if baseline_file is None and not no_baseline:
        baseline = DEFAULT_REV if baseline is None else baseline
    verdict = gate_and_show(params, baseline, baseline_file, out)
    return 0 if verdict.accepted or record_only else 1


def gate_and_show(
    params: Path, baseline: str | None, baseline_file: Path | None = None, out: Path = GATE_FILE
) -> Verdict:
    """`run_gate`, then the verdict on the terminal: what every gate command does first."""
    verdict = run_gate(params, baseline_rev=baseline, baseline_file=baseline_file, out=out)
    print(format_verdict(verdict))
    print(f"verdict written to {out}")
    return verdict


def run_gate(
    params_path: str | Path = PARAMS_FILE,
    baseline_rev: str | None = None,
    baseline_file: str | Path | None = None,
    out: str | Path | None = GATE_FILE,
) -> Verdict:
    """Evaluate the gate on the metrics in the working tree and write the verdict to `out`.

    The baseline comes from `baseline_rev` or `baseline_file` (not both); with neither (or an
    empty revision: a first release) there is no baseline and change bounds are skipped.
    `out=None` writes nothing. Paths are relative to the current directory, the repository root.
    """
    baseline_rev = baseline_rev or None
    if baseline_rev is not None and baseline_file is not None:
        raise ValueError("pass baseline_rev or baseline_file, not both")
    rules = parse_rules(load_params(params_path).gate.rules)
    metrics = _current_metrics()
    if baseline_file is not None:
        baseline, source = _baseline_from_file(Path(baseline_file)), f"file:{baseline_file}"
    elif baseline_rev is not None:
        baseline, source = _baseline_from_rev(baseline_rev), f"git:{baseline_rev}"
    else:
        baseline, source = None, None
    note = None
    if baseline is not None and baseline_rev is not None:
        note = _task_mismatch(baseline_rev)
        if note is not None:
            baseline = None
    verdict = evaluate_gate(metrics, rules, baseline, source, note)
    if out is not None:
        write_json(out, verdict.to_dict(), strict=True)
    return verdict


def _task_mismatch(rev: str) -> str | None:
    """Why the metrics at `rev` measured another task (then they are no baseline), or None."""
    current = task.read_task(TASK_FILE)
    if current is None:
        return None  # nothing recorded here to compare: trust the caller's choice of baseline
    return task.mismatch(current, task.parse_task(metrics_io.git_show(rev, str(TASK_FILE))))


def _current_metrics() -> dict[str, Any]:
    if not any(Path(rel).exists() for rel in metrics_io.METRICS_FILES):
        raise UserError(
            f"no metrics to check: none of {', '.join(metrics_io.METRICS_FILES)} exists",
            "run `dvc repro evaluate` first",
        )
    return metrics_io.load_metrics()


def _baseline_from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(
            f"baseline file {path} not found",
            "pass an existing metrics JSON file, or use --baseline REV or --no-baseline",
        ) from None
    return metrics_io.parse_metrics(text, str(path))


def _baseline_from_rev(rev: str) -> dict[str, Any] | None:
    """The metrics committed at `rev`, or None (no baseline) when it has no metrics files.

    A repository without any commit yet has no baseline at HEAD either; any other unknown
    revision is a mistake and raises UserError.
    """
    inside = _git("rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UserError(
            f"cannot read the baseline at git revision {rev!r}: "
            f"{Path.cwd()} is not inside a git work tree",
            "run from the repository root, or pass --baseline-file PATH or --no-baseline",
        )
    if rev == DEFAULT_REV and _git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return None  # no commit yet: the first model has nothing to compare with
    return metrics_io.load_metrics_at_rev(rev)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(
            "git is not installed, so no baseline revision can be read",
            "install git, or pass --baseline-file PATH or --no-baseline",
        ) from None
