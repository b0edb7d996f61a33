"""Gather the report's inputs from a checkout: DVC diffs against a base revision, and files.

The base side comes from git (`git show <base>:<path>`): metrics, plots and summaries are
`cache: false` outputs committed to git, so no DVC remote is needed. The PR side is the
working tree, as the pipeline left it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.files import parse_json
from mlops_template.metrics_io import git_show
from mlops_template.records import DataSummary, GateVerdict, Record, ReportData, ReproRecord

R = TypeVar("R", bound=Record)

CURVES_DIR = f"{paths.LIVE_DIR}/plots/metrics"


def _git(args: Sequence[str], root: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("git is not installed", "install git and run this in a checkout") from None


def resolve_rev(rev: str, root: Path = Path()) -> str:
    """The short sha of `rev`; an unknown revision -> UserError with a fix."""
    done = _git(["rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}"], root)
    if done.returncode != 0 or not done.stdout.strip():
        raise UserError(
            f"git revision {rev!r} not found",
            "fetch it first (e.g. `git fetch origin main` and pass `--base origin/main`), "
            "or check out with `fetch-depth: 0`",
        )
    return done.stdout.strip()


def _head(root: Path) -> tuple[str, str]:
    sha = _git(["rev-parse", "--verify", "--quiet", "--short", "HEAD"], root).stdout.strip()
    ref = os.environ.get("GITHUB_HEAD_REF", "")
    if not ref:
        ref = _git(["rev-parse", "--abbrev-ref", "HEAD"], root).stdout.strip()
        ref = "" if ref == "HEAD" else ref  # detached
    return ref, sha


def dvc_diff(kind: str, base: str, root: Path = Path()) -> dict[str, Any]:
    """`dvc <kind> diff <base> --json --all` parsed ({} when DVC prints nothing)."""
    cmd = ["dvc", kind, "diff", base, "--json", "--all"]
    try:
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(
            "dvc is not installed here", "run inside the project's environment: `uv run mlops ...`"
        ) from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise UserError(
            f"`{' '.join(cmd)}` failed: {detail}",
            "run it in the repository root, after `dvc init`, with the base revision fetched "
            "(`git fetch origin <base>`; in CI check out with `fetch-depth: 0`)",
        )
    text = done.stdout.strip()
    if not text:
        return {}
    data = parse_json(
        text, f"`{' '.join(cmd)}`", "check the DVC version (`dvc --version`, 3.x expected)"
    )
    return data if isinstance(data, dict) else {}


def _record_here(record: type[R], root: Path, rel: Path) -> R | None:
    """The record in the working tree, None when absent (that part of the report says so)."""
    return record.read(root / rel) if (root / rel).is_file() else None


def _read(root: Path, rel: Path) -> str | None:
    path = root / rel
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_curve(text: str) -> list[tuple[float, float]]:
    """A DVCLive metric TSV (`step` column and the value as the last column) -> [(step, v)]."""
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    if "step" not in header or len(header) < 2:
        return []
    step_col = header.index("step")
    value_col = next(
        (i for i in range(len(header) - 1, -1, -1) if header[i] not in ("step", "timestamp")),
        None,
    )
    if value_col is None:
        return []
    points = []
    for row in rows[1:]:
        if len(row) > max(step_col, value_col):
            points.append((_float(row[step_col]), _float(row[value_col])))
    return points


def _curve_name(rel: str) -> str:
    """dvclive/plots/metrics/train/loss.tsv -> train/loss."""
    return rel[len(CURVES_DIR) + 1 : -len(".tsv")]


def curves_here(root: Path = Path()) -> dict[str, list[tuple[float, float]]]:
    base_dir = root / CURVES_DIR
    if not base_dir.is_dir():
        return {}
    curves = {}
    for path in sorted(base_dir.rglob("*.tsv")):
        rel = path.relative_to(root).as_posix()
        curves[_curve_name(rel)] = parse_curve(path.read_text(encoding="utf-8"))
    return curves


def curves_at(rev: str, root: Path = Path()) -> dict[str, list[tuple[float, float]]]:
    listed = _git(["ls-tree", "-r", "--name-only", rev, "--", CURVES_DIR], root)
    curves = {}
    for rel in sorted(listed.stdout.splitlines()):
        if rel.endswith(".tsv"):
            text = git_show(rev, rel, root)
            if text is not None:
                curves[_curve_name(rel)] = parse_curve(text)
    return curves


def parse_per_class_f1(text: str | None) -> dict[str, float]:
    """plots/per_class_f1.csv (columns class,f1) -> {class: f1}."""
    if not text:
        return {}
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"class", "f1"} <= set(reader.fieldnames):
        return {}
    return {str(row["class"]).strip(): _float(row["f1"]) for row in reader}


def parse_predictions(text: str | None) -> list[tuple[str, str]]:
    """plots/predictions.csv (columns actual,predicted) -> [(actual, predicted)]."""
    if not text:
        return []
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"actual", "predicted"} <= set(reader.fieldnames):
        return []
    return [(str(r["actual"]).strip(), str(r["predicted"]).strip()) for r in reader]


def collect_inputs(base: str, root: Path = Path()) -> ReportData:
    """Everything the report shows, comparing the working tree at `root` with `base`."""
    root = Path(root)
    base_sha = resolve_rev(base, root)
    head_ref, head_sha = _head(root)
    data_base = git_show(base, str(paths.DATA_REPORT), root)
    return ReportData(
        metrics_diff=dvc_diff("metrics", base, root),
        params_diff=dvc_diff("params", base, root),
        gate=_record_here(GateVerdict, root, paths.GATE_FILE),
        data_base=None
        if data_base is None
        else DataSummary.parse_text(
            data_base, f"{base}:{paths.DATA_REPORT}", "fix it on the base branch"
        ),
        data_pr=_record_here(DataSummary, root, paths.DATA_REPORT),
        curves_base=curves_at(base, root),
        curves_pr=curves_here(root),
        f1_base=parse_per_class_f1(git_show(base, str(paths.PER_CLASS_F1), root)),
        f1_pr=parse_per_class_f1(_read(root, paths.PER_CLASS_F1)),
        confusion_pr=parse_predictions(_read(root, paths.PREDICTIONS)),
        repro=_record_here(ReproRecord, root, paths.REPRO_FILE),
        base_ref=base,
        base_sha=base_sha,
        head_ref=head_ref,
        head_sha=head_sha,
    )
