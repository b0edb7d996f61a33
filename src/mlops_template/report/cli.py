"""`mlops report`: write the pull-request report (markdown) and add it to the job summary."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic
from mlops_template.report.collect import collect_inputs
from mlops_template.report.render import render_report

DEFAULT_OUT = "build/ci/report.md"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the PR report: metrics/params diff, gate verdict, data changes, charts",
        description=__doc__,
    )
    parser.add_argument(
        "--base", required=True, help="git revision to compare with (e.g. origin/main)"
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"markdown file to write (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--summary-file",
        default=None,
        metavar="PATH",
        help="append the report here too (default: $GITHUB_STEP_SUMMARY when set; '' for none)",
    )
    parser.add_argument(
        "--images",
        nargs="*",
        default=[],
        metavar="[ALT=]URL",
        help="published image links to show (https only; only if you opted into publishing)",
    )
    parser.add_argument("--root", default=".", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    root = Path(getattr(args, "root", ".") or ".")
    images = parse_images(getattr(args, "images", None) or [])
    text = render_report(collect_inputs(args.base, root=root, images=images))
    out = Path(args.out)
    if not out.is_absolute():
        out = root / out
    write_text_atomic(out, text)
    summary = args.summary_file
    if summary is None:
        summary = os.environ.get("GITHUB_STEP_SUMMARY") or ""
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    print(f"report written to {out}" + (f" and appended to {summary}" if summary else ""))
    return 0
