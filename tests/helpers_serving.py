"""Shared by the packaging, service and release tests: a small real project, real CLIs, a server.

`trained_project` trains once per test session and setting (the real prepare/train/evaluate
stages in a child process, so TensorFlow never enters the pytest process) and hands each caller
its own copy, with its own BentoML home. Everything runs for real: `mlops package`, `bentoml
serve` on 127.0.0.1. By default the project is a small synthetic task (string classes, numeric,
categorical, boolean and nullable columns), not the example: `dataset="digits"` is for the tests
of the example itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from project import shared_build

REPO = Path(__file__).resolve().parents[1]

ACCEPTED = {
    "accepted": True,
    "baseline": {"source": None, "available": False},
    "rules": [
        {
            "metric": "accuracy",
            "direction": "higher",
            "value": 0.97,
            "baseline": None,
            "checks": [
                {
                    "kind": "min",
                    "bound": 0.9,
                    "actual": 0.97,
                    "passed": True,
                    "reason": "accuracy 0.97 is at or above the minimum 0.9",
                }
            ],
            "passed": True,
        }
    ],
    "reasons": [],
    "summary": "accepted: 1 rule passed (change bounds skipped: no baseline)",
}

REJECTED = {
    **ACCEPTED,
    "accepted": False,
    "reasons": ["accuracy 0.5 is below the minimum 0.9"],
    "summary": "not accepted: 1 of 1 rules failed",
}

TRAIN_SCRIPT = """
import sys
from mlops_template.cli import main
for stage in ("prepare", "train", "evaluate"):
    code = main([stage])
    if code:
        sys.exit(code)
