"""A real Prometheus (Debian package) on 127.0.0.1 scraping a real served model (`bentoml serve`
of the synthetic task, helpers_serving) under a little load, with the shipped alert rules and
the project rules `mlops monitor rules` writes from the project's own records.

The load is skewed on purpose: only instances of the first class, plus a few bad requests and
an unknown path. Checked: the counters Prometheus scraped equal what the client was answered;
the recording rules give the class shares, their total variation from the training priors and
the mean confidence the answers carried; the class-mix alert is pending (its `for` is 15
minutes) and no other alert is active; every Grafana query returns data from this Prometheus
and names only series the served model exports on /metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers_monitor import dashboard_queries, raw_names, recording_rules
from helpers_serving import (
    SYNTH_CLASSES,
    SYNTH_TARGET,
    DevServer,
    free_port,
    http,
    json_instances,
    mlops,
    packaged_project,
    post,
    split_frame,
)

from mlops_template import paths
from mlops_template.model_io import read_descriptor
from mlops_template.records import DataSummary

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
REQUESTS = 24
ROWS = 3
BAD_REQUESTS = 4


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = packaged_project(tmp_path_factory, "monitor-prometheus")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault("monitor", {})["alerts"] = {"min_predictions": 1}  # a test's traffic
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for step in (("validate",), ("monitor", "rules")):
        done = mlops(root, *step)
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def server(project):
    server = DevServer(project)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Prometheus:
    def __init__(self, work: Path, target: str, rule_files: list[Path]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "no prometheus: `apt-get install -y --no-install-recommends prometheus`"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "model", "static_configs": [{"targets": [target]}]}],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = work / "prometheus.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'tsdb'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def get(self, path: str) -> dict:
        status, body = http(f"{self.url}{path}", method="GET", content_type=None, timeout=10)
        assert status == 200, body[:500]
        return json.loads(body)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                ready = http(f"{self.url}/-/ready", method="GET", content_type=None, timeout=2)
                if ready[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready:\n{self.log.read_text()[-3000:]}")

    def query(self, expr: str) -> list[dict]:
        answer = self.get("/api/v1/query?query=" + urllib.parse.quote(expr))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> dict[str, float]:
        """{class label (or ""): value} of an instant query."""
        return {r["metric"].get("class", ""): float(r["value"][1]) for r in self.query(expr)}

    def wait_for(self, expr: str, expected: dict[str, float], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.value(expr) == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{expr}: {self.value(expr)} != {expected}")

    def settled(self, expr: str, timeout: float = 60) -> dict[str, float]:
        """The value of `expr` once its rules have been evaluated on the scraped counters."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.value(expr):
                return found
            time.sleep(0.5)
        raw = self.query("sum by (class) (rate(mlops_predictions_total[1h]))")
        raise AssertionError(f"{expr}: no data (raw rates {raw}); {self.log.read_text()[-2000:]}")

    stop = DevServer.stop  # the same: its own process group, by PID, TERM then KILL


@pytest.fixture(scope="module")
def prometheus(project, server, tmp_path_factory):
    work = tmp_path_factory.mktemp("prometheus")
    rules = [REPO / paths.ALERT_RULES, project / paths.PROJECT_RULES]
    prometheus = Prometheus(work, server.url.removeprefix("http://"), rules)
    try:
        prometheus.wait_ready()
        yield prometheus
    finally:
        prometheus.stop()


@pytest.fixture(scope="module")
def load(project, server, prometheus):
    """Skewed traffic: first-class instances only, in two halves with a scrape between them;
    returns what the client was answered."""
    import pandas as pd

    spec = read_descriptor(project / paths.MODEL_DIR).spec
    labels = pd.read_csv(project / paths.TEST_CSV, usecols=[SYNTH_TARGET])[SYNTH_TARGET]
    frame = split_frame(project)[(labels == SYNTH_CLASSES[0]).to_numpy()]
    rows = json_instances(frame, spec)
    answers = []
    prometheus.wait_for('up{job="model"}', {"": 1.0})
    for i in range(REQUESTS):
        chunk = [rows[(i * ROWS + k) % len(rows)] for k in range(ROWS)]
        status, answer = post(f"{server.url}/predict", {"instances": chunk})
        assert status == 200, answer
        answers += answer
        if i + 1 == REQUESTS // 2:  # a rate needs an increase between two scrapes
            answered = 'sum(mlops_requests_total{endpoint="/predict", code="200"})'
            prometheus.wait_for(answered, {"": float(i + 1)})
    for _ in range(BAD_REQUESTS):
        assert post(f"{server.url}/predict", {"instances": []})[0] == 400
    assert http(f"{server.url}/no-such-path", method="GET", content_type=None)[0] == 404
    return answers


