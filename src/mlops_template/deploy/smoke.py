"""The smoke test of a deployed endpoint: is the release we just applied what answers there?

Health (`/livez`, `/readyz`), `/metadata` naming the model tag the release's bento holds, and a
real prediction: one instance built from the input spec /metadata publishes (each numeric column
in the middle of its bounds, the first allowed category, false), which must come back as one
answer with a known class, probabilities over every class summing to 1, and the same model tag.
The endpoint is retried for a while first: an ingress may lag a finished rollout.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import click

from mlops_template.errors import UserError

PROBA_SUM_TOLERANCE = 1e-4


@dataclass
class DeployedSmoke:
    url: str
    expected_tag: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.passed:
            return f"smoke test passed: {self.url} serves {self.expected_tag}"
        return f"smoke test FAILED at {self.url}:\n  - " + "\n  - ".join(self.problems)


def get_status(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def wait_healthy(url: str, wait_seconds: float) -> dict[str, int]:
    """Status of /livez and /readyz, retried until both are 200 or the time is up."""
    deadline = time.monotonic() + wait_seconds
    while True:
        statuses = {path: get_status(f"{url}{path}") for path in ("/livez", "/readyz")}
        if all(code == 200 for code in statuses.values()) or time.monotonic() >= deadline:
            return statuses
        time.sleep(1)


def example_instance(columns: list[dict[str, Any]]) -> list[Any]:
    """One valid instance from /metadata's column descriptions, in column order."""
    row: list[Any] = []
    for column in columns:
        if column.get("kind") == "categorical":
            row.append((column.get("values") or [""])[0])
        elif column.get("kind") == "boolean":
            row.append(False)
        else:
            low, high = column.get("min"), column.get("max")
            value = (low + high) / 2 if low is not None and high is not None else 0.0
            if low is not None and high is None:
                value = max(value, low)
            if high is not None and low is None:
                value = min(value, high)
            row.append(math.ceil(value) if column.get("integer") else value)
    return row


def check_prediction(answer: Any, metadata: dict[str, Any], report: DeployedSmoke) -> None:
    classes = [str(c) for c in metadata.get("classes") or []]
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        report.problems.append(f"/predict of one instance answered {str(answer)[:200]}")
        return
    (prediction,) = answer
    if str(prediction.get("label")) not in classes:
        report.problems.append(f"/predict label {prediction.get('label')!r} is not a class")
    probabilities = prediction.get("probabilities") or {}
    if sorted(map(str, probabilities)) != sorted(classes):
        report.problems.append("/predict probabilities do not name every class")
    elif abs(sum(float(p) for p in probabilities.values()) - 1) > PROBA_SUM_TOLERANCE:
        report.problems.append("/predict probabilities do not sum to 1")
    if prediction.get("model_version") != report.expected_tag:
        report.problems.append(
            f"/predict answered with model {prediction.get('model_version')}, "
            f"expected {report.expected_tag}"
        )


def smoke_deployed(url: str, expected_tag: str, wait_seconds: float = 120) -> DeployedSmoke:
    from mlops_template.release.smoke import post_json

    url = url.rstrip("/")
    report = DeployedSmoke(url, expected_tag)
    statuses = wait_healthy(url, wait_seconds)
    for path, code in statuses.items():
        if code != 200:
            report.problems.append(f"GET {path} answered {code or 'nothing'}, not 200")
    if not report.passed:
        return report
    try:
        metadata = post_json(f"{url}/metadata", {})
        if metadata.get("tag") != expected_tag:
            report.problems.append(
                f"/metadata names model {metadata.get('tag')}, but the release holds {expected_tag}"
            )
        instance = example_instance((metadata.get("input") or {}).get("columns") or [])
        answer = post_json(f"{url}/predict", {"instances": [instance]})
    except UserError as exc:
        report.problems.append(exc.message)
        return report
    except (OSError, ValueError) as exc:  # connection lost, or an answer that is not JSON
        report.problems.append(f"the endpoint failed: {exc}")
        return report
    check_prediction(answer, metadata, report)
    return report


@click.command(
    "smoke",
    help="Smoke-test a deployed endpoint: health, /metadata naming MODEL_TAG, a real prediction.",
)
@click.option("--url", required=True, help="the endpoint, e.g. https://model.example.com")
@click.option("--model-tag", required=True, help="the model the endpoint must serve (NAME:HASH)")
@click.option(
    "--wait", type=float, default=120, show_default=True, help="seconds to wait for health"
)
def smoke(url: str, model_tag: str, wait: float) -> int:
    report = smoke_deployed(url, model_tag, wait_seconds=wait)
    print(report.summary())
    return 0 if report.passed else 1