"""


def env(root: Path, **extra: str) -> dict[str, str]:
    """Subprocess environment: the project's own BentoML home, telemetry off."""
    out = dict(os.environ)
    out.update(
        BENTOML_HOME=str(root / ".bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        DVC_NO_ANALYTICS="1",
        ITERATIVE_DO_NOT_TRACK="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    out.update(extra)
    return out


def run(
    root: Path, *args: str, timeout: float = 600, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=root,
        env=env(root, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mlops(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real `mlops` CLI, run by this interpreter inside the project."""
    return run(root, sys.executable, "-m", "mlops_template.cli", *args, timeout=timeout)


def write_verdict(root: Path, verdict: dict[str, Any]) -> None:
    path = root / "reports" / "gate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict, indent=2) + "\n")


# A small synthetic task (the kept parts are tested on it, not on the example): string classes,
# numbers on different scales (bounded, unbounded, an integer column), a categorical, a boolean
# and a nullable column, and a shape (2x3) so that nested instances are exercised too.
SYNTH_PROJECT = "synth"
SYNTH_TARGET = "species"
SYNTH_CLASSES = ["ant", "bee", "cat"]
SYNTH_COLOURS = ["red", "green", "blue"]
SYNTH_ROWS_PER_CLASS = 60
SYNTH_TEST_ROWS = 45  # test_size 0.25 of 180 rows
SYNTH_SCHEMA: dict[str, Any] = {
    "min_rows": 100,
    "min_rows_per_class": 20,
    "classes": SYNTH_CLASSES,
    "columns": {
        "length_mm": {"dtype": "float64", "min": 0.0, "max": 500.0},
        "ratio": {"dtype": "float64"},
        "legs": {"dtype": "int64", "min": 0, "max": 12},
        "colour": {"dtype": "str", "values": SYNTH_COLOURS},
        "winged": {"dtype": "bool"},
        "weight_g": {"dtype": "float64", "min": 0.0, "nullable": True},
        SYNTH_TARGET: {"dtype": "str"},
    },
    "shape": [2, 3],
}
SYNTH_FEATURES = [c for c in SYNTH_SCHEMA["columns"] if c != SYNTH_TARGET]


def write_synthetic_data(path: Path, seed: int = 3) -> None:
    """A deterministic CSV of the synthetic task (a few empty cells in the nullable column)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = [",".join([*SYNTH_FEATURES, SYNTH_TARGET])]
    for k, label in enumerate(SYNTH_CLASSES):
        for i in range(SYNTH_ROWS_PER_CLASS):
            length = float(np.clip(rng.normal(5 + 150 * k, 20), 0, 500))
            weight = "" if i % 15 == 7 else f"{max(rng.normal(0.01 * 10**k, 0.003 * 10**k), 0):.5f}"
            cells = [
                f"{length:.2f}",
                f"{rng.normal(k - 1, 0.7):.4f}",
                str(int(np.clip(round(rng.normal(2 + 3 * k, 1)), 0, 12))),
                SYNTH_COLOURS[int(rng.choice(3, p=np.roll([0.7, 0.2, 0.1], k)))],
                str(bool(rng.random() < 0.2 + 0.3 * k)),
                weight,
                label,
            ]
            lines.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def _build_template(root: Path, dataset: str, family: str, estimator: str, epochs: int) -> None:
    from mlops_template.custom.dataset import write_example_data
    from mlops_template.stages.data import workspace_hash

    root.mkdir(parents=True)  # fails loudly if a template is half-built
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if dataset == "synthetic":
        params["project"] = {"name": SYNTH_PROJECT, "description": "Synthetic test task"}
        params["data"] = {"path": "data/synth.csv", "target": SYNTH_TARGET}
        params["schema"] = SYNTH_SCHEMA
        write_synthetic_data(root / "data" / "synth.csv")
    else:  # the example (digits), for the tests of the example itself
        write_example_data(root / params["data"]["path"])
    params["train"]["family"] = family
    params["train"]["sklearn"]["estimator"] = estimator
    params["train"]["keras"].update(architecture="mlp", epochs=epochs)
    params["train"]["keras"]["mlp"]["hidden_units"] = [32]
    params["evaluate"]["latency_repeats"] = 20
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy2(REPO / "bentofile.yaml", root / "bentofile.yaml")  # the release builds from
    shutil.copytree(  # bentofile.yaml with src/ as the build context, as in the repository
        REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    dvc = {"outs": [{"md5": workspace_hash(root / "data"), "path": "data", "hash": "md5"}]}
    (root / "data.dvc").write_text(yaml.safe_dump(dvc, sort_keys=False))
    done = run(root, sys.executable, "-c", TRAIN_SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]


def trained_project(
    factory: Any,
    name: str,
    family: str = "sklearn",
    estimator: str = "logreg",
    epochs: int = 1,
    verdict: dict[str, Any] | None = None,
    dataset: str = "synthetic",
) -> Path:
    """A fresh copy (`factory.mktemp(name)`) of a project trained with these settings.

    `dataset` is "synthetic" (the small task above, project `synth`) or "digits" (the
    example). Training runs once per session and setting; `factory` is pytest's
    tmp_path_factory.
    """
    key = (dataset, family, estimator, epochs)
    with shared_build("trained", key) as (template, done):
        if not done:
            _build_template(template, dataset, family, estimator, epochs)
    target = factory.mktemp(name) / "project"
    shutil.copytree(template, target)
    write_verdict(target, ACCEPTED if verdict is None else verdict)
    return target


def packaged_project(factory: Any, name: str, **kwargs: Any) -> Path:
    """A fresh copy of a trained project packaged by `mlops package` (its own `.bentoml`
    store inside): packaged once per test run and setting, shared by every module."""
    with shared_build("packaged", sorted(kwargs.items())) as (template, done):
        if not done:
            root = trained_project(factory, f"{name}-packaging", **kwargs)
            packaged = mlops(root, "package")
            assert packaged.returncode == 0, packaged.stderr
            shutil.copytree(root, template)
    target = factory.mktemp(name) / "project"
    shutil.copytree(template, target)
    return target


def split_frame(root: Path) -> Any:
    """The project's test split as the model takes it (the spec's columns and dtypes)."""
    from mlops_template.model_io import read_descriptor
    from mlops_template.params import load_params
    from mlops_template.paths import MODEL_DIR, TEST_CSV
    from mlops_template.table import read_table

    spec = read_descriptor(root / MODEL_DIR).spec
    return spec.frame(read_table(root / TEST_CSV, load_params(root / "params.yaml")))


def json_instances(frame: Any, spec: Any) -> list[list[Any]]:
    """Rows of a spec-typed frame as a client sends them: JSON types in column order, null
    for a missing value, whole numbers for integer columns."""
    import math

    rows = []
    for row in frame.itertuples(index=False, name=None):
        out: list[Any] = []
        for value, column in zip(row, spec.columns, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.append(None)
            elif column.kind == "numeric":
                out.append(int(value) if column.integer else float(value))
            elif column.kind == "boolean":
                out.append(bool(value))
            else:  # a missing category is "" in the frame, null from a client
                out.append(str(value) or None)
        rows.append(out)
    return rows


def free_port() -> int:
    from mlops_template.release.smoke import free_port as pick

    return pick()


def http(
    url: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
    method: str = "POST",
    timeout: float = 60,
) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url: str, payload: Any) -> tuple[int, Any]:
    status, body = http(url, json.dumps(payload).encode())
    return status, json.loads(body)


def drive_asgi(
    app: Any,
    path: str = "/predict",
    headers: list[tuple[str, str]] | None = None,
    chunks: list[bytes] | None = None,
    method: str = "POST",
    query: bytes = b"",
) -> list[dict[str, Any]]:
    """Run one HTTP request through an ASGI app in this process (the body in `chunks`, as it
    streams in); returns the messages the app sent."""
    import asyncio

    chunks = [b"{}"] if chunks is None else chunks
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or [])],
    }
    asyncio.run(app(scope, receive, send))
    return sent


class DevServer:
    """`bentoml serve <import path>` inside a project (the dev path), on a free local port,
    with template arguments (`--arg KEY=VALUE`) and extra environment variables."""

    def __init__(
        self,
        root: Path,
        target: str = "mlops_template.serving.service:Classifier",
        args: tuple[str, ...] = (),
        **extra_env: str,
    ):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"server-{self.port}.log"
        command = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1"]
        command += ["--port", str(self.port), *[p for a in args for p in ("--arg", a)]]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=root,
                env=env(root, **extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if http(f"{self.url}/readyz", method="GET", content_type=None, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def running_server(root: Path, args: tuple[str, ...] = (), **extra_env: str) -> Iterator[DevServer]:
    """A ready DevServer for the length of the block (a module-scoped fixture yields it)."""
    server = DevServer(root, args=args, **extra_env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
