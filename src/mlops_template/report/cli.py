"""`mlops report`: write the pull-request report (markdown), its data (JSON) and the job summary.

The data (`ReportData`, build/ci/report.json) is what the PR workflow hands the comment
workflow; the markdown is for this run's own summary and for local use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from mlops_template.errors import UserError
from mlops_template.files import write_json, write_text_atomic
from mlops_template.paths import CI_DIR, REPORT_FILE

REPORT_DATA_FILE = CI_DIR / "report.json"  # the report as data: what the PR artifact carries


def parse_images(values: Sequence[str]) -> list[tuple[str, str]]:
    """["loss=https://x/y.png", "https://x/z.png"] -> [("loss", url), ("z.png", url)]."""
    images = []
    for value in values:
        alt, sep, url = value.partition("=")
        if not sep or alt.startswith("https:"):
            alt, url = value.rsplit("/", 1)[-1], value
        if not url.startswith("https://") or any(c in url for c in " ()<>\"'`"):
            raise UserError(
                f"image link {value!r} is not a plain https:// URL",
                "pass links as ALT=https://host/path.png",
            )
        images.append((alt, url))
    return images


@click.command("report", help=__doc__)
@click.option("--base", required=True, help="git revision to compare with (e.g. origin/main)")
@click.option("--out", default=str(REPORT_FILE), show_default=True, help="markdown file to write")
@click.option(
    "--data-out",
    default=str(REPORT_DATA_FILE),
    show_default=True,
    help="JSON file to write the report's data to (the PR artifact carries it)",
)
@click.option(
    "--summary-file",
    default=None,
    metavar="PATH",
    help="append the report here too (default: $GITHUB_STEP_SUMMARY when set; '' for none)",
)
@click.option(
    "--images",
    multiple=True,
    metavar="[ALT=]URL",
    help="published image link to show (https only; only if you opted into publishing); repeatable",
)
@click.option("--root", default=".", hidden=True)
def report(
    base: str,
    out: str,
    data_out: str,
    summary_file: str | None,
    images: tuple[str, ...],
    root: str,
) -> None:
    from mlops_template.report.collect import collect_inputs
    from mlops_template.report.render import render_report

    root_dir = Path(root or ".")
    data = collect_inputs(base, root=root_dir)
    text = render_report(data, images=parse_images(images))
    out_path, data_path = root_dir / out, root_dir / data_out  # an absolute path stays itself
    write_json(data_path, data.to_json())
    write_text_atomic(out_path, text)
    summary = summary_file
    if summary is None:
        summary = os.environ.get("GITHUB_STEP_SUMMARY") or ""
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    also = f" and appended to {summary}" if summary else ""
    print(f"report written to {out_path} (data: {data_path}){also}")
