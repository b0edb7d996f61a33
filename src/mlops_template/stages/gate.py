"""`mlops gate`: check the evaluated metrics against the acceptance rules in params.yaml.

The baseline is the metrics committed at a git revision (default HEAD, i.e. the model this
change replaces; CI passes the PR's base), or a metrics JSON file, or none. The verdict goes
to reports/gate.json for the PR report and the release, and the exit status fails the job:
0 accepted, 1 not accepted, 2 a mistake to fix (see `mlops_template.errors`).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from mlops_template import metrics_io, task
from mlops_template.errors import UserError
from mlops_template.files import write_json
from mlops_template.gate import Verdict, evaluate_gate, format_verdict, parse_rules
from mlops_template.params import load_params
from mlops_template.paths import GATE_FILE, TASK_FILE

DEFAULT_OUT = GATE_FILE
DEFAULT_REV = "HEAD"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="accept or reject the model: metrics vs. the rules in params.yaml",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="(default: %(default)s)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--baseline-rev",
        metavar="REV",
        help=f"compare with the metrics committed at this git revision (default: {DEFAULT_REV})",
    )
    source.add_argument(
        "--baseline-file", metavar="PATH", type=Path, help="compare with this metrics JSON file"
    )
    source.add_argument(
        "--no-baseline", action="store_true", help="check value bounds only (min, max)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="verdict JSON (default: %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rev = None
    if not args.no_baseline and args.baseline_file is None:
        rev = args.baseline_rev or DEFAULT_REV
    verdict = run_gate(
        args.params, baseline_rev=rev, baseline_file=args.baseline_file, out=args.out
    )
    print(format_verdict(verdict))
    print(f"verdict written to {args.out}")
    return 0 if verdict.accepted else 1


def run_gate(
    params_path: str | Path = "params.yaml",
    baseline_rev: str | None = None,
    baseline_file: str | Path | None = None,
    out: str | Path | None = DEFAULT_OUT,
) -> Verdict:
    """Evaluate the gate on the metrics in the working tree and write the verdict to `out`.

    The baseline comes from `baseline_rev` or `baseline_file` (not both); with neither there
    is no baseline and change bounds are skipped. `out=None` writes nothing. Paths are
    relative to the current directory, the repository root.
    """
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
            "pass an existing metrics JSON file, or use --baseline-rev REV or --no-baseline",
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
