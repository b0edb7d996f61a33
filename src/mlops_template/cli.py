"""`mlops`: one entry point for the pipeline stages, the CI actions and the release steps.

Each command is a click command in its own module. The groups below know every command by name
and one-line help only, and import a command's module when that command runs (or its --help is
asked), so `mlops --help`, `mlops summary` or `mlops ci verdict` never import pandas, the model
libraries or BentoML. Expected mistakes raise UserError and end as one message with a fix
(exit 2), never a traceback; a rejected model exits 1; Ctrl-C exits 130.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from mlops_template import determinism
from mlops_template.errors import UserError
from mlops_template.paths import GATE_FILE, PARAMS_FILE

# name -> ("module:command attribute", one-line help), in the order `--help` lists them.
Commands = dict[str, tuple[str, str]]

CI_COMMANDS: Commands = {
    "repro": (
        "mlops_template.ci.repro:repro",
        "get the data, check dvc.lock, `dvc repro`, compare the committed metrics",
    ),
    "gate": (
        "mlops_template.ci.verdict:gate",
        "run the acceptance gate against a baseline revision; step outputs for CI",
    ),
    "verdict": (
        "mlops_template.ci.verdict:verdict",
        "fail (exit 1) with the reasons when the recorded verdict is a rejection",
    ),
    "bundle": (
        "mlops_template.ci.artifact:bundle_command",
        "write the PR report artifact (report data, PR number, head sha, images)",
    ),
    "unpack": (
        "mlops_template.ci.comment:unpack",
        "check a downloaded PR report artifact and the PR, and render the report",
    ),
    "comment": (
        "mlops_template.ci.comment:comment",
        "create or update the PR's one report comment (GitHub REST API, or CML)",
    ),
    "credentials": (
        "mlops_template.ci.remote:credentials",
        "set up cloud credentials for the DVC remote (OIDC), if any",
    ),
    "push": (
        "mlops_template.ci.remote:push",
        "dvc push --run-cache, or a notice when no remote",
    ),
}

RELEASE_COMMANDS: Commands = {
    "tag": (
        "mlops_template.release.tags:tag",
        "check a release tag (format, checked out, on main) and find the previous release",
    ),
    "unpublished": (
        "mlops_template.release.published:unpublished",
        "fail when the version's GitHub Release or image tag exists already",
    ),
    "verify-pulls": (
        "mlops_template.release.pulls:verify_pulls",
        "re-hash every object pulled from the DVC remote (verify = true, local config)",
    ),
    "reproduced": (
        "mlops_template.release.verify:reproduced",
        "fail unless CI reproduced the pipeline (build/ci/repro.json)",
    ),
    "gate": (
        "mlops_template.release.verify:gate",
        "gate the model against the previous release (value bounds only for the first)",
    ),
    "recorded": (
        "mlops_template.release.verify:recorded",
        "fail unless the model here is exactly the one the tagged commit's dvc.lock records",
    ),
    "build": (
        "mlops_template.release.cli:build",
        "build and export the bento of the packaged model",
    ),
    "smoke": (
        "mlops_template.release.cli:smoke",
        "serve a bento and check it against the offline model",
    ),
    "card": ("mlops_template.release.cli:card", "write the model card (markdown)"),
    "checksums": ("mlops_template.release.cli:checksums", "write DIR/SHA256SUMS"),
    "image": (
        "mlops_template.release.image:image",
        "containerize the release bento, smoke-test the image, push it (docker or podman)",
    ),
    "pin-base": (
        "mlops_template.release.image:pin_base_command",
        "copy bentofile.yaml with its base image pinned by digest (resolved once)",
    ),
    "sign": (
        "mlops_template.release.cli:sign",
        "sign the stored model's files (model-signing: a key, or keyless with Sigstore)",
    ),
    "verify-signature": (
        "mlops_template.release.cli:verify_signature",
        "check a model directory against its signature (edited, added, missing files; key)",
    ),
    "verify-commands": (
        "mlops_template.release.user_checks:verify_commands",
        "print the commands a user runs to check a downloaded release (attestations, signature)",
    ),
}

MONITOR_COMMANDS: Commands = {
    "drift": (
        "mlops_template.monitor.cli:drift",
        "compare the prediction log with the training split (Evidently); exit 1 on drift",
    ),
    "fetch": (
        "mlops_template.monitor.cli:fetch",
        "copy the shipped prediction log here (PREDICTION_LOG_URL, with dvc get-url)",
    ),
    "issue": (
        "mlops_template.monitor.issue:issue",
        "keep the one open `model-drift` GitHub issue up to date (gh)",
    ),
    "rules": (
        "mlops_template.monitor.rules:rules",
        "write the project's Prometheus series: training class priors, alert thresholds",
    ),
}

DEPLOY_COMMANDS: Commands = {
    "run": (
        "mlops_template.deploy.run:run",
        "deploy the version a GTO stage tag assigns (verify, render, apply, smoke-test)",
    ),
    "revert": (
        "mlops_template.deploy.run:revert",
        "after a failed deploy: re-assign and re-deploy the stage's previous version",
    ),
    "render": (
        "mlops_template.deploy.manifests:render_command",
        "render the Kubernetes manifests of a release for a stage",
    ),
    "smoke": (
        "mlops_template.deploy.smoke:smoke",
        "smoke-test a deployed endpoint (health, model tag, a real prediction)",
    ),
    "kubeconfig": (
        "mlops_template.deploy.run:kubeconfig",
        "cluster credentials of the job's environment (secret or OIDC) as KUBECONFIG",
    ),
}

COMMANDS: Commands = {
    "data": (
        "mlops_template.stages.data:data",
        "make data/ match data.dvc (cache, remote or example)",
    ),
    "validate": (
        "mlops_template.stages.validate:validate_command",
        "check the data against params.yaml schema",
    ),
    "prepare": ("mlops_template.stages.prepare:prepare", "stratified, seeded train/test split"),
    "train": (
        "mlops_template.stages.train:train_command",
        "train the model family chosen in params.yaml",
    ),
    "evaluate": (
        "mlops_template.stages.evaluate:evaluate_command",
        "metrics, latency and plots on the test split",
    ),
    "gate": (
        "mlops_template.stages.gate:gate",
        "accept or reject the model: metrics vs. the rules in params.yaml",
    ),
    "package": (
        "mlops_template.stages.package:package_command",
        "save the accepted model in the BentoML store and export it for the release",
    ),
    "summary": (
        "mlops_template.stages.summary:summary",
        "print the key metrics, gate verdict and outputs",
    ),
    "registry": (
        "mlops_template.deploy.registry:registry",
        "which release is in which stage (GTO tags)",
    ),
    "rollback": (
        "mlops_template.deploy.registry:rollback",
        "assign the previous prod version (or --to VERSION) again, as a GTO tag",
    ),
    "report": (
        "mlops_template.report.cli:report",
        "write the PR report: metrics/params diff, gate verdict, data changes, charts",
    ),
    "sweep": (
        "mlops_template.compute.sweep:sweep",
        "search train.<family> params with Ray Tune (params.yaml sweep); rank the trials",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def __init__(self, *args: object, lazy: Commands, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from the names and help kept here: no command module is imported."""
        rows = [(name, help_text) for name, (_, help_text) in self.lazy.items()]
        rows += [
            (name, self.commands[name].get_short_help_str(formatter.width))
            for name in super().list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    name="mlops",
    help=__doc__.splitlines()[0],
    context_settings=CONTEXT,
)
def mlops() -> None:
    pass


