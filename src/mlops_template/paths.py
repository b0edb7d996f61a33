"""Every file and folder the pipeline, the service and the release read or write, declared once.

Paths are relative to the repository root (the working directory of every command).
"""

from __future__ import annotations

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
DATA_DVC = Path("data.dvc")
DVC_LOCK = Path("dvc.lock")
PYPROJECT = Path("pyproject.toml")

DATA_REPORT = Path("reports/data.json")  # validate: rows, classes, file hashes
TASK_FILE = Path("reports/task.json")  # prepare: what the metrics measure (the task's fingerprint)
SPLIT_DIR = Path("artifacts/split")  # prepare: train.csv, test.csv
TRAIN_CSV = SPLIT_DIR / "train.csv"
TEST_CSV = SPLIT_DIR / "test.csv"
MODEL_DIR = Path("artifacts/model")  # train: model.json + the family's files
LIVE_DIR = Path("dvclive")  # train: curves and summary (DVCLive)
QUALITY = Path("metrics/quality.json")  # evaluate: deterministic quality metrics
SERVING = Path("metrics/serving.json")  # evaluate: measured latency
METRICS_FILES = (str(QUALITY), str(SERVING))
PREDICTIONS = Path("plots/predictions.csv")
PER_CLASS_F1 = Path("plots/per_class_f1.csv")
GATE_FILE = Path("reports/gate.json")  # gate: the verdict
SERVING_DIR = Path("artifacts/serving")  # package: what the service runs (model.onnx, model.json)
BENTOMODEL_FILE = Path("artifacts/bento/model.bentomodel")  # package: the exported model
BENTOFILE = Path("bentofile.yaml")  # the service's build recipe
BUILD_CONTEXT = Path("src")  # `bentoml build` runs here: the bento holds `mlops_template/...`
CI_DIR = Path("build/ci")  # CI's own files (the OIDC token file outside Actions, too)
REPRO_FILE = CI_DIR / "repro.json"  # CI: what reproducing the pipeline found
REPORT_FILE = CI_DIR / "report.md"  # CI: the PR report (markdown)
RELEASE_VERDICT = Path("dist/gate-verdict.json")  # release: the gate against the previous release
DEPLOY_VALUES = Path("deploy/values.yaml")  # deploy: replicas, resources, host per stage
DEPLOY_TEMPLATES = Path("deploy/templates")  # deploy: the Kubernetes manifest templates
DEPLOY_DIR = Path("build/deploy")  # deploy: the rendered manifests and the downloaded release
MONITOR_DIR = Path("build/monitor")  # `mlops monitor drift`: the window's reports
PREDICTION_LOG_DIR = MONITOR_DIR / "log"  # where monitor.yml puts the fetched prediction log
DRIFT_FILE = MONITOR_DIR / "drift.json"  # the drift result (`mlops monitor issue` reads it)
DRIFT_HTML = MONITOR_DIR / "drift.html"  # Evidently's report
DRIFT_EVIDENTLY = MONITOR_DIR / "evidently.json"  # Evidently's report as JSON
DRIFT_SUMMARY = MONITOR_DIR / "summary.md"  # the job summary (markdown)
MONITORING_DIR = Path("monitoring")  # what operators load: Prometheus rules, Grafana dashboard
ALERT_RULES = MONITORING_DIR / "prometheus" / "alerts.rules.yml"  # hand-kept, project-agnostic
PROJECT_RULES = MONITORING_DIR / "prometheus" / "project.rules.yml"  # `mlops monitor rules`
DASHBOARD = MONITORING_DIR / "grafana" / "model-service.json"  # Grafana dashboard (import it)
SWEEP_FILE = Path("reports/sweep.json")  # `mlops sweep`: every trial, ranked (best first)
SWEEP_TABLE = Path("reports/sweep.md")  # `mlops sweep`: the ranked trials as a markdown table
