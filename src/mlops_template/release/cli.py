"""`mlops release ...`: the steps the release workflow runs on a version tag.

build      bento of the packaged, accepted model named by the tag: DIR/<name>-<version>.bento
smoke      serve that bento on 127.0.0.1 and check it against the offline model
card       MODEL_CARD.md: data hash, params, metrics vs the previous release, verdict, lineage
checksums  SHA256SUMS of the release assets (`sha256sum -c` compatible)
tag        check a release tag (format, on main) and find the previous release (tags.py)
reproduced fail unless CI reproduced the committed results (verify.py)
gate       the acceptance gate against the previous release (verify.py)
image      containerize the bento and push it (image.py)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.release import image, tags, verify


def _template_args(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs for the service, checked against its arguments (model_tag is ours)."""
    from pydantic import ValidationError

    from mlops_template.serving.config import ServiceArgs

    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--arg {pair!r} is not KEY=VALUE", "e.g. --arg max_rows=500")
        args[key] = value
    if "model_tag" in args:
        raise UserError(
            "--arg model_tag is set by the build (the packaged model)",
            "drop it: the bento serves exactly the model in artifacts/bento/model.bentomodel",
        )
    try:
        ServiceArgs(**args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(
            f"invalid --arg: {problems}", "see src/mlops_template/serving/config.py"
        ) from None
    return args


def run_build(args: argparse.Namespace) -> int:
    from mlops_template.release.build import build_release

    result = build_release(
        args.version,
        args.out,
        bentomodel=args.bentomodel,
        bentofile=args.bentofile,
        args=_template_args(args.arg),
    )
    print(f"built bento {result.bento_tag} with {result.family} model {result.model_tag}")
    print(f"packages: {' '.join(result.packages)}")
    print(f"bento file: {result.file}")
    return 0


def run_smoke(args: argparse.Namespace) -> int:
    from mlops_template.release.smoke import smoke

    report = smoke(
        args.target,
        model_dir=args.model_dir,
        test_csv=args.test_csv,
        bentomodel=args.bentomodel,
        timeout=args.timeout,
    )
    print(report.summary())
    return 0 if report.passed else 1


def run_card(args: argparse.Namespace) -> int:
    from mlops_template.release.card import write_card

    out = write_card(
        args.out,
        bentomodel=args.bentomodel,
        version=args.version,
        previous_metrics=args.previous_metrics,
        previous_rev=args.previous_rev,
        verdict=args.verdict,
    )
    print(f"model card written to {out}")
    return 0


def run_checksums(args: argparse.Namespace) -> int:
    from mlops_template.release.checksums import write_checksums

    target = write_checksums(args.directory, args.name)
    print(f"checksums written to {target}; verify: `sha256sum -c {args.name}` in that directory")
    return 0


def _bentomodel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bentomodel",
        type=Path,
        default=paths.BENTOMODEL_FILE,
        help="the packaged model (default: %(default)s)",
    )


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "release",
        help="build, smoke-test and document the release bento",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = parser.add_subparsers(dest="release_step", required=True, metavar="STEP")

    build = steps.add_parser("build", help="build and export the bento of the packaged model")
    build.add_argument("--version", required=True, help="release version, e.g. v1.2.0")
    build.add_argument("--out", type=Path, required=True, help="directory for the .bento file")
    build.add_argument(
        "--bentofile", type=Path, default=paths.BENTOFILE, help="recipe (default: %(default)s)"
    )
    build.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="service argument recorded in the bento (e.g. max_rows=500); repeatable",
    )
    _bentomodel_option(build)
    build.set_defaults(func=run_build)

    smoke = steps.add_parser("smoke", help="serve a bento and check it against the offline model")
    smoke.add_argument("target", help="a .bento file (imported into a fresh store) or a bento tag")
    smoke.add_argument("--model-dir", type=Path, default=paths.MODEL_DIR, help="%(default)s")
    smoke.add_argument("--test-csv", type=Path, default=paths.TEST_CSV, help="%(default)s")
    smoke.add_argument("--timeout", type=float, default=120, help="seconds to wait for /readyz")
    _bentomodel_option(smoke)
    smoke.set_defaults(func=run_smoke)

    card = steps.add_parser("card", help="write the model card (markdown)")
    card.add_argument("--out", type=Path, required=True, help="e.g. dist/MODEL_CARD.md")
    card.add_argument("--version", help="release version shown in the title")
    previous = card.add_mutually_exclusive_group()
    previous.add_argument(
        "--previous-metrics", type=Path, help="the previous release's metrics JSON"
    )
    previous.add_argument(
        "--previous-rev", help="git revision of the previous release (reads its quality metrics)"
    )
    card.add_argument(
        "--verdict", type=Path, help="the release's gate verdict (default: the packaged one)"
    )
    _bentomodel_option(card)
    card.set_defaults(func=run_card)

    checksums = steps.add_parser("checksums", help="write DIR/SHA256SUMS")
    checksums.add_argument("directory", type=Path, help="the release assets directory")
    checksums.add_argument("--name", default="SHA256SUMS", help="file name (default: %(default)s)")
    checksums.set_defaults(func=run_checksums)

    for module in (tags, verify, image):  # the release workflow's other steps
        module.register(steps)
