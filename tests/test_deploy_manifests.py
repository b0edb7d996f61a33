"""The Kubernetes manifests of a release: rendered from deploy/templates and deploy/values.yaml,
valid against Kubernetes' own schemas (kubernetes-validate --strict, offline) and, for the
ServiceMonitor, the Prometheus Operator's CRD schema (check-jsonschema, vendored)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlops_template import paths
from mlops_template.cli import main
from mlops_template.deploy.manifests import Target, Values, load_values, render, write_manifests
from mlops_template.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCHEMA = ROOT / "deploy" / "schemas" / "servicemonitor_v1.json"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/acme/shop/shop@{DIGEST}"
KUBERNETES = "1.30.0"  # the oldest Kubernetes the manifests are checked against


def target(stage: str = "prod", **changes: str) -> Target:
    fields = {
        "project": "shop",
        "version": "v1.2.0",
        "stage": stage,
        "image": IMAGE,
        "model_tag": "shop-model:0123abcd",
        **changes,
    }
    return Target(**fields)


@pytest.fixture(scope="module")
def values() -> Values:
    return load_values(ROOT / paths.DEPLOY_VALUES)


def objects(values: Values, stage: str = "prod", **changes: str) -> dict[str, dict]:
    rendered = render(target(stage, **changes), values, ROOT / paths.DEPLOY_TEMPLATES)
    return {yaml.safe_load(text)["kind"]: yaml.safe_load(text) for text in rendered.values()}


@pytest.fixture(scope="module")
def written(values: Values, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    out = tmp_path_factory.mktemp("manifests")
    return {
        stage: write_manifests(
            render(target(stage), values, ROOT / paths.DEPLOY_TEMPLATES), out / stage
        )
        for stage in ("staging", "prod")
    }


def test_every_manifest_but_the_crd_passes_kubernetes_validate_strict(written) -> None:
    files = [p for stage in written.values() for p in stage if p.name != "servicemonitor.yaml"]
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "-k", KUBERNETES, "--strict", *map(str, files)],
        capture_output=True,
        text=True,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # kubernetes-validate exits 0 on a kind it has no schema for: it must have checked each one.
    assert "Couldn't find schema" not in output and "WARN" not in output, output
    assert output.count("passed for resource") == len(files) == 10, output


def test_the_service_monitor_passes_the_vendored_crd_schema(written) -> None:
    monitors = [
        str(p) for stage in written.values() for p in stage if p.name == "servicemonitor.yaml"
    ]
    assert len(monitors) == 2
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), *monitors],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def crd_validator() -> jsonschema.Draft7Validator:
    """The vendored schema, checked once, as check-jsonschema applies it."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_unbroken_service_monitor_has_no_errors(values, crd_validator) -> None:
    assert list(crd_validator.iter_errors(objects(values)["ServiceMonitor"])) == []


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("spec", "endpoints", 0, "interval"), "30 seconds", "does not match"),
        (("spec", "endpoints", 0, "scrapeEvery"), "30s", "Additional properties"),
        (("spec", "endpoints"), "http", "is not of type 'array'"),
    ],
)
def test_the_crd_schema_catches_a_broken_service_monitor(
    values, crd_validator, path, value, error
) -> None:
    monitor = objects(values)["ServiceMonitor"]
    node = monitor
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = [e.message for e in crd_validator.iter_errors(monitor)]
    assert len(errors) == 1 and error in errors[0], errors


def test_the_deployment_runs_the_image_by_digest_locked_down(values: Values) -> None:
    deployment = objects(values)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["resources"] == values.resources.model_dump()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    (volume,) = pod["volumes"]
    assert volume == {"name": "tmp", "emptyDir": {"sizeLimit": values.tmp_size}}
    assert deployment["spec"]["replicas"] == values.replicas
    assert deployment["metadata"]["namespace"] == values.stages["prod"].namespace
    assert deployment["metadata"]["annotations"]["mlops-template/model-tag"] == (
        "shop-model:0123abcd"
    )


def test_selectors_never_name_the_version_labels_do(values: Values) -> None:
    """A selector is immutable: naming the version would make the next deploy fail."""
    found = objects(values)
    selector = found["Deployment"]["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in selector
    assert found["Service"]["spec"]["selector"] == selector
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert found["ServiceMonitor"]["spec"]["selector"]["matchLabels"] == selector
    pod_labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/version"] == "v1.2.0"
    assert selector.items() <= pod_labels.items()


def test_autoscaling_disruption_monitoring_and_host_come_from_the_values(values: Values) -> None:
    found = objects(values, "staging")
    hpa, pdb = found["HorizontalPodAutoscaler"], found["PodDisruptionBudget"]
    assert hpa["apiVersion"] == "autoscaling/v2" and pdb["apiVersion"] == "policy/v1"
    assert hpa["spec"]["minReplicas"] == values.autoscaling.min_replicas
    assert hpa["spec"]["maxReplicas"] == values.autoscaling.max_replicas
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["target"]["averageUtilization"] == values.autoscaling.cpu_utilization
    assert pdb["spec"]["minAvailable"] == values.disruption.min_available
    monitor = found["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": values.metrics.interval}
    ]
    assert values.metrics.labels.items() <= monitor["metadata"]["labels"].items()
    assert found["Ingress"]["spec"]["rules"][0]["host"] == values.stages["staging"].host
    namespaces = {obj["metadata"]["namespace"] for obj in found.values()}
    assert namespaces == {values.stages["staging"].namespace}


