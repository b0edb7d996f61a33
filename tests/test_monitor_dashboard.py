"""The Grafana dashboard (monitoring/grafana/model-service.json), checked without Grafana (none
exists here): its shape, the data source it asks for, and that every query reads either a
recording rule of monitoring/prometheus/ or one of the service's own series. That those series
are what a served model really exports is checked against a real server's /metrics in
tests/test_monitor_prometheus.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_monitor import dashboard_queries, promql_names, raw_names, recording_rules

from mlops_template.paths import ALERT_RULES, DASHBOARD, PROJECT_RULES

REPO = Path(__file__).resolve().parents[1]
RECORDED = recording_rules(REPO / ALERT_RULES, REPO / PROJECT_RULES)
SERVICE_SERIES = {  # src/mlops_template/serving/metrics.py, as exposed (counters: _total)
    "mlops_requests_total",
    *(f"mlops_request_duration_seconds_{s}" for s in ("bucket", "sum", "count")),
    *(f"mlops_rows_per_request_{s}" for s in ("bucket", "sum", "count")),
    "mlops_predictions_total",
    *(f"mlops_prediction_confidence_{s}" for s in ("bucket", "sum", "count")),
}


def test_the_dashboard_asks_for_a_prometheus_data_source_and_uses_it_everywhere():
    dashboard = json.loads((REPO / DASHBOARD).read_text())
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource",
        "prometheus",
        "datasource",
    )
    source = {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard["panels"]:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"] and all(t["datasource"] == source for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


@pytest.mark.parametrize(
    "topic",
    ["mlops_requests_total", "mlops:request_errors:ratio_rate5m", "mlops_request_duration_seconds",
     "mlops:prediction_share:ratio_rate1h", "mlops:training_class_prior:ratio",
     "mlops:prediction_confidence:mean1h"],
)  # fmt: skip
def test_the_dashboard_shows_traffic_errors_latency_mix_priors_and_confidence(topic):
    assert any(topic in query for query in dashboard_queries(REPO / DASHBOARD))


def test_every_query_reads_a_recording_rule_or_a_service_series():
    for query in dashboard_queries(REPO / DASHBOARD):
        names = promql_names(query)
        assert names, query
        assert names <= set(RECORDED) | SERVICE_SERIES, (query, names)
        assert raw_names(query, RECORDED) <= SERVICE_SERIES, query


def test_every_rule_reads_only_service_series_or_other_rules():
    alerts = (REPO / ALERT_RULES).read_text()
    import yaml

    for group in yaml.safe_load(alerts)["groups"]:
        for rule in group["rules"]:
            assert raw_names(rule["expr"], RECORDED) <= SERVICE_SERIES, rule


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (code) (rate(mlops_requests_total{endpoint="/p"}[5m]))', {"mlops_requests_total"}),
        ("a:b:c < bool 1e-9", {"a:b:c"}),
        ("avg_over_time(x[7d] offset 1h) - scalar(y)", {"x", "y"}),
        ("x / ignoring (class) group_left y", {"x", "y"}),
        ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
        ("vector(0.5)", set()),
    ],
)
def test_the_query_reader_finds_series_names_only(expr, names):
    assert promql_names(expr) == names


def test_a_misspelt_series_is_caught():
    assert not raw_names("rate(mlops_request_total[5m])", RECORDED) <= SERVICE_SERIES