def test_prometheus_scrapes_what_the_clients_were_answered(prometheus, load):
    prometheus.wait_for(
        'sum(mlops_requests_total{endpoint="/predict", code="200"})', {"": float(REQUESTS)}
    )
    counts = Counter(a["label"] for a in load)
    prometheus.wait_for(
        "sum by (class) (mlops_predictions_total)", {k: float(v) for k, v in counts.items()}
    )
    bad = 'sum(mlops_requests_total{endpoint="/predict", code="400"})'
    prometheus.wait_for(bad, {"": float(BAD_REQUESTS)})
    prometheus.wait_for('sum(mlops_requests_total{endpoint="unknown"})', {"": 1.0})


def test_the_recording_rules_give_the_mix_its_shift_and_the_confidence(project, prometheus, load):
    test_prometheus_scrapes_what_the_clients_were_answered(prometheus, load)
    counts = Counter(a["label"] for a in load)
    total = sum(counts.values())
    summary = DataSummary.read(project / paths.DATA_REPORT)
    priors = {k: v / sum(summary.per_class.values()) for k, v in summary.per_class.items()}
    assert prometheus.value("mlops:training_class_prior:ratio") == pytest.approx(priors, abs=1e-6)
    shares = prometheus.settled("mlops:prediction_share:ratio_rate1h")
    # per-class rates extrapolate from each series' own first sample: shares are close, not exact
    assert shares == pytest.approx({k: v / total for k, v in counts.items()}, abs=0.1)
    expected = 0.5 * sum(abs(counts.get(c, 0) / total - p) for c, p in priors.items())
    (tvd,) = prometheus.settled("mlops:prediction_shift:tvd1h").values()
    assert tvd == pytest.approx(expected, abs=0.1) and tvd > 0.2
    answered = sum(a["confidence"] for a in load) / total
    totals = "sum(mlops_prediction_confidence_sum) / sum(mlops_prediction_confidence_count)"
    assert prometheus.value(totals) == {"": pytest.approx(answered, rel=1e-9)}
    # a rate leaves out what the first scrape found: the hour's mean is close, not exact
    (mean,) = prometheus.settled("mlops:prediction_confidence:mean1h").values()
    assert mean == pytest.approx(answered, abs=0.05)
    (ratio,) = prometheus.settled("mlops:request_errors:ratio_rate5m").values()
    assert ratio == 0.0  # 400s are the clients' mistakes, not errors of the service
    (p99,) = prometheus.settled("mlops:request_duration_seconds:p99_rate5m").values()
    assert 0 < p99 <= 30


def test_only_the_class_mix_alert_is_active_and_it_waits_for_its_15_minutes(prometheus, load):
    # Until the rates have two scrapes, "no traffic" is pending too: wait for the traffic to be
    # seen (a bounded wait; the alert set must then be exactly the class-mix alert).
    expected = [("ModelPredictionMixShifted", "pending")]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alerts = prometheus.get("/api/v1/alerts")["data"]["alerts"]
        if [(a["labels"]["alertname"], a["state"]) for a in alerts] == expected:
            break
        time.sleep(0.5)
    assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == expected
    assert alerts[0]["labels"]["severity"] == "ticket"
    assert "total variation" in alerts[0]["annotations"]["summary"]


def test_every_dashboard_query_returns_data_and_names_exported_series(server, prometheus, load):
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http(f"{server.url}/metrics", method="GET", content_type=None)
    assert status == 200
    exported = {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    recorded = recording_rules(REPO / paths.ALERT_RULES, REPO / paths.PROJECT_RULES)
    for query in dashboard_queries(REPO / paths.DASHBOARD):
        assert raw_names(query, recorded) <= exported, query
        expr = query.replace("$__rate_interval", "1m")
        if "offset 1h" in query:  # a week's history does not exist yet: the query only runs
            assert prometheus.query(expr) == []
        else:  # a rate needs two scrapes of a series: wait for them
            assert prometheus.settled(expr), query