def test_a_value_cannot_inject_yaml(values: Values) -> None:
    hostile = 'x"\nkind: Secret\n---\napiVersion: v1'
    found = objects(values, model_tag=hostile)
    assert set(found) == {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "Ingress", "ServiceMonitor",
    }  # fmt: skip
    assert found["Deployment"]["metadata"]["annotations"]["mlops-template/model-tag"] == hostile


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "ghcr.io/acme/shop/shop:v1.2.0"}, "is not referenced by digest"),
        ({"image": "ghcr.io/acme/shop/shop@sha256:" + "ab" * 31}, "is not referenced by digest"),
        ({"version": "1.2.0"}, "is not a version"),
        ({"version": "v01.2.0"}, "is not a version"),
        ({"stage": "production"}, "unknown stage"),
    ],
)
def test_a_target_that_is_not_exact_is_refused(values, changes, message) -> None:
    stage = changes.pop("stage", "prod")
    with pytest.raises(UserError, match=message):
        render(target(stage, **changes), values, ROOT / paths.DEPLOY_TEMPLATES)


def edited(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / paths.DEPLOY_VALUES).read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"replicas": 1}, None),
        ({"replicas": 0}, "replicas: Input should be greater than or equal to 1"),
        ({"replicas": -1}, "replicas: Input should be greater than or equal to 1"),
        ({"autoscaling__max_replicas": 2}, None),  # == min_replicas
        ({"autoscaling__max_replicas": 1}, "min_replicas 2 is above max_replicas 1"),
        ({"autoscaling__cpu_utilization": 100}, None),
        ({"autoscaling__cpu_utilization": 101}, "less than or equal to 100"),
        ({"autoscaling__cpu_utilization": 0}, "greater than or equal to 1"),
        ({"disruption__min_available": 1}, None),  # one below min_replicas
        ({"disruption__min_available": 2}, "must be below autoscaling.min_replicas"),
        ({"disruption__min_available": -1}, "greater than or equal to 0"),
        ({"port": 65535}, None),
        ({"port": 65536}, "port: Input should be less than or equal to 65535"),
        ({"resources__limits__cpu": "two"}, "resources.limits.cpu: String should match"),
        ({"stages__prod": None}, "stages must be exactly staging, prod"),
        ({"stages__prod__host": "https://x.example.com"}, "stages.prod.host"),
        ({"replica": 2}, "replica: Extra inputs are not permitted"),
    ],
)
def test_values_are_checked_at_every_bound(tmp_path: Path, changes, error) -> None:
    path = edited(tmp_path, **changes)
    if error is None:
        load_values(path)
        return
    with pytest.raises(UserError) as caught:
        load_values(path)
    assert error in caught.value.message
    assert str(path) in caught.value.hint


def test_a_missing_or_broken_values_file_is_one_message(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_values(tmp_path / "nope.yaml")
    broken = tmp_path / "values.yaml"
    broken.write_text("replicas: [1\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_values(broken)


def test_cli_render_writes_the_manifests_and_refuses_a_tag(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.yaml").write_text("kind: Old\n")  # from an earlier render: removed
    args = ["deploy", "render", "--version", "v1.2.0", "--stage", "prod", "--project", "shop",
            "--model-tag", "shop-model:1", "--values", str(ROOT / paths.DEPLOY_VALUES),
            "--out", str(out)]  # fmt: skip
    monkeypatch.chdir(ROOT)  # the templates are found relative to the repository root
    assert main([*args, "--image", IMAGE]) == 0
    names = ["deployment.yaml", "hpa.yaml", "ingress.yaml", "pdb.yaml", "service.yaml",
             "servicemonitor.yaml"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == names
    written = {p.name: p.read_text() for p in out.iterdir()}
    assert main([*args, "--image", "ghcr.io/acme/shop/shop:latest"]) == 2
    assert {p.name: p.read_text() for p in out.iterdir()} == written  # nothing touched
    err = capsys.readouterr().err
    assert "is not referenced by digest" in err and "fix: " in err
