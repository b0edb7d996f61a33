"""`mlops release build|smoke|card|checksums`: the release workflow's packaging steps.

build      bento of the packaged, accepted model named by the tag: DIR/<name>-<version>.bento
smoke      serve that bento on 127.0.0.1 and check it against the offline model
card       MODEL_CARD.md: data hash, params, metrics vs the previous release, verdict, lineage
checksums  SHA256SUMS of the release assets (`sha256sum -c` compatible)

The workflow's other steps: `tag` (tags.py), `reproduced` and `gate` (verify.py), `image`
(image.py). Heavy libraries (BentoML, the model's) are imported inside each step.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlops_template import paths
from mlops_template.errors import UserError

PathType = click.Path(path_type=Path)
bentomodel_option = click.option(
    "--bentomodel",
    type=PathType,
    default=paths.BENTOMODEL_FILE,
    show_default=True,
    help="the packaged model",
)


def _template_args(pairs: tuple[str, ...]) -> dict[str, str]:
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


@click.command("build", help="Build and export the bento of the packaged model.")
@click.option("--version", required=True, help="release version, e.g. v1.2.0")
@click.option("--out", type=PathType, required=True, help="directory for the .bento file")
@click.option(
    "--bentofile", type=PathType, default=paths.BENTOFILE, show_default=True, help="recipe"
)
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="service argument recorded in the bento (e.g. max_rows=500); repeatable",
)
@bentomodel_option
def build(
    version: str, out: Path, bentofile: Path, pairs: tuple[str, ...], bentomodel: Path
) -> None:
    from mlops_template.release.build import build_release

    result = build_release(
        version, out, bentomodel=bentomodel, bentofile=bentofile, args=_template_args(pairs)
    )
    print(f"built bento {result.bento_tag} with {result.family} model {result.model_tag}")
    print(f"packages: {' '.join(result.packages)}")
    print(f"bento file: {result.file}")


@click.command("smoke", help="Serve a bento and check it against the offline model.")
@click.argument("target")
@click.option("--model-dir", type=PathType, default=paths.MODEL_DIR, show_default=True)
@click.option("--test-csv", type=PathType, default=paths.TEST_CSV, show_default=True)
@click.option("--timeout", type=float, default=120, help="seconds to wait for /readyz")
@bentomodel_option
def smoke(target: str, model_dir: Path, test_csv: Path, timeout: float, bentomodel: Path) -> int:
    """TARGET: a .bento file (imported into a fresh store) or a bento tag."""
    from mlops_template.release.smoke import smoke as run_smoke

    report = run_smoke(
        target, model_dir=model_dir, test_csv=test_csv, bentomodel=bentomodel, timeout=timeout
    )
    print(report.summary())
    return 0 if report.passed else 1


@click.command("card", help="Write the model card (markdown).")
@click.option("--out", type=PathType, required=True, help="e.g. dist/MODEL_CARD.md")
@click.option("--version", help="release version shown in the title")
@click.option("--previous-metrics", type=PathType, help="the previous release's metrics JSON")
@click.option(
    "--previous-rev", help="git revision of the previous release (reads its quality metrics)"
)
@click.option(
    "--verdict", type=PathType, help="the release's gate verdict (default: the packaged one)"
)
@bentomodel_option
def card(
    out: Path,
    version: str | None,
    previous_metrics: Path | None,
    previous_rev: str | None,
    verdict: Path | None,
    bentomodel: Path,
) -> None:
    from mlops_template.release.card import write_card

    if previous_metrics is not None and previous_rev is not None:
        raise click.UsageError("use --previous-metrics or --previous-rev, not both")
    written = write_card(
        out,
        bentomodel=bentomodel,
        version=version,
        previous_metrics=previous_metrics,
        previous_rev=previous_rev,
        verdict=verdict,
    )
    print(f"model card written to {written}")


@click.command("checksums", help="Write DIR/SHA256SUMS of the release assets in DIR.")
@click.argument("directory", type=PathType)
@click.option("--name", default="SHA256SUMS", show_default=True, help="file name")
def checksums(directory: Path, name: str) -> None:
    from mlops_template.release.checksums import write_checksums

    target = write_checksums(directory, name)
    print(f"checksums written to {target}; verify: `sha256sum -c {name}` in that directory")


def _model_dir(model: Path | None, bentomodel: Path) -> Path:
    """The directory to sign or check: MODEL, else the stored copy of the packaged model."""
    if model is not None:
        return model
    from mlops_template.serving import store

    return Path(store.get_stored_model(store.read_bentomodel(bentomodel).tag).path)


@click.command("sign", help="Sign the stored model's files (model-signing).")
@click.argument("model", type=PathType, required=False)
@click.option(
    "--key",
    type=PathType,
    envvar="MLOPS_MODEL_SIGNING_KEY",
    help="EC private key (PEM) [env MLOPS_MODEL_SIGNING_KEY]; default: keyless (Sigstore)",
)
@click.option("--signature", type=PathType, help="signature file (default: MODEL/model.sig)")
@click.option("--copy-to", type=PathType, help="also copy the signature here (a release file)")
@bentomodel_option
def sign(
    model: Path | None,
    key: Path | None,
    signature: Path | None,
    copy_to: Path | None,
    bentomodel: Path,
) -> None:
    """MODEL: a model directory (default: the stored copy of the packaged model)."""
    import shutil

    from mlops_template.ci import gha
    from mlops_template.signing import sign_model

    with gha.annotated("mlops release sign"):
        directory = _model_dir(model, bentomodel)
        written = sign_model(directory, key, signature)
        if copy_to is not None:
            copy_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(written, copy_to)
    how = f"the key {key}" if key else "Sigstore (keyless)"
    print(f"signed {directory} with {how}: {written}")


@click.command("verify-signature", help="Check a model directory against its signature.")
@click.argument("model", type=PathType, required=False)
@click.option("--signature", type=PathType, help="default: MODEL/model.sig, else MODEL.sig")
@click.option("--key", type=PathType, help="EC public key (PEM); default: $MLOPS_MODEL_PUBLIC_KEY")
@click.option("--repo", help="OWNER/REPO whose release workflow signed it (keyless)")
@click.option("--ref", help="the git ref the release ran for, e.g. refs/tags/v1.2.0 (keyless)")
@bentomodel_option
def verify_signature(
    model: Path | None,
    signature: Path | None,
    key: Path | None,
    repo: str | None,
    ref: str | None,
    bentomodel: Path,
) -> None:
    """MODEL: a model directory (default: the stored copy of the packaged model)."""
    from mlops_template import signing
    from mlops_template.ci import gha

    with gha.annotated("mlops release verify-signature"):
        verifier = signing.requested_verifier(key, repo, ref)
        directory = _model_dir(model, bentomodel)
        signing.verify_signature(directory, verifier, signature)
    print(f"signature OK: {directory} is exactly what {verifier.describe()} signed")