mlops.add_command(
    LazyGroup(
        "ci",
        lazy=CI_COMMANDS,
        help="CI steps: repro check, gate, report artifact, PR comment, DVC push. Each is what "
        "one action step runs; in GitHub Actions a mistake is also an error annotation.",
        short_help="CI steps: repro check, gate, report artifact, PR comment, DVC push",
    )
)
mlops.add_command(
    LazyGroup(
        "release",
        lazy=RELEASE_COMMANDS,
        help="The steps the release workflow runs on a version tag.",
        short_help="build, smoke-test and document the release bento",
    )
)
mlops.add_command(
    LazyGroup(
        "deploy",
        lazy=DEPLOY_COMMANDS,
        help="The steps the deploy workflow runs on a GTO stage tag.",
        short_help="deploy a release to Kubernetes, smoke-test it, roll back on failure",
    )
)
mlops.add_command(
    LazyGroup(
        "monitor",
        lazy=MONITOR_COMMANDS,
        help="Operate the served model: drift of the prediction log, the drift issue, the "
        "Prometheus series of the project.",
        short_help="drift check, drift issue, Prometheus rules",
    )
)


# Options shared by several commands.


def baseline_option(help: str, **kwargs: Any) -> Callable[[Any], Any]:
    """`--baseline REV`: the one way every gate command names its baseline revision."""
    return click.option("--baseline", metavar="REV", help=help, **kwargs)


def params_option() -> Callable[[Any], Any]:
    return click.option(
        "--params", type=click.Path(path_type=Path), default=PARAMS_FILE, show_default=True
    )


def out_option(default: Path = GATE_FILE, help: str = "verdict JSON") -> Callable[[Any], Any]:
    return click.option(
        "--out", type=click.Path(path_type=Path), default=default, show_default=True, help=help
    )


def _quiet_telemetry() -> None:
    """Telemetry off unless the user opted in explicitly; BentoML's store lives in the repo."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("BENTOML_HOME", str(Path.cwd() / ".bentoml"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mlops ARGV...` and return its exit status (the console script exits with it)."""
    _quiet_telemetry()
    determinism.apply()  # before any command imports numpy or a model library
    try:
        result = mlops.main(
            args=list(argv) if argv is not None else None,
            prog_name="mlops",
            standalone_mode=False,
        )
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"fix: {exc.hint}", file=sys.stderr)
        return 2
    except click.ClickException as exc:  # a usage mistake: click's message, exit 2
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
