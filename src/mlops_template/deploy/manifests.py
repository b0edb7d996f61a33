"""`mlops deploy render`: the Kubernetes manifests of one release in one stage.

The templates (deploy/templates/*.yaml, Jinja2) hold the shape; deploy/values.yaml holds every
number and name (replicas, resources, autoscaling bounds, hosts and namespaces per stage). Every
value enters a template through `tojson` (JSON is YAML), so no value can add a key or a
document; an undefined name fails. The image is always referenced by digest: what runs is
exactly what the release attested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic

STAGES = ("staging", "prod")
_DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOST = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantities(_Strict):
    cpu: str = Field(pattern=_QUANTITY)
    memory: str = Field(pattern=_QUANTITY)


class Resources(_Strict):
    requests: Quantities
    limits: Quantities


class Autoscaling(_Strict):
    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    cpu_utilization: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}"
            )
        return self


class Disruption(_Strict):
    min_available: int = Field(ge=0)


class Probes(_Strict):
    readiness_period_seconds: int = Field(ge=1)
    liveness_period_seconds: int = Field(ge=1)
    startup_failure_threshold: int = Field(ge=1)


class Metrics(_Strict):
    interval: str = Field(pattern=r"^[1-9][0-9]*(s|m)$")
    labels: dict[str, str] = Field(default_factory=dict)


class Stage(_Strict):
    namespace: str = Field(pattern=_DNS_LABEL)
    host: str = Field(pattern=_HOST, max_length=253)


class Values(_Strict):
    """deploy/values.yaml."""

    app: str = Field(pattern=_DNS_LABEL)
    port: int = Field(ge=1, le=65535)
    replicas: int = Field(ge=1)
    resources: Resources
    autoscaling: Autoscaling
    disruption: Disruption
    probes: Probes
    tmp_size: str = Field(pattern=_QUANTITY)
    metrics: Metrics
    rollout_timeout_seconds: int = Field(ge=1)
    ingress_class: str = Field(pattern=_DNS_LABEL)
    stages: dict[str, Stage]

    @model_validator(mode="after")
    def _every_stage(self) -> Values:
        missing = [stage for stage in STAGES if stage not in self.stages]
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if missing or unknown:
            raise ValueError(f"stages must be exactly {', '.join(STAGES)}")
        if self.disruption.min_available >= self.autoscaling.min_replicas:
            raise ValueError(
                f"disruption.min_available ({self.disruption.min_available}) must be below "
                f"autoscaling.min_replicas ({self.autoscaling.min_replicas}), or no node "
                "could ever be drained"
            )
        return self


def load_values(path: Path = paths.DEPLOY_VALUES) -> Values:
    fix = f"fix {path} (see the comments in it)"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found", "run from the repository root") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}", fix) from None
    try:
        return Values.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise UserError(f"{path}: {where}: {error['msg']}", fix) from None


@dataclass(frozen=True)
class Target:
    """What one deployment runs: a release version as an image by digest, in a stage."""

    project: str
    version: str
    stage: str
    image: str  # registry/path@sha256:...
    model_tag: str  # the model the release's bento holds (what /metadata must report)

    def check(self) -> None:
        if self.stage not in STAGES:
            raise UserError(f"unknown stage {self.stage!r}", f"use one of {', '.join(STAGES)}")
        if not _VERSION.match(self.version):
            raise UserError(f"{self.version!r} is not a version", "use vX.Y.Z, e.g. v1.2.0")
        if not _DIGEST_REF.match(self.image):
            raise UserError(
                f"image {self.image!r} is not referenced by digest",
                "pass IMAGE@sha256:<64 hex digits>: a deployment never runs a movable tag",
            )


def context(target: Target, values: Values) -> dict[str, Any]:
    """The names the templates see."""
    stage = values.stages[target.stage]
    selector = {"app.kubernetes.io/name": values.app, "app.kubernetes.io/instance": target.project}
    labels = {
        **selector,
        "app.kubernetes.io/version": target.version,
        "app.kubernetes.io/part-of": target.project,
        "app.kubernetes.io/managed-by": "mlops-template",
        "mlops-template/stage": target.stage,
    }
    return {
        **values.model_dump(mode="json", exclude={"stages"}),
        "namespace": stage.namespace,
        "host": stage.host,
        "image": target.image,
        "version": target.version,
        "model_tag": target.model_tag,
        "selector": selector,
        "labels": labels,
        "monitor_labels": {**labels, **values.metrics.labels},
    }


def render(
    target: Target,
    values: Values,
    templates: Path = paths.DEPLOY_TEMPLATES,
) -> dict[str, str]:
    """file name -> manifest text, one per template, in name order."""
    import jinja2

    target.check()
    names = sorted(p.name for p in templates.glob("*.yaml"))
    if not names:
        raise UserError(f"no templates in {templates}", "restore deploy/templates/ from git")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML: values are escaped by `tojson`
        keep_trailing_newline=True,
    )
    data = context(target, values)
    rendered = {}
    for name in names:
        try:
            text = env.get_template(name).render(**data)
        except jinja2.TemplateError as exc:
            raise UserError(f"{templates / name}: {exc}", "fix the template") from None
        document = yaml.safe_load(text)
        if not isinstance(document, dict) or "kind" not in document:
            raise UserError(f"{templates / name} renders no Kubernetes object", "fix it")
        rendered[name] = text
    return rendered


def write_manifests(rendered: dict[str, str], out: Path) -> list[Path]:
    """Write each manifest (atomically) into `out`, removing manifests of earlier renders."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written


@click.command("render", help=__doc__)
@click.option("--version", required=True, help="the release version, e.g. v1.2.0")
@click.option("--stage", type=click.Choice(STAGES), required=True)
@click.option("--image", required=True, help="IMAGE@sha256:DIGEST of the release")
@click.option("--model-tag", required=True, help="the model tag the release's bento holds")
@click.option("--project", help="default: params.yaml project.name")
@click.option(
    "--values",
    "values_file",
    type=click.Path(path_type=Path),
    default=paths.DEPLOY_VALUES,
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="folder for the manifests (default: build/deploy/<stage>/manifests)",
)
def render_command(
    version: str,
    stage: str,
    image: str,
    model_tag: str,
    project: str | None,
    values_file: Path,
    out: Path | None,
) -> None:
    if project is None:
        from mlops_template.params import load_params

        project = load_params().project.name
    target = Target(project, version, stage, image, model_tag)
    written = write_manifests(render(target, load_values(values_file)), out or manifests_dir(stage))
    for path in written:
        print(path)


def manifests_dir(stage: str) -> Path:
    return paths.DEPLOY_DIR / stage / "manifests"
