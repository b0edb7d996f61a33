"""`mlops ci gate` and `mlops ci verdict`: the acceptance gate as a CI check.

`ci gate` runs the gate (`mlops_template.stages.gate.run_gate`) against the PR's base commit,
writes reports/gate.json and the step outputs. With `--no-fail` it records a rejection without
failing, so the workflow can still build and upload the report; `ci verdict`, the workflow's last
step, then fails the job and gives the reasons as error annotations on the PR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.paths import GATE_FILE

VERDICT_FILE = GATE_FILE
TITLE = "Acceptance gate"


def run_ci_gate(args: Any) -> int:
    from mlops_template.gate import format_verdict
    from mlops_template.stages.gate import run_gate

    verdict = run_gate(args.params, baseline_rev=args.base, out=Path(args.out))
    print(format_verdict(verdict))
    print(f"verdict written to {args.out}")
    gha.set_output("accepted", "true" if verdict.accepted else "false")
    gha.set_output("summary", verdict.summary)
    gha.set_output("verdict-file", str(args.out))
    if verdict.accepted or args.no_fail:
        return 0
    return report_rejection(verdict.to_dict())


def report_rejection(verdict: dict[str, Any]) -> int:
    """Error annotations for a rejected model; the exit status that fails the check."""
    reasons = verdict.get("reasons") or ["the verdict lists no reasons"]
    for reason in reasons:
        gha.annotate("error", str(reason), title=TITLE)
    gha.annotate("error", str(verdict.get("summary") or "model not accepted"), title=TITLE)
    return 1


def read_verdict(path: Path) -> dict[str, Any]:
    try:
        verdict = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"no gate verdict at {path}", "run the gate first (the gate action, or `mlops gate`)"
        ) from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON", "rerun the gate") from None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("accepted"), bool):
        raise UserError(f"{path} holds no verdict (no boolean 'accepted')", "rerun the gate")
    return verdict


def run_verdict(args: Any) -> int:
    verdict = read_verdict(Path(args.file))
    if verdict["accepted"]:
        print(f"model accepted: {verdict.get('summary', '')}")
        return 0
    return report_rejection(verdict)


def register(sub: Any) -> None:
    gate = sub.add_parser(
        "gate",
        help="run the acceptance gate against a base commit; step outputs for CI",
        description=__doc__.splitlines()[0],
    )
    gate.add_argument("--base", required=True, metavar="REV", help="baseline git revision")
    gate.add_argument("--params", default="params.yaml", help="%(default)s")
    gate.add_argument("--out", default=str(VERDICT_FILE), help="%(default)s")
    gate.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 when not accepted (record only; fail later with `mlops ci verdict`)",
    )
    gate.set_defaults(func=run_ci_gate)

    verdict = sub.add_parser(
        "verdict", help="fail (exit 1) with the reasons when the recorded verdict is a rejection"
    )
    verdict.add_argument("--file", default=str(VERDICT_FILE), help="%(default)s")
    verdict.set_defaults(func=run_verdict)
