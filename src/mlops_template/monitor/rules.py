"""`mlops monitor rules`: write the project's own Prometheus series (monitoring/prometheus/
project.rules.yml): the training class priors and the alert thresholds, as constant recording
rules.

The alerts themselves (alerts.rules.yml) are hand-kept and know no project: they compare the
service's series with these. So the priors come from the project's own record of its data
(reports/data.json, written by `mlops validate`) and the thresholds from params.yaml
`monitor.alerts`, and re-running this after the data or the params change is all it takes.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic
from mlops_template.params import AlertParams, load_params
from mlops_template.paths import DATA_REPORT, PARAMS_FILE, PROJECT_RULES
from mlops_template.records import DataSummary

PRIOR = "mlops:training_class_prior:ratio"
THRESHOLD = "mlops:alert_threshold:{}"
HEADER = (
    "# Written by `mlops monitor rules` from {data} (training class priors) and params.yaml\n"
    "# monitor.alerts (thresholds); do not edit: change those and run it again.\n"
    "# Load it next to alerts.rules.yml.\n"
)


def priors(summary: DataSummary) -> dict[str, float]:
    """Each class's share of the data (the split is stratified: the training split's too)."""
    total = sum(summary.per_class.values())
    if not summary.per_class or total <= 0:
        raise UserError(
            f"{DATA_REPORT} records no rows per class", "re-create it: `dvc repro validate --force`"
        )
    return {label: count / total for label, count in summary.per_class.items()}


def _constant(record: str, value: float, labels: dict[str, str] | None = None) -> dict:
    rule: dict = {"record": record, "expr": f"vector({value:.6g})"}
    if labels:
        rule["labels"] = labels
    return rule


def project_rules(summary: DataSummary, alerts: AlertParams, source: str = str(DATA_REPORT)) -> str:
    rules = [_constant(PRIOR, share, {"class": label}) for label, share in priors(summary).items()]
    for name, value in alerts.model_dump().items():
        key = "min_predictions_1h" if name == "min_predictions" else name
        rules.append(_constant(THRESHOLD.format(key), float(value)))
    body = {"groups": [{"name": "mlops-project", "rules": rules}]}
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
    return HEADER.format(data=source) + text


@click.command("rules", help=__doc__)
@click.option("--params", type=click.Path(path_type=Path), default=PARAMS_FILE, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=PROJECT_RULES, show_default=True)
def rules(params: Path, out: Path) -> None:
    alerts = load_params(params).monitor.alerts
    write_text_atomic(out, project_rules(DataSummary.read(DATA_REPORT), alerts))
    print(f"wrote {out}: class priors from {DATA_REPORT}, thresholds from {params} monitor.alerts")
