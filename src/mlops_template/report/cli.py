"""`mlops report`: write the pull-request report (markdown) and add it to the job summary."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic
from mlops_template.paths import REPORT_FILE


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
    base: str, out: str, summary_file: str | None, images: tuple[str, ...], root: str
) -> None:
    from mlops_template.report.collect import collect_inputs
    from mlops_template.report.render import render_report

    root_dir = Path(root or ".")
    text = render_report(collect_inputs(base, root=root_dir, images=parse_images(images)))
    out_path = Path(out)
    if not out_path.is_absolute():
        out_path = root_dir / out_path
    write_text_atomic(out_path, text)
    summary = summary_file
    if summary is None:
        summary = os.environ.get("GITHUB_STEP_SUMMARY") or ""
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    print(f"report written to {out_path}" + (f" and appended to {summary}" if summary else ""))
