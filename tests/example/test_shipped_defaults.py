"""The template's shipped params.yaml: no default verdict may depend on the machine."""

from __future__ import annotations

import json

import yaml
from project import REPO

from mlops_template.metrics_io import flatten
from mlops_template.paths import SERVING


def test_no_default_gate_rule_reads_a_measured_metric() -> None:
    rules = yaml.safe_load((REPO / "params.yaml").read_text())["gate"]["rules"]
    measured = set(flatten(json.loads((REPO / SERVING).read_text())))
    assert measured, "metrics/serving.json holds the measured metrics"
    assert not set(rules) & measured
