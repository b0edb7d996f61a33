"""The keras bento before and after ONNX serving: installed size and cold start, and where the
cold start goes.

Run: `uv run --extra keras python benchmarks/cold_start.py [--model artifacts/model] [--runs 3]`

- **size**: what a bento installs, as measured in this environment: the packages and all they
  need according to uv.lock (as `mlops release build` selects them, `release/requirements.py`),
  summed over the files each installed distribution lists. "before": the bentofile's packages
  plus the keras family's former serving packages (TensorFlow, Keras, scikit-learn, joblib);
  "after": the bentofile's packages alone (the service runs ONNX).
- **cold start**: the trained keras model (`--model`, a train-stage output) is stored twice in a
  temp BentoML home: as the network + preprocessing (loaded with Keras, as the service did
  before) and as its ONNX export (`to_onnx`, run by ONNX Runtime). A minimal BentoML service for
  each, 1 worker, `bentoml serve` on 127.0.0.1: seconds from the process start to the worker's
  spawn and to the first `/readyz` 200 (medians of `--runs`), the CPU seconds and RSS of the
  server's processes then. Each twice: with no .pyc files (every module compiled at start, as
  in an environment installed without bytecode and run with PYTHONDONTWRITEBYTECODE=1) and
  with compiled bytecode (as in a BentoML image, whose Dockerfile sets UV_COMPILE_BYTECODE=1);
  the .pyc files live under a temp PYTHONPYCACHEPREFIX, the environment is not touched.
- **where the time goes**: `python -X importtime` of the ONNX service module, summed per
  top-level package, and the worker's steps (import, ASGI app, model load) timed one by one.
Prints the figures, `uptime` before and after, and this command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Before ONNX serving: the bentofile's packages, plus the keras family's serving packages.
BEFORE_BASE = ["bentoml", "numpy", "pandas", "pydantic"]
KERAS_SERVING = ["tensorflow-cpu", "keras", "scikit-learn", "joblib"]

ONNX_SERVICE = """
import os

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Service:
    stored = bentoml.models.BentoModel(os.environ["COLD_START_TAG"])

    def __init__(self) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            self.stored.path_of("model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]

    @bentoml.api
    def predict(self, rows: list[list[float]]) -> list[list[float]]:
        x = np.asarray(rows, dtype=np.float32)
        feeds = {n: x[:, [i]] for i, n in enumerate(self.names)}
        return self.session.run(["probabilities"], feeds)[0].tolist()
"""

KERAS_SERVICE = """
import os

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Service:
    stored = bentoml.models.BentoModel(os.environ["COLD_START_TAG"])

    def __init__(self) -> None:
        import joblib
        import keras

        self.prep = joblib.load(self.stored.path_of("preprocess.joblib"))
        self.network = keras.models.load_model(self.stored.path_of("model.keras"))

    @bentoml.api
    def predict(self, rows: list[list[float]]) -> list[list[float]]:
        x = self.prep.transform(np.asarray(rows)).astype("float32")
        return np.asarray(self.network(x, training=False)).tolist()
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def bentofile_packages() -> list[str]:
    import yaml

    return list(yaml.safe_load((REPO / "bentofile.yaml").read_text())["python"]["packages"])


def installed_size(packages: list[str]) -> tuple[int, int, list[tuple[int, str]]]:
    """(bytes, distributions, the 5 largest) of `packages` and everything uv.lock says they
    need, as installed in this environment (the files each distribution's RECORD lists)."""
    import tomllib
    from importlib import metadata

    from mlops_template.release.requirements import lock_closure

    names = lock_closure(tomllib.loads((REPO / "uv.lock").read_text()), packages)
    sizes = []
    for name in names:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:  # a dependency for another platform
            continue
        paths = [Path(str(f.locate())) for f in files]
        sizes.append((sum(p.stat().st_size for p in paths if p.is_file()), name))
    return sum(s for s, _ in sizes), len(sizes), sorted(sizes, reverse=True)[:5]


def store_models(model_dir: Path, home: Path) -> dict[str, str]:
    """The trained model in `home` twice: keras files as trained, and the ONNX export."""
    os.environ["BENTOML_HOME"] = str(home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import bentoml

    from mlops_template.model_io import load_model

    model = load_model(model_dir).model
    graph = model.to_onnx()
    tags = {}
    with bentoml.models.create("cold-start-onnx") as stored:
        Path(stored.path_of("model.onnx")).write_bytes(graph)
    tags["onnx"] = str(stored.tag)
    with bentoml.models.create("cold-start-keras") as stored:
        for name in ("model.keras", "preprocess.joblib"):
            shutil.copy2(model_dir / name, stored.path_of(name))
    tags["keras"] = str(stored.tag)
    return tags


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_usage(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds) of a process and its descendants: the CPU time is the figure
    other jobs on the machine disturb least."""
    import psutil

    root = psutil.Process(pid)
    rss = cpu = 0.0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss / 2**20
            t = p.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
    return rss, cpu


def worker_started(pid: int) -> bool:
    """Whether the server has spawned its worker (the process that serves the API)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
        return any("worker" in " ".join(c.cmdline()) for c in children)
    except psutil.Error:
        return False


def cold_start(service_dir: Path, module: str, env: dict[str, str]) -> tuple[float, ...]:
    """Seconds from `bentoml serve` to the worker's spawn and to the first /readyz 200, and the
    RSS (MB) and CPU seconds of the server's processes then."""
    port = free_port()
    cmd = [sys.executable, "-m", "bentoml", "serve", f"{module}:Service"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = service_dir / f"{module}.log"
    spawned = float("nan")
    start = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(
            cmd, cwd=service_dir, env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        while time.perf_counter() - start < 300:
            if server.poll() is not None:
                raise RuntimeError(f"{module} exited: {log.read_text()[-2000:]}")
            if spawned != spawned and worker_started(server.pid):  # NaN: not seen yet
                spawned = time.perf_counter() - start
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return spawned, time.perf_counter() - start, *tree_usage(server.pid)
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{module} not ready after 300 s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a worker still loading may ignore SIGTERM
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def import_breakdown(
    service_dir: Path, module: str, env: dict[str, str]
) -> list[tuple[str, float]]:
    """Seconds spent importing each top-level package's own modules (`-X importtime` self
    times summed per package) while importing the service module."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=service_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            name = match.group(3).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


WORKER_STEPS = """
import json, time
marks = [("start", time.perf_counter())]
import bentoml
marks.append(("import bentoml", time.perf_counter()))
from _bentoml_impl.loader import load
service = load("onnx_service:Service", standalone_load=True)
marks.append(("import the service module", time.perf_counter()))
app = service.to_asgi(is_main=True)
marks.append(("build the ASGI app", time.perf_counter()))
instance = service.inner()
marks.append(("load the model (ONNX Runtime session)", time.perf_counter()))
import uvicorn
marks.append(("import uvicorn", time.perf_counter()))
print(json.dumps({b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}))
"""


def worker_steps(service_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds of each step a BentoML worker takes before it serves (its own code path, in
    one fresh interpreter)."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", WORKER_STEPS],
        cwd=service_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        default=REPO / "artifacts" / "model",
        help="a keras model directory the train stage wrote",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-size", action="store_true")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_size:
            base = bentofile_packages()
            print("\n| bento requirements | installed | distributions | largest |")
            print("| --- | ---: | ---: | --- |")
            for label, packages in (
                ("before: bentofile, keras family's packages", BEFORE_BASE + KERAS_SERVING),
                ("after: bentofile (ONNX Runtime)", base),
            ):
                total, dists, largest = installed_size(packages)
                top = ", ".join(f"{name} {size / 2**20:.0f} MB" for size, name in largest)
                print(f"| {label} | {total / 2**20:.0f} MB | {dists} | {top} |")

        home = tmp / "bentoml"
        tags = store_models(args.model.resolve(), home)
        service_dir = tmp / "services"
        service_dir.mkdir()
        (service_dir / "onnx_service.py").write_text(textwrap.dedent(ONNX_SERVICE))
        (service_dir / "keras_service.py").write_text(textwrap.dedent(KERAS_SERVICE))
        base_env = {
            **os.environ,
            "BENTOML_HOME": str(home),
            "BENTOML_DO_NOT_TRACK": "true",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        bytecode = {  # Python reads (and writes) .pyc files only under PYTHONPYCACHEPREFIX
            "none": {"PYTHONPYCACHEPREFIX": str(tmp / "empty"), "PYTHONDONTWRITEBYTECODE": "1"},
            "compiled": {"PYTHONPYCACHEPREFIX": str(tmp / "pycache")},
        }
        for kind in ("keras", "onnx"):  # compiles the bytecode, as an image build does
            cold_start(
                service_dir,
                f"{kind}_service",
                {**base_env, **bytecode["compiled"], "COLD_START_TAG": tags[kind]},
            )

        print(
            "\n| service | .pyc | cold start median (s) | runs (s) | worker spawned at (s) "
            "| CPU s to ready | RSS at ready (MB) |"
        )
        print("| --- | --- | ---: | --- | ---: | ---: | ---: |")
        for kind in ("keras", "onnx"):
            for pyc, pyc_env in bytecode.items():
                env = {**base_env, **pyc_env, "COLD_START_TAG": tags[kind]}
                runs = [cold_start(service_dir, f"{kind}_service", env) for _ in range(args.runs)]
                spawned, ready, rss, cpu = (
                    statistics.median(column) for column in zip(*runs, strict=True)
                )
                print(
                    f"| {kind} | {pyc} | {ready:.2f} | {', '.join(f'{r[1]:.2f}' for r in runs)} "
                    f"| {spawned:.2f} | {cpu:.2f} | {rss:.0f} |"
                )

        env = {**base_env, **bytecode["compiled"], "COLD_START_TAG": tags["onnx"]}
        print("\nimports of the ONNX service module (-X importtime, .pyc compiled, s):")
        for name, seconds in import_breakdown(service_dir, "onnx_service", env)[:10]:
            print(f"  {name:<24} {seconds:6.2f}")
        print("\nthe worker's steps in one interpreter (median s; `bentoml serve` imports the")
        print("service module once more in its own process before it spawns the worker):")
        for pyc, pyc_env in bytecode.items():
            env = {**base_env, **pyc_env, "COLD_START_TAG": tags["onnx"]}
            steps = [worker_steps(service_dir, env) for _ in range(args.runs)]
            medians = {k: statistics.median(step[k] for step in steps) for k in steps[0]}
            print(f"  .pyc {pyc}: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
    print(f"\nafter: {uptime()}")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
