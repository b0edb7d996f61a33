"""`mlops ci repro`: reproduce the pipeline in CI and record how it went in build/ci/repro.json.

Three questions for the PR report, answered in one file:
- where the data came from (the DVC cache, the remote, the bundled example, or already here);
- whether the committed dvc.lock was up to date: before anything runs, `dvc status` is asked
  whether any stage's command, params or source files (deps no other stage produces) differ from
  the lock, or whether a committed output differs from it. Missing outputs are not staleness:
  they only mean this runner has not got them yet;
- whether CI reproduced the committed metrics/quality.json: every metric exactly, or within its
  declared tolerance (params.yaml `ci.tolerances`). Serving latency is a measurement, never
  compared. When `dvc repro` had no reason to re-run the stage that writes the quality metrics
  (its inputs match dvc.lock, outputs restored from the cache), that stage alone is re-run on the
  cached model (seconds, no training), so the answer is always a real recomputation; null only
  without committed metrics.

The repro action reproduces up to `evaluate` by default (the CLI: the whole pipeline): the gate
then runs as its own step against the PR's base branch, so a rejected model cannot stop the job
before the report is built, and packaging is left to accepted models (main, release).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.files import parse_json, read_json, write_json
from mlops_template.metrics_io import flatten, is_finite_number
from mlops_template.params import Tolerance, load_params
from mlops_template.paths import DVC_LOCK, PARAMS_FILE, QUALITY, REPRO_FILE
from mlops_template.records import STALE_FIX, MetricMismatch, ReproRecord
from mlops_template.stages.data import ensure_data

LOCK_FILE = DVC_LOCK
QUALITY_FILE = str(QUALITY)
MAX_LISTED = 8  # problems listed one by one in the notes; the rest are counted

_RAN = re.compile(r"^Running stage '([^']+)'")
_RUN_CACHED = re.compile(r"^Stage '([^']+)' is cached - skipping run")


# --------------------------------------------------------------------------- pure parts


def read_lock(path: Path = LOCK_FILE) -> dict[str, Any] | None:
    """The `stages` mapping of dvc.lock, or None when there is no lock file."""
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise UserError(
            f"{path} is not valid YAML", "regenerate it with `dvc repro` and commit it"
        ) from None
    stages = data.get("stages") if isinstance(data, dict) else None
    return stages if isinstance(stages, dict) else {}


def produced_paths(lock: Mapping[str, Any]) -> set[str]:
    """Every output path a stage of the lock writes (metrics and plots included)."""
    paths = set()
    for stage in lock.values():
        for out in (stage or {}).get("outs") or []:
            if isinstance(out, dict) and "path" in out:
                paths.add(str(out["path"]).rstrip("/"))
    return paths


def _is_produced(path: str, produced: set[str]) -> bool:
    path = path.rstrip("/")
    return any(
        path == out or path.startswith(out + "/") or out.startswith(path + "/") for out in produced
    )


def lock_problems(status: Mapping[str, Any], lock: Mapping[str, Any] | None) -> list[str]:
    """Why the committed dvc.lock does not describe this checkout (empty list: it does).

    `status` is `dvc status --json` taken after the data and the cached outputs were restored.
    Changed commands, params and source deps (files no stage produces) make the lock stale, and
    so does a committed output that differs from it; missing outputs and changes of produced
    deps do not (their stage upstream answers for them).
    """
    if lock is None:
        return ["dvc.lock is not committed: run `dvc repro` and commit dvc.lock"]
    produced = produced_paths(lock)
    problems: list[str] = []
    for stage, changes in status.items():
        if stage.endswith(".dvc"):
            continue  # data.dvc: `mlops data` already made the data match it
        if stage not in lock:
            problems.append(f"stage '{stage}' has not been run: it is missing from dvc.lock")
            continue
        for change in changes or []:
            if change == "changed command":
                problems.append(f"{stage}: its command changed")
            elif isinstance(change, dict):
                problems += _entry_problems(stage, change, produced)
    return problems


def _entry_problems(stage: str, change: Mapping[str, Any], produced: set[str]) -> list[str]:
    problems = []
    for path, state in (change.get("changed deps") or {}).items():
        if isinstance(state, dict):  # params: {"params.yaml": {"train": "modified"}}
            keys = ", ".join(sorted(str(key) for key in state))
            problems.append(f"{stage}: params changed ({keys} in {path})")
        elif not _is_produced(path, produced):
            problems.append(f"{stage}: {path} {state}")
    for path, state in (change.get("changed outs") or {}).items():
        if state == "modified":
            problems.append(f"{stage}: the committed {path} differs from dvc.lock")
    return problems


def stages_in_output(output: str) -> tuple[list[str], list[str]]:
    """(stages that ran, stages restored from the run-cache) according to `dvc repro`'s log."""
    ran, cached = [], []
    for line in output.splitlines():
        line = line.strip()
        if match := _RAN.match(line):
            ran.append(match.group(1))
        elif match := _RUN_CACHED.match(line):
            cached.append(match.group(1))
    return ran, cached


