"""`mlops release smoke`: serve the built bento for real and check it before it ships.

Given a `.bento` file, it is imported into a FRESH, empty BentoML home (so the check proves the
file carries its model); given a bento tag, the current store is used. The bento is served with
`bentoml serve` on 127.0.0.1 (a free port), and the check waits for /readyz, predicts the WHOLE
test split over HTTP (instances built from the model's FeatureSpec, in column order, as a client
would send them), requires every label to equal the offline model's (model_io.load_model on
artifacts/model: the trained model, not its ONNX export, so this cross-checks what the bento
runs against what was evaluated) and the probabilities to match, checks that /metadata
describes the packaged model (artifacts/bento/model.bentomodel), and stops the server.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mlops_template import paths
from mlops_template.contract import Column, FeatureSpec
from mlops_template.errors import UserError
from mlops_template.model_io import load_model
from mlops_template.serving import store

DEFAULT_CHUNK = 100  # instances per request when /metadata names no limit
PROBA_TOLERANCE = 1e-5  # the package stage's bound for the ONNX export; labels must be equal
METADATA_KEYS = ("git_commit", "data_md5", "params", "metrics", "gate")


@dataclass
class SmokeReport:
    bento: str
    url: str
    rows: int = 0
    label_mismatches: int = 0
    max_proba_diff: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"{self.bento} at {self.url}: {self.rows} test rows, "
            f"{self.rows - self.label_mismatches}/{self.rows} labels agree with the offline model, "
            f"max probability difference {self.max_proba_diff:.2e}"
        )
        if self.passed:
            return f"smoke test passed: {head}"
        return f"smoke test FAILED: {head}\n  - " + "\n  - ".join(self.problems)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bento_tag_of_file(path: Path) -> str:
    """The `name:version` recorded in a .bento archive's bento.yaml."""
    try:
        with tarfile.open(path, "r:*") as archive:
            member = archive.extractfile("./bento.yaml") or archive.extractfile("bento.yaml")
            info = yaml.safe_load(member.read()) if member else None
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise UserError(
            f"{path} is not a readable bento archive ({exc})",
            "rebuild it with `mlops release build`",
        ) from None
    if not isinstance(info, dict) or "name" not in info or "version" not in info:
        raise UserError(f"{path} has no bento.yaml with a name and version", "rebuild it")
    return f"{info['name']}:{info['version']}"


def import_bento(path: Path, home: Path) -> str:
    """`bentoml import FILE` into `home`; returns the bento tag."""
    tag = bento_tag_of_file(path)
    done = subprocess.run(
        store.bentoml_command("import", str(path.resolve())),
        capture_output=True,
        text=True,
        env=store.bentoml_env(home),
    )
    if done.returncode != 0:
        raise UserError(
            f"`bentoml import {path}` failed: {done.stderr.strip()[-800:]}",
            "rebuild the bento with `mlops release build`",
        )
    return tag


class Server:
    """A `bentoml serve` subprocess on 127.0.0.1, stopped with SIGTERM (graceful) then KILL."""

    def __init__(self, target: str, home: Path | None, cwd: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = store.bentoml_command(
            "serve", target, "--host", "127.0.0.1", "--port", str(self.port)
        )
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=store.bentoml_env(home),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches every worker
            )

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(
                    f"the server exited (status {self.process.returncode}) before it was ready:\n"
                    + self.log_tail(),
                    "fix the error in the server log above",
                )
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise UserError(
            f"the server was not ready within {timeout:g} s:\n" + self.log_tail(),
            "raise --timeout, or fix the error in the server log above",
        )

    def stop(self, timeout: float = 30) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def post_json(url: str, payload: Any, timeout: float = 60) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:500]
        raise UserError(f"POST {url} answered {exc.code}: {body}", "see the server log") from None


@contextmanager
def serving(target: str, timeout: float):
    """Serve a .bento file (imported into a fresh home) or a bento tag; yields (Server, tag)."""
    with tempfile.TemporaryDirectory(prefix="mlops-smoke-") as tmp:
        tmp_path = Path(tmp)
        home: Path | None = None
        tag = target
        if target.endswith(".bento") or Path(target).is_file():
            if not Path(target).is_file():
                raise UserError(f"{target} not found", "build it with `mlops release build`")
            home = tmp_path / "bentoml"
            tag = import_bento(Path(target), home)
        server = Server(tag, home, cwd=tmp_path, log=tmp_path / "server.log")
        try:
            server.wait_ready(timeout)
            yield server, tag
        finally:
            server.stop()


def read_test_rows(test_csv: Path, spec: FeatureSpec) -> pd.DataFrame:
    """The test split's feature columns as the model takes them (categorical ones as text)."""
    if not test_csv.exists():
        raise UserError(f"{test_csv} not found", "run `dvc repro prepare` (or `dvc pull`) first")
    text_columns = {c.name: str for c in spec.columns if c.kind == "categorical"}
    return spec.frame(pd.read_csv(test_csv, dtype=text_columns or None))


