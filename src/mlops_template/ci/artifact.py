"""The PR report artifact: written by the PR workflow, checked by the comment workflow.

A pull request from a fork runs with a read-only token, so its workflow cannot comment. It uploads
the report instead, and a `workflow_run` workflow with write access posts it. Everything in the
artifact was produced by PR code, so the comment side trusts nothing: the folder must hold only
the files `bundle` writes, within size limits, with an integer PR number and the head commit of
the run that uploaded it (see `validate_bundle`). The report travels as data, not markdown: the
comment workflow renders it with the default branch's renderer, so PR code chooses values only.
Every message about the artifact goes through `gha.escape` (it may name the artifact's keys).

Layout: report.json (`records.ReportData`), pr.json {"pr_number": int, "head_sha": "<40 hex>",
"base_sha": "<40 hex>"}, and optionally images/<name>.png (published only on opt-in).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.files import read_json
from mlops_template.paths import CI_DIR
from mlops_template.records import ReportData
from mlops_template.report.cli import REPORT_DATA_FILE

ARTIFACT_NAME = "pr-report"
REPORT = "report.json"
META = "pr.json"
IMAGES = "images"
MAX_REPORT_BYTES = 1024 * 1024  # curves of a long training run; the comment is cut to size
MAX_META_BYTES = 4 * 1024
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = MAX_REPORT_BYTES + MAX_META_BYTES + MAX_IMAGES * MAX_IMAGE_BYTES
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.png$")
SHA = re.compile(r"^[0-9a-f]{40}$")
MAX_PR_NUMBER = 2**31 - 1

_FIX = "the artifact must be exactly what `mlops ci bundle` writes in the PR workflow"


class NoArtifact(UserError):
    """The PR workflow uploaded no report (it stopped before the report step)."""


@dataclass(frozen=True)
class Bundle:
    pr_number: int
    head_sha: str
    base_sha: str | None
    report: ReportData
    images: tuple[Path, ...]


def check_pr_number(value: Any, from_text: bool = False) -> int:
    """A positive integer PR number; `from_text` also takes its decimal digits (CLI flags)."""
    if from_text and isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,9}", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_PR_NUMBER:
        raise UserError(f"PR number {gha.escape(repr(value))} is not a positive integer", _FIX)
    return value


def check_sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not SHA.match(value):
        raise UserError(
            f"{what} {gha.escape(repr(value))} is not a 40-character lowercase hex commit sha", _FIX
        )
    return value


def _is_png(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(PNG_MAGIC)) == PNG_MAGIC


# --------------------------------------------------------------------------- PR side


def bundle(
    report: Path,
    pr_number: Any,
    head_sha: str,
    out: Path,
    base_sha: str | None = None,
    images_from: Path | None = None,
) -> Bundle:
    """Write the artifact folder `out` (replacing it): the report data, pr.json, the PNGs found."""
    number = check_pr_number(pr_number, from_text=True)
    head = check_sha(head_sha, "head sha")
    base = check_sha(base_sha, "base sha") if base_sha else None
    if not report.is_file():
        raise UserError(f"no report data at {report}", "write it first (the report action)")
    ReportData.read(report)  # the comment workflow would refuse it: fail here, where it is made
    if report.stat().st_size > MAX_REPORT_BYTES:
        raise UserError(
            f"{report} is too big for the report artifact ({report.stat().st_size} bytes)",
            "log fewer metrics or training steps",
        )
    pngs = sorted(images_from.rglob("*.png")) if images_from and images_from.is_dir() else []
    chosen = []
    for png in pngs:
        if len(chosen) == MAX_IMAGES:
            gha.annotate(
                "warning",
                f"more than {MAX_IMAGES} PNG images: {png} and later left out",
            )
            break
        if png.is_symlink() or not _is_png(png) or png.stat().st_size > MAX_IMAGE_BYTES:
            gha.annotate("warning", f"{png} left out: not a PNG file under {MAX_IMAGE_BYTES} B")
            continue
        chosen.append(png)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        shutil.copyfile(report, staging / REPORT)
        meta = {"pr_number": number, "head_sha": head, "base_sha": base}
        (staging / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        used: set[str] = set()
        for png in chosen:
            name = _image_name(png.name, used)
            (staging / IMAGES).mkdir(exist_ok=True)
            shutil.copyfile(png, staging / IMAGES / name)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return validate_bundle(out, expected_head_sha=head)


def _image_name(name: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name[: -len(".png")]).lstrip("._-")[:50] or "image"
    candidate, n = f"{stem}.png", 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}.png"
    used.add(candidate)
    return candidate


# --------------------------------------------------------------------------- comment side


def validate_bundle(directory: Path, expected_head_sha: str | None = None) -> Bundle:
    """Check an artifact folder written by PR code; any surprise is a UserError.

    Its message is escaped for the runner's log: it may quote the artifact's own names and keys.
    """
    try:
        return _validate(directory, expected_head_sha)
    except NoArtifact:
        raise
    except UserError as exc:
        raise UserError(gha.escape(exc.message), exc.hint) from None


def _validate(directory: Path, expected_head_sha: str | None) -> Bundle:
    if not directory.is_dir():
        raise NoArtifact(
            f"no report artifact at {directory}",
            "the PR workflow stopped before it uploaded the report: see that run's log",
        )
    total = 0
    images: list[Path] = []
    for entry in _walk(directory):
        rel = entry.relative_to(directory).as_posix()
        mode = entry.lstat().st_mode
        if stat.S_ISDIR(mode):
            if rel != IMAGES:
                raise UserError(f"unexpected folder {rel!r} in the report artifact", _FIX)
            continue
        if not stat.S_ISREG(mode):
            raise UserError(f"{rel!r} in the report artifact is not a regular file", _FIX)
        size = entry.stat().st_size
        total += size
        if rel == REPORT:
            limit = MAX_REPORT_BYTES
        elif rel == META:
            limit = MAX_META_BYTES
        elif rel.startswith(f"{IMAGES}/") and IMAGE_NAME.match(rel[len(IMAGES) + 1 :]):
            limit = MAX_IMAGE_BYTES
            if not _is_png(entry):
                raise UserError(f"{rel!r} in the report artifact is not a PNG image", _FIX)
            images.append(entry)
        else:
            raise UserError(f"unexpected file {rel!r} in the report artifact", _FIX)
        if size > limit:
            raise UserError(f"{rel!r} in the report artifact is too big ({size} > {limit} B)", _FIX)
    if total > MAX_TOTAL_BYTES or len(images) > MAX_IMAGES:
        raise UserError(f"the report artifact is too big ({total} B, {len(images)} images)", _FIX)
    for required in (REPORT, META):
        if not (directory / required).is_file():
            raise UserError(f"the report artifact has no {required}", _FIX)
    report = _read_report(directory / REPORT)
    meta = _read_meta(directory / META)
    head = check_sha(meta.get("head_sha"), "head_sha in pr.json")
    if expected_head_sha is not None and head != expected_head_sha:
        raise UserError(
            f"the report artifact is for commit {head}, but the run that uploaded it built "
            f"{expected_head_sha}",
            _FIX,
        )
    base = meta.get("base_sha")
    return Bundle(
        pr_number=check_pr_number(meta.get("pr_number")),
        head_sha=head,
        base_sha=check_sha(base, "base_sha in pr.json") if base is not None else None,
        report=report,
        images=tuple(sorted(images)),
    )


def _walk(directory: Path) -> list[Path]:
    entries = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        entries += [Path(root) / name for name in (*dirs, *files)]
    return sorted(entries)


def _read_report(path: Path) -> ReportData:
    try:
        return ReportData.read(path, _FIX)
    except UnicodeDecodeError:
        raise UserError(f"{REPORT} in the report artifact is not UTF-8 text", _FIX) from None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = read_json(path, _FIX)
    except UnicodeDecodeError:
        raise UserError(f"{path} is not valid JSON (not UTF-8 text)", _FIX) from None
    if not isinstance(meta, dict):
        raise UserError("pr.json in the report artifact must hold a JSON object", _FIX)
    unknown = sorted(set(meta) - {"pr_number", "head_sha", "base_sha"})
    if unknown:
        raise UserError(f"pr.json has unexpected keys: {', '.join(unknown)}", _FIX)
    return meta


# --------------------------------------------------------------------------- commands


@click.command(
    "bundle", help="Write the PR report artifact (report data, PR number, head sha, images)."
)
@click.option(
    "--report", default=str(REPORT_DATA_FILE), show_default=True, help="the report data (JSON)"
)
@click.option("--pr-number", required=True, help="the pull request's number")
@click.option("--head-sha", required=True, help="the PR head commit (40 hex)")
@click.option("--base-sha", default="", help="the PR base commit (40 hex)")
@click.option("--images-from", default="plots", help="PNG files under this folder ride along")
@click.option("--out", default=str(CI_DIR / ARTIFACT_NAME), show_default=True)
@gha.annotated("mlops ci bundle")
def bundle_command(
    report: str, pr_number: str, head_sha: str, base_sha: str, images_from: str, out: str
) -> None:
    result = bundle(
        Path(report),
        pr_number,
        head_sha,
        Path(out),
        base_sha=base_sha or None,
        images_from=Path(images_from) if images_from else None,
    )
    print(
        f"report artifact for PR #{result.pr_number} ({result.head_sha[:12]}) written to "
        f"{out} with {len(result.images)} image(s)"
    )
    gha.set_output("dir", out)