def quality_stage(lock: Mapping[str, Any] | None) -> str | None:
    """The stage that writes metrics/quality.json, by the lock."""
    for name, stage in (lock or {}).items():
        for out in (stage or {}).get("outs") or []:
            if isinstance(out, dict) and str(out.get("path")) == QUALITY_FILE:
                return name
    return None


def compare_quality(
    committed: Mapping[str, Any] | None,
    reproduced: Mapping[str, Any] | None,
    tolerances: Mapping[str, Tolerance],
) -> tuple[bool | None, list[MetricMismatch], list[str]]:
    """(reproduced?, the metrics that differ, notes) for the committed vs. CI's quality metrics.

    Every numeric leaf must be equal, or within its declared tolerance (params.yaml
    `ci.tolerances`); a metric present on one side only, or not a finite number, differs.
    """
    if committed is None:
        return None, [], [f"no committed {QUALITY_FILE} to compare with (first run?)"]
    if reproduced is None:
        return False, [], [f"the pipeline wrote no {QUALITY_FILE}"]
    old = {k: v for k, v in flatten(committed).items() if _is_number(v)}
    new = {k: v for k, v in flatten(reproduced).items() if _is_number(v)}
    notes = [
        f"ci.tolerances names {name!r}, which is not a quality metric"
        for name in sorted(set(tolerances) - set(old) - set(new))
    ]
    mismatches = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        rule = tolerances.get(name)
        if a == b and (a is None or is_finite_number(a)):
            continue
        if (
            rule is not None
            and is_finite_number(a)
            and is_finite_number(b)
            and rule.allows(float(a), float(b))  # type: ignore[arg-type]
        ):
            continue
        mismatches.append(
            MetricMismatch(
                metric=name,
                committed=a,
                reproduced=b,
                allowed=rule.describe() if rule is not None else "exact",
            )
        )
    if not old and not new:
        return False, [], [*notes, f"no numeric metrics in {QUALITY_FILE}"]
    return not mismatches, mismatches, notes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summarize_problems(problems: Sequence[str]) -> list[str]:
    listed = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        listed.append(f"... and {len(problems) - MAX_LISTED} more out-of-date entries")
    return listed


# --------------------------------------------------------------------------- DVC calls


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["dvc", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(
            "dvc is not installed here",
            "run the setup action first (it installs the locked environment), or `uv sync`",
        ) from None


def has_remote() -> bool:
    listed = _dvc("remote", "list")
    return listed.returncode == 0 and bool(listed.stdout.strip())


def dvc_status(targets: Sequence[str] = ()) -> dict[str, Any]:
    """`dvc status` of the targets and their upstream stages (everything without targets): a
    stage downstream of what CI reproduces (the gate, packaging) is judged elsewhere."""
    done = _dvc("status", "--json", *(["--with-deps", *targets] if targets else []))
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"`dvc status` failed: {detail[0]}", "check dvc.yaml (`dvc status -v`)")
    text = done.stdout.strip()
    return (
        parse_json(text, "`dvc status --json`", "check the DVC version (3.x expected)")
        if text
        else {}
    )


def run_streaming(cmd: Sequence[str]) -> tuple[int, str]:
    """Run `cmd`, echoing its output live (CI logs) and returning (status, output)."""
    lines = []
    try:
        process = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} is not installed here", "run the setup action first") from None
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    return process.wait(), "".join(lines)


