"""Per-request latency of the service before and after it served ONNX, side by side in one run.

Run: `uv run python benchmarks/onnx_serving.py --before <git rev> [--families sklearn lightgbm]
[--requests 300]`

For each family, two copies of the example project are trained and packaged: one with the code
of `--before` (`git archive`, the service unpickled the model and ran it natively), one with the
work tree's code (the service runs the ONNX export with ONNX Runtime). Both servers run at once
(`bentoml serve`, 1 worker, batching off) and are asked in turns, request by request, so that
the shared machine's load falls on both alike: 1-instance and 100-instance /predict requests,
one client, sequential. Prints the median and p90 of each and the after/before ratio, and the
size of each stored model (what a bento carries), with the command line and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAIN = """
import sys
from mlops_template.cli import main
for stage in ("prepare", "train", "evaluate"):
    if main([stage]):
        sys.exit(1)
"""
ACCEPTED = {
    "accepted": True,
    "baseline": {"source": None, "available": False},
    "rules": [],
    "reasons": [],
    "summary": "accepted (benchmark)",
}


def code_of(rev: str, into: Path) -> Path:
    """src/ and params.yaml of `rev` ("WORKTREE": the work tree's)."""
    into.mkdir(parents=True)
    if rev == "WORKTREE":
        shutil.copytree(ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(ROOT / "params.yaml", into / "params.yaml")
        return into
    archive = subprocess.run(
        ["git", "archive", rev, "src", "params.yaml"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tempfile.NamedTemporaryFile(suffix=".tar") as tmp:
        Path(tmp.name).write_bytes(archive)
        with tarfile.open(tmp.name) as tar:
            tar.extractall(into, filter="data")
    return into


def environment(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(root / "src"),
        BENTOML_HOME=str(root / ".bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        DVC_NO_ANALYTICS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    return env


def packaged(root: Path, family: str) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["family"] = family
    params["train"]["sklearn"]["estimator"] = "logreg"
    params["evaluate"]["latency_repeats"] = 20
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = environment(root)
    steps = [
        [
            sys.executable,
            "-c",
            "from mlops_template.custom.dataset import write_example_data as w;"
            f"w(__import__('pathlib').Path({params['data']['path']!r}))",
        ],
        [sys.executable, "-c", TRAIN],
    ]
    for step in steps:
        subprocess.run(step, cwd=root, env=env, check=True, capture_output=True)
    from mlops_template.stages.data import workspace_hash

    md5 = workspace_hash(root / "data")
    (root / "data.dvc").write_text(f"outs:\n- md5: {md5}\n  path: data\n  hash: md5\n")
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports/gate.json").write_text(json.dumps(ACCEPTED))
    done = subprocess.run(
        [sys.executable, "-m", "mlops_template.cli", "package"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"package failed in {root}:\n{done.stderr[-2000:]}")


def stored_bytes(root: Path) -> int:
    models = root / ".bentoml" / "models"
    return sum(
        p.stat().st_size
        for p in models.rglob("*")
        if p.is_file() and p.name not in ("model.yaml", "provenance.json", "latest")
    )


def serve(root: Path, port: int) -> subprocess.Popen:
    from mlops_template.serving.store import bentoml_command

    command = bentoml_command(
        "serve",
        "mlops_template.serving.service:Classifier",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--arg",
        "batching=false",
    )
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        command,
        cwd=root,
        env=environment(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server at {url} exited")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server at {url} not ready")


def ask(url: str, body: bytes) -> float:
    request = urllib.request.Request(
        f"{url}/predict", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as r:
        r.read()
        assert r.status == 200
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="git revision of the native service")
    parser.add_argument("--families", nargs="+", default=["sklearn", "lightgbm"])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    from mlops_template.release.smoke import free_port

    row = [float(i % 17) for i in range(64)]
    bodies = {n: json.dumps({"instances": [row] * n}).encode() for n in (1, 100)}
    print(
        f"`{shlex.join(['python', 'benchmarks/onnx_serving.py', *sys.argv[1:]])}`, "
        f"load average before: {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| family | rows | before p50 ms | after p50 ms | after/before | before p90 | after p90 |"
    )
    print("|---|---|---|---|---|---|---|")
    sizes = []
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as tmp:
        for family in args.families:
            roots = {}
            for label, rev in (("before", args.before), ("after", "WORKTREE")):
                root = code_of(rev, Path(tmp) / family / label)
                packaged(root, family)
                roots[label] = root
            sizes.append((family, stored_bytes(roots["before"]), stored_bytes(roots["after"])))
            ports = {label: free_port() for label in roots}
            servers = {label: serve(roots[label], ports[label]) for label in roots}
            try:
                urls = {label: f"http://127.0.0.1:{ports[label]}" for label in roots}
                for label, url in urls.items():
                    wait_ready(url, servers[label])
                for n, body in bodies.items():
                    times: dict[str, list[float]] = {label: [] for label in roots}
                    for i in range(args.requests + 20):
                        order = ("before", "after") if i % 2 else ("after", "before")
                        for label in order:
                            elapsed = ask(urls[label], body)
                            if i >= 20:  # warm-up
                                times[label].append(elapsed * 1000)
                    b, a = (statistics.median(times[k]) for k in ("before", "after"))
                    b90, a90 = (
                        statistics.quantiles(times[k], n=10)[-1] for k in ("before", "after")
                    )
                    cells = [family, n, f"{b:.2f}", f"{a:.2f}", f"{a / b:.2f}", f"{b90:.2f}"]
                    print("| " + " | ".join(map(str, [*cells, f"{a90:.2f}"])) + " |")
            finally:
                for process in servers.values():
                    os.killpg(process.pid, 15)
                    process.wait(30)
    print("\n| family | stored model before (bytes) | after (bytes) |\n|---|---|---|")
    for family, before, after in sizes:
        print(f"| {family} | {before} | {after} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
