"""`mlops monitor drift`: compare a window of the prediction log with the training split.

Writes Evidently's HTML and JSON reports, the drift result (build/monitor/drift.json) and a
markdown summary (also appended to $GITHUB_STEP_SUMMARY in Actions); exits 1 on drift.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlops_template.ci import gha
from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic
from mlops_template.params import load_params
from mlops_template.paths import (
    DRIFT_EVIDENTLY,
    DRIFT_FILE,
    DRIFT_HTML,
    DRIFT_SUMMARY,
    PARAMS_FILE,
    PREDICTION_LOG_DIR,
    TRAIN_CSV,
)

PATH = click.Path(path_type=Path)


@click.command("drift", help=__doc__)
@click.option(
    "--log",
    type=PATH,
    default=PREDICTION_LOG_DIR,
    show_default=True,
    help="the prediction log: its folder (predictions.jsonl*) or one file",
)
@click.option(
    "--reference", type=PATH, default=TRAIN_CSV, show_default=True, help="the training split"
)
@click.option("--params", type=PATH, default=PARAMS_FILE, show_default=True)
@click.option(
    "--fail-on-drift/--no-fail-on-drift",
    default=True,
    show_default=True,
    help="exit 1 on drift (the workflow records drift in the issue instead)",
)
@gha.annotated("mlops monitor drift")
def drift(log: Path, reference: Path, params: Path, fail_on_drift: bool) -> int:
    from mlops_template.monitor import drift as checks
    from mlops_template.monitor.report import summary
    from mlops_template.monitor.window import select
    from mlops_template.table import feature_spec, read_header, read_table

    settings = load_params(params)
    if not reference.is_file():
        raise UserError(
            f"the training split {reference} is not here",
            "run `dvc pull artifacts/split` (with a DVC remote) or `mlops data && dvc repro "
            "prepare`",
        )
    spec = feature_spec(settings, read_header(reference))
    window = select(log, settings.monitor.window, spec.names)
    train = read_table(reference, settings)
    columns, share, drifted = checks.evaluate(
        spec,
        checks.reference_frame(spec, train),
        checks.current_frame(spec, window),
        settings.monitor.drift_share,
        DRIFT_HTML,
        DRIFT_EVIDENTLY,
    )
    result = checks.result(
        window, len(train), settings.monitor.drift_share, columns, share, drifted
    )
    checks.write_result(DRIFT_FILE, result)
    text = summary(result)
    write_text_atomic(DRIFT_SUMMARY, text)
    if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    names = ", ".join(c.column for c in result.drifted_columns) or "none"
    print(
        f"drift: {'yes' if drifted else 'no'} ({len(window.records)} predictions; "
        f"drifted columns: {names}); reports in {DRIFT_HTML.parent}/"
    )
    if drifted:
        gha.annotate("warning", f"model drift in: {names}", title="mlops monitor drift")
    gha.set_output("drifted", "true" if drifted else "false")
    return 1 if drifted and fail_on_drift else 0


@click.command("fetch")
@click.option("--url", envvar="PREDICTION_LOG_URL", help="default: $PREDICTION_LOG_URL")
@click.option("--out", type=PATH, default=PREDICTION_LOG_DIR, show_default=True)
@gha.annotated("mlops monitor fetch")
def fetch(url: str | None, out: Path) -> None:
    """Copy the prediction log folder from where the service's log is shipped (`dvc get-url`:
    s3://, gs://, azure://, http(s)://, or a local path) to OUT, replacing it whole."""
    import shutil
    import subprocess

    if not url:
        raise UserError(
            "no prediction log to fetch: PREDICTION_LOG_URL is not set",
            "set the repository variable PREDICTION_LOG_URL to the folder the service's "
            "prediction log is synced to (e.g. s3://BUCKET/predictions/)",
        )
    if url.startswith("-"):
        raise UserError(f"PREDICTION_LOG_URL {url[:60]!r} is not a URL or path", "fix it")
    staging = out.parent / f".{out.name}-fetching"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["dvc", "get-url", url, str(staging)], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(
            f"could not fetch the prediction log from {url[:200]}: "
            f"{(done.stderr or done.stdout).strip()[-400:]}",
            "check PREDICTION_LOG_URL, the cloud role (AWS_ROLE_ARN) and the extra for that "
            "storage (s3)",
        )
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    files = sorted(p.name for p in out.iterdir()) if out.is_dir() else [out.name]
    print(f"fetched {len(files)} file(s) of the prediction log to {out}/")