def _read_quality() -> dict[str, Any] | None:
    """The quality metrics as committed or written; {} when broken (then nothing compares)."""
    if not QUALITY.exists():
        return None
    try:
        data = read_json(QUALITY, "")
    except UserError:
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- the command


def reproduce(
    targets: Sequence[str] = (),
    params_path: Path = PARAMS_FILE,
    out: Path = REPRO_FILE,
    verify: bool = True,
) -> tuple[int, ReproRecord]:
    """Get the data, check the lock, run `dvc repro [targets]`, compare; write `out`.

    `verify=False` skips re-running the metrics stage when `dvc repro` did not (then the
    comparison is null unless that stage ran anyway).
    """
    params = load_params(params_path)
    ci = params.ci
    notes: list[str] = []
    # Before DVC deletes any output: an unreachable cluster stops here, outputs intact.
    from mlops_template.stages.train import check_compute

    print(check_compute(params))
    source = ensure_data()
    print(f"data: {source}")

    if has_remote():
        # Outputs and run-cache entries someone already pushed save a retrain. A remote this
        # workflow cannot read (no credentials on fork PRs) is not an error: it just trains.
        pulled = _dvc("pull", "--run-cache")
        if pulled.returncode != 0:
            notes.append("could not pull everything from the DVC remote; missing stages re-ran")
    _dvc("checkout")  # best effort: restore cached outputs so unchanged stages do not re-run

    lock = read_lock()
    problems = lock_problems(dvc_status(targets), lock)
    committed = _read_quality()

    status, output = run_streaming(["dvc", "repro", *targets])
    ran, cached = stages_in_output(output)
    if status != 0:
        notes.append(f"`dvc repro` failed (exit status {status}): see the job log")
    if ran:
        notes.append(f"re-ran: {', '.join(ran)}")
    if cached:
        notes.append(f"restored from the DVC run-cache: {', '.join(cached)}")
    if status == 0 and not ran and not cached:
        notes.append("nothing re-ran: every stage matched dvc.lock (outputs from the DVC cache)")

    reproduced: bool | None = None
    mismatches: list[MetricMismatch] = []
    writer = quality_stage(read_lock()) or quality_stage(lock)
    if status == 0 and writer and writer not in ran and verify and committed is not None:
        status, _ = run_streaming(["dvc", "repro", "--force", "--single-item", writer])
        if status != 0:
            notes.append(f"re-running {writer} to check the metrics failed: see the job log")
        else:
            notes.append(
                f"{writer} re-run (its inputs matched dvc.lock, so DVC skipped it) to check "
                "the committed metrics"
            )
            ran.append(writer)
    if status == 0 and writer in ran:
        reproduced, mismatches, more = compare_quality(committed, _read_quality(), ci.tolerances)
        notes += more
    result = ReproRecord(
        data_source=source,
        lock_up_to_date=not problems,
        stale=summarize_problems(problems),
        metrics_reproduced=reproduced,
        mismatches=mismatches,
        on_stale=ci.on_stale,
        notes=notes,
    )
    write_json(out, result.to_json())
    return status, result


@click.command("repro", help=__doc__)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="STAGE",
    help="stage to reproduce with its upstream stages (repeatable; default: all)",
)
@click.option("--params", type=click.Path(path_type=Path), default=PARAMS_FILE, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=REPRO_FILE, show_default=True)
@click.option(
    "--no-verify", is_flag=True, help="do not re-run the metrics stage when `dvc repro` skipped it"
)
@gha.annotated("mlops ci repro")
def repro(targets: tuple[str, ...], params: Path, out: Path, no_verify: bool) -> int:
    status, result = reproduce(targets, params, out, verify=not no_verify)
    level = "error" if result.on_stale == "fail" else "warning"
    for problem in result.stale_problems():
        gha.annotate(level, f"{problem}. {STALE_FIX}", title="Committed results are stale")
    outputs = {
        "data-source": result.data_source,
        "lock-up-to-date": json.dumps(result.lock_up_to_date),
        "metrics-reproduced": json.dumps(result.metrics_reproduced),
    }
    for key, value in outputs.items():
        gha.set_output(key, value)
    gha.set_output("repro-file", str(out))
    print(f"reproducibility written to {out}")
    return 0 if status == 0 else 1
