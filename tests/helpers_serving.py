"""Shared by the packaging, service and release tests: a small real project, real CLIs, a server.

`trained_project` trains once per test session (the real prepare/train/evaluate stages in a child
process, so TensorFlow never enters the pytest process) and hands each caller its own copy, with
its own BentoML home. Everything runs for real: `mlops package`, `bentoml serve` on 127.0.0.1.
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
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
_TEMPLATES: dict[tuple[Any, ...], Path] = {}

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


def _build_template(root: Path, family: str, estimator: str, epochs: int) -> None:
    from mlops_template.custom.dataset import write_example_data
    from mlops_template.stages.data import workspace_hash

    root.mkdir(parents=True)  # fails loudly if a template is half-built
    params = yaml.safe_load((REPO / "params.yaml").read_text())
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
    write_example_data(root / "data" / "digits.csv")
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
) -> Path:
    """A fresh copy (`factory.mktemp(name)`) of a project trained with these settings.

    Training runs once per session and setting; `factory` is pytest's tmp_path_factory.
    """
    key = (family, estimator, epochs)
    template = _TEMPLATES.get(key)
    if template is None:
        template = factory.getbasetemp() / "templates" / "-".join(map(str, key))
        _build_template(template, family, estimator, epochs)
        _TEMPLATES[key] = template
    target = factory.mktemp(name) / "project"
    shutil.copytree(template, target)
    write_verdict(target, ACCEPTED if verdict is None else verdict)
    return target


def packaged_project(factory: Any, name: str, **kwargs: Any) -> Path:
    root = trained_project(factory, name, **kwargs)
    done = mlops(root, "package")
    assert done.returncode == 0, done.stderr
    return root


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


class DevServer:
    """`bentoml serve <import path>` inside a project (the dev path), on a free local port."""

    def __init__(self, root: Path, target: str = "mlops_template.serving.service:Classifier"):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bentoml",
                    "serve",
                    target,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=root,
                env=env(root),
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

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