def json_value(value: Any, column: Column) -> Any:
    """One cell of the feature frame as a client sends it: null for a missing value (NaN, or
    "" in a categorical column), true/false for a boolean (1.0/0.0 in the frame), plain Python
    types, and integers for integer columns."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if column.kind == "boolean":
        return bool(value)
    if column.kind == "categorical":
        return str(value) or None
    if column.kind == "numeric":
        number = float(value)
        return int(number) if column.integer and number.is_integer() else number
    return value


def instances(rows: pd.DataFrame, spec: FeatureSpec) -> list[list[Any]]:
    """Positional instances in the spec's column order, JSON-safe."""
    columns = list(spec.columns)
    return [
        [json_value(v, c) for v, c in zip(row, columns, strict=True)]
        for row in rows.itertuples(index=False, name=None)
    ]


def check_predictions(url: str, model_dir: Path, test_csv: Path, report: SmokeReport) -> None:
    model = load_model(model_dir)
    rows = read_test_rows(test_csv, model.spec)
    expected = model.predict_proba(rows)
    payload = instances(rows, model.spec)
    metadata = post_json(f"{url}/metadata", {})
    max_rows = int((metadata.get("input") or {}).get("max_rows") or DEFAULT_CHUNK)
    labels: list[Any] = []
    proba: list[list[float]] = []
    names = [str(c) for c in model.classes]
    for start in range(0, len(payload), max_rows):
        answer = post_json(f"{url}/predict", {"instances": payload[start : start + max_rows]})
        labels += [a["label"] for a in answer]
        proba += [[a["probabilities"][n] for n in names] for a in answer]
    report.rows = len(payload)
    compare_answers(report, labels, proba, expected, list(model.classes))


def compare_answers(
    report: SmokeReport,
    labels: list[Any],
    proba: list[list[float]],
    expected: np.ndarray,
    classes: list[Any],
) -> None:
    """Served answers vs. the offline model: every label equal AND every probability within
    PROBA_TOLERANCE (either alone can hide a broken service)."""
    if len(labels) != len(expected):
        report.problems.append(f"{len(expected)} instances sent, {len(labels)} answers received")
        return
    offline = [str(classes[i]) for i in expected.argmax(axis=1)]
    served = [str(label) for label in labels]  # JSON may carry an integer class as a number
    mismatched = [i for i, (a, b) in enumerate(zip(served, offline, strict=True)) if a != b]
    report.label_mismatches = len(mismatched)
    report.max_proba_diff = float(np.max(np.abs(np.asarray(proba) - expected))) if proba else 0.0
    if mismatched:
        report.problems.append(
            f"{len(mismatched)} of {len(expected)} served labels differ from the offline model "
            f"(first rows: {mismatched[:10]})"
        )
    if report.max_proba_diff > PROBA_TOLERANCE:
        report.problems.append(
            f"probabilities differ by up to {report.max_proba_diff:.2e} "
            f"(tolerance {PROBA_TOLERANCE:g})"
        )


def check_metadata(url: str, bentomodel: Path, report: SmokeReport) -> None:
    packaged = store.read_bentomodel(bentomodel)
    served = post_json(f"{url}/metadata", {})
    if served.get("tag") != packaged.tag:
        report.problems.append(
            f"the server runs model {served.get('tag')}, but {bentomodel} holds {packaged.tag}"
        )
    provenance = packaged.provenance
    if served.get("family") != provenance.model.family:
        report.problems.append(
            f"/metadata family {served.get('family')!r} != {provenance.model.family!r}"
        )
    expected = {
        "git_commit": provenance.git_commit,
        "data_md5": provenance.data.md5,
        "params": provenance.params,
        "metrics": provenance.metrics,
        "gate": provenance.gate.to_json(),
    }
    for key in METADATA_KEYS:
        if served.get(key) != expected[key]:
            report.problems.append(f"/metadata {key} differs from the packaged model's record")
    if (served.get("gate") or {}).get("accepted") is not True:
        report.problems.append("/metadata says the served model was not accepted by the gate")


def smoke(
    target: str,
    model_dir: Path = paths.MODEL_DIR,
    test_csv: Path = paths.TEST_CSV,
    bentomodel: Path = paths.BENTOMODEL_FILE,
    timeout: float = 120,
) -> SmokeReport:
    model_dir, test_csv, bentomodel = model_dir.resolve(), test_csv.resolve(), bentomodel.resolve()
    with serving(target, timeout) as (server, tag):
        report = SmokeReport(bento=tag, url=server.url)
        check_metadata(server.url, bentomodel, report)
        check_predictions(server.url, model_dir, test_csv, report)
    return report
