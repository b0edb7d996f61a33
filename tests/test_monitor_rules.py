"""The Prometheus rules: `promtool check rules` and `promtool test rules` on the shipped files,
and `mlops monitor rules` writing the project's priors and thresholds from its own records.

promtool comes with the Debian package `prometheus` (.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.monitor.rules import PRIOR, THRESHOLD, priors, project_rules
from mlops_template.params import AlertParams, load_params
from mlops_template.paths import ALERT_RULES, DATA_REPORT, PROJECT_RULES
from mlops_template.records import DataSummary

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "monitoring" / "prometheus" / "tests"
FIXTURE = TESTS / "project.fixture.rules.yml"
FIXTURE_RECORD = DataSummary(rows=100, columns=4, per_class={"ant": 50, "bee": 30, "cat": 20})
FIXTURE_SOURCE = "a 3-class test record (ant 50%, bee 30%, cat 20%)"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: `apt-get install -y --no-install-recommends prometheus`"
    return subprocess.run([tool, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_shipped_rules_pass_promtool_check():
    done = promtool("check", "rules", str(ALERT_RULES), str(PROJECT_RULES), str(FIXTURE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == 3


def test_promtool_check_catches_a_broken_expression(tmp_path):
    broken = tmp_path / "broken.rules.yml"
    text = ALERT_RULES.read_text().replace("sum(rate(mlops_predictions_total[1h]))", "sum(rate(")
    broken.write_text(text)
    assert promtool("check", "rules", str(broken)).returncode == 1


def test_the_alert_unit_tests_pass():
    """Error ratio (above, at the bound), p99 latency, no traffic, class mix (shifted, too few
    predictions, the training mix): monitoring/prometheus/tests/alerts.test.yml."""
    done = promtool("test", "rules", str(TESTS / "alerts.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_the_project_rules_only_the_missing_rules_alert_fires():
    done = promtool("test", "rules", str(TESTS / "missing.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_confidence_alert_unit_test_passes():
    """A week of history at 4-minute evaluations: ~15 s of promtool."""
    done = promtool("test", "rules", str(TESTS / "confidence.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path):
    for name in ("alerts.test.yml", FIXTURE.name):
        shutil.copy2(TESTS / name, tmp_path / name)
    shutil.copy2(ALERT_RULES, tmp_path / ALERT_RULES.name)
    test = tmp_path / "alerts.test.yml"
    test.write_text(
        test.read_text()
        .replace("../alerts.rules.yml", ALERT_RULES.name)
        .replace("value: 0.1\n", "value: 0.2\n", 1)
    )
    done = promtool("test", "rules", str(test))
    assert done.returncode == 1 and "mlops:request_errors:ratio_rate5m" in done.stdout + done.stderr


def test_the_fixture_is_what_the_generator_writes():
    assert FIXTURE.read_text() == project_rules(FIXTURE_RECORD, AlertParams(), FIXTURE_SOURCE)


def test_the_committed_project_rules_match_the_committed_records():
    """Stale after the data or monitor.alerts change: run `mlops monitor rules`."""
    expected = project_rules(DataSummary.read(REPO / DATA_REPORT), load_params().monitor.alerts)
    assert (REPO / PROJECT_RULES).read_text() == expected, "run `mlops monitor rules`"


def _rules(text: str) -> list[dict]:
    return yaml.safe_load(text)["groups"][0]["rules"]


def test_priors_are_each_class_share_and_sum_to_one():
    shares = priors(DataSummary(rows=7, columns=2, per_class={"x": 1, "y": 2, "z": 4}))
    assert shares == {"x": 1 / 7, "y": 2 / 7, "z": 4 / 7}
    assert sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("per_class", [{}, {"x": 0, "y": 0}])
def test_a_record_without_rows_per_class_is_refused(per_class):
    with pytest.raises(UserError, match="records no rows per class"):
        priors(DataSummary(rows=0, columns=2, per_class=per_class))


def test_the_command_writes_priors_and_thresholds_from_the_projects_files(tmp_path, monkeypatch):
    from fork import CLASSES, make_project

    monkeypatch.chdir(make_project(tmp_path / "fork", family="sklearn"))
    counts = dict(zip(CLASSES, (60, 45, 75), strict=True))
    summary = DataSummary(rows=180, columns=10, per_class=counts)
    Path(DATA_REPORT).parent.mkdir(parents=True, exist_ok=True)
    Path(DATA_REPORT).write_text(summary.model_dump_json())
    text = Path("params.yaml").read_text()
    Path("params.yaml").write_text(text.replace("error_ratio: 0.05", "error_ratio: 0.02"))
    assert main(["monitor", "rules"]) == 0
    rules = _rules(Path(PROJECT_RULES).read_text())
    found = {(r["record"], r.get("labels", {}).get("class")): r["expr"] for r in rules}
    for label, count in counts.items():
        assert found[(PRIOR, label)] == f"vector({count / 180:.6g})"
    assert found[(THRESHOLD.format("error_ratio"), None)] == "vector(0.02)"
    assert found[(THRESHOLD.format("min_predictions_1h"), None)] == "vector(200)"
    assert len(rules) == len(CLASSES) + len(AlertParams.model_fields)
    done = promtool("check", "rules", str(Path.cwd() / PROJECT_RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_without_the_data_record_says_how_to_make_it(tmp_path, monkeypatch, capsys):
    from fork import make_project

    monkeypatch.chdir(make_project(tmp_path / "fork", family="sklearn"))
    assert main(["monitor", "rules"]) == 2
    assert "reports/data.json not found" in capsys.readouterr().err
    assert not Path(PROJECT_RULES).exists()
