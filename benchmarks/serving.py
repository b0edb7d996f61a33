"""Serving speed, cold start and body-limit memory, measured side by side in one run.

Run: `uv run --extra keras python benchmarks/serving.py [--families sklearn keras] [--duration 10]`
Needs `hey` (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y hey`).

For each family, in a temp copy of the project: `mlops data` + `dvc repro` make the packaged
model; then, one server at a time on 127.0.0.1:
- the real service (`bentoml serve`, its own BENTOML_HOME): cold start (process start to
  /readyz 200), `hey` at 1, 8 and 32 clients sending one-row /predict requests, then 8 clients
  sending 1000-row requests (the most a request may carry), then the 10 MB body attack (worker
  RSS at idle, peak while 20 oversized bodies arrive, with and without Content-Length; every
  one must get 413);
- keras only: the same service with adaptive batching off;
- the ceiling: a bare ASGI app (Starlette, uvicorn, 1 process, no access log) that loads the
  same served model (`OnnxModel`, artifacts/serving) and answers the same JSON
  (`schemas.predictions`); the same one-row and 1000-row loads.
Prints the markdown tables for the README with the command line and the load average, and
PASS/FAIL against the targets (exit status 1 when one is missed). Figures from a shared machine
are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from project import copy_project, run  # noqa: E402

from mlops_template import contract, paths  # noqa: E402
from mlops_template.release.smoke import free_port  # noqa: E402
from mlops_template.serving import config, store  # noqa: E402

CLIENTS = (1, 8, 32)
BIG_ROWS = 1000  # rows per request of the large-request load (the service's max_rows)
BIG_CLIENTS = 8
WARMUP_S = 2.0
READY_TIMEOUT_S = 120.0
ATTACK_BODY_BYTES = 10 * 1024 * 1024
ATTACK_REQUESTS = 20  # half with Content-Length, half chunked
ATTACK_PARALLEL = 10
TARGET_RATIO_VS_BARE = 0.60
TARGET_BATCH_GAIN = 2.0
TARGET_COLD_START_S = 15.0
TARGET_MEMORY_MB = 100.0
SERVICE = "mlops_template.serving.service:Classifier"
ROW = [float(i % 17) for i in range(64)]  # one valid instance (64 values in 0..16)
HEY_INSTALL = (
    "error: the load generator `hey` is not installed\n"
    "fix: on Debian/Ubuntu `sudo apt-get update && sudo apt-get install -y hey`; "
    "elsewhere `go install github.com/rakyll/hey@latest`"
)


# --- the ceiling: a bare ASGI app with the same model and the same JSON --------------------------


def bare_app(model_dir: Path) -> Any:
    """Starlette app: /predict parses `{"instances": [...]}`, runs the model, answers the service's
    Prediction list; /readyz. No validation beyond the shape, no batching, no middleware."""
    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from mlops_template.params import load_params
    from mlops_template.serving.onnx_model import OnnxModel
    from mlops_template.serving.schemas import predictions, to_frame

    model = OnnxModel.load(model_dir)
    tag = store.model_tag(load_params(model_dir.parents[1] / "params.yaml").project.name, model_dir)
    n_features = len(model.spec.names)

    def answer(rows: np.ndarray) -> list[dict[str, Any]]:
        frame = to_frame(model.spec, [tuple(r) for r in rows])
        return [p.model_dump() for p in predictions(model.predict_proba(frame), model.classes, tag)]

    async def predict(request: Request) -> JSONResponse:
        try:
            instances = json.loads(await request.body())["instances"]
            rows = np.asarray(instances, dtype=np.float64).reshape(len(instances), n_features)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        # The model runs on the event loop, one request at a time: no thread hand-off. Measured
        # here, that is the faster of the two (a thread pool lost 50-60% at 32 clients).
        return JSONResponse(answer(rows))

    async def readyz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    answer(np.zeros((1, n_features), dtype=np.float64))  # first call traces a keras model
    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", readyz)]
    )


def serve_bare(model_dir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(
        bare_app(model_dir),
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


# --- servers ----------------------------------------------------------------------------------


class Server:
    """A server subprocess in its own session; `cold_start_s` is process start to /readyz 200."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str], port: int):
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"server-{name}.log"
        self.cold_start_s: float | None = None
        self._started = time.perf_counter()
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited before ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        self.cold_start_s = time.perf_counter() - self._started
                        return self.cold_start_s
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout:g} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: `bentoml serve`'s worker children."""
        import psutil

        children = psutil.Process(self.process.pid).children(recursive=True)
        workers = [c.pid for c in children if "_bentoml_impl.worker" in " ".join(c.cmdline())]
        if not workers:
            raise RuntimeError(f"no BentoML worker under {self.name} (pid {self.process.pid})")
        return workers

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the session (graceful), then SIGKILL whatever is left, workers included:
        BentoML starts its workers in process groups of their own."""
        import psutil

        try:
            tree = [
                psutil.Process(self.process.pid),
                *psutil.Process(self.process.pid).children(recursive=True),
            ]
        except psutil.NoSuchProcess:
            tree = []
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=30)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)
        self.process.wait(10)


def bentoml_server(name: str, repo: Path, args: Sequence[str] = (), **env: str) -> Server:
    """`bentoml serve` of the service, in the temp copy (its model, its store)."""
    port = free_port()
    command = store.bentoml_command(
        "serve",
        SERVICE,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *[part for arg in args for part in ("--arg", arg)],
    )
    return Server(name, command, repo, store.bentoml_env(repo / ".bentoml", **env), port)


def unbatched_server(repo: Path, args: Sequence[str]) -> tuple[Server, str]:
    """The service with adaptive batching off (`--arg batching=false`)."""
    return (
        bentoml_server("bentoml-unbatched", repo, [*args, "batching=false"]),
        "`--arg batching=false`",
    )


def bare_server(repo: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--bare-model",
        str(repo / paths.SERVING_DIR),
        "--bare-port",
        str(port),
    ]
    return Server("bare", command, repo, dict(os.environ), port)


# --- load with hey -----------------------------------------------------------------------------


@dataclass
class Load:
    family: str
    server: str
    clients: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    responses: int
    errors: int  # non-2xx answers + transport errors
    detail: str  # status codes / error kinds
    load_avg: float
    others_cpu: float  # % of all CPUs used by processes other than hey, the server and this
    cpu_ms: float  # server CPU time per answered request
    batch_size: float | None = None  # mean merged batch (adaptive batching), from /metrics
    rows: int = 1  # instances per request


def hey(url: str, body: Path, clients: int, duration: float) -> str:
    command = [
        "hey",
        "-z",
        f"{duration:g}s",
        "-c",
        str(clients),
        "-t",
        "30",
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(body),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 90)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed: {done.stderr[-2000:]}")
    return done.stdout


def parse_hey(text: str) -> dict[str, Any]:
    def seconds(label: str) -> float | None:
        found = re.search(rf"{label}% in ([0-9.]+) secs", text)
        return float(found.group(1)) * 1000 if found else None

    rps = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    _, _, errors_section = text.partition("Error distribution:")
    transport = re.findall(r"\[(\d+)\]\s+(.+)", errors_section)
    bad = sum(n for c, n in codes.items() if not 200 <= c < 300)
    detail = ", ".join(f"{c}: {n}" for c, n in sorted(codes.items()))
    if transport:
        detail += "; " + "; ".join(f"{n}x {msg.strip()[:80]}" for n, msg in transport)
    slowest = re.search(r"Slowest:\s+([0-9.]+) secs", text)
    p99 = seconds("99")
    if p99 is None and slowest:  # hey omits the 99th percentile for a few answers: the slowest
        p99 = float(slowest.group(1)) * 1000
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": seconds("50"),
        "p99": p99,
        "responses": sum(codes.values()),
        "errors": bad + sum(int(n) for n, _ in transport),
        "detail": detail,
    }


def batch_counters(url: str) -> tuple[float, float]:
    """(sum, count) of BentoML's adaptive batch size histogram; zeros when not batched."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return 0.0, 0.0
    total = {"sum": 0.0, "count": 0.0}
    for kind in total:
        for value in re.findall(
            rf"^bentoml_service_adaptive_batch_size_{kind}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M
        ):
            total[kind] += float(value)
    return total["sum"], total["count"]


class CpuMeter:
    """CPU time over a load run: the server's own (all its processes), and what the rest of the
    machine used meanwhile (other people's jobs) as a % of all CPUs. The load average cannot
    tell them apart: it mostly shows this benchmark's own load."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._snapshot()

    def _snapshot(self) -> tuple[float, float, float, float]:
        """(machine busy, this process + finished children (hey), server tree, time)."""
        import psutil

        times = psutil.cpu_times()
        busy = sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
        mine = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            mine += usage.ru_utime + usage.ru_stime
        server = 0.0
        root = psutil.Process(self.server.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                cpu = proc.cpu_times()
                server += cpu.user + cpu.system
        return busy, mine, server, time.monotonic()

    def stop(self) -> tuple[float, float]:
        """(server CPU seconds, others' CPU as % of all CPUs) since the start."""
        busy, mine, server, now = (b - a for a, b in zip(self.start, self._snapshot(), strict=True))
        others = busy - mine - server
        return server, max(0.0, 100 * others / (now * (os.cpu_count() or 1)))


def measure(
    family: str,
    server: Server,
    body: Path,
    duration: float,
    clients: Sequence[int] = CLIENTS,
    rows: int = 1,
) -> list[Load]:
    out = []
    for count in clients:
        hey(f"{server.url}/predict", body, count, min(WARMUP_S, duration))  # warm-up
        before = batch_counters(server.url)
        load_avg = os.getloadavg()[0]
        meter = CpuMeter(server)
        result = parse_hey(hey(f"{server.url}/predict", body, count, duration))
        server_cpu, others_cpu = meter.stop()
        after = batch_counters(server.url)
        merged = after[1] - before[1]
        out.append(
            Load(
                family,
                server.name,
                count,
                result["rps"],
                result["p50"],
                result["p99"],
                result["responses"],
                result["errors"],
                result["detail"],
                load_avg,
                others_cpu,
                1000 * server_cpu / max(result["responses"], 1),
                (after[0] - before[0]) / merged if merged else None,
                rows,
            )
        )
        print(
            f"  {family} {server.name} c={count} rows={rows}: {result['rps']:.0f} req/s, "
            f"p50 {fmt(result['p50'])} ms, p99 {fmt(result['p99'])} ms, {result['detail']}, "
            f"server CPU {out[-1].cpu_ms:.2f} ms/request "
            f"(load {load_avg:.2f}, other processes {others_cpu:.0f}% CPU)",
            flush=True,
        )
    return out


# --- the 10 MB body attack ---------------------------------------------------------------------


def send_oversized(port: int, body: bytes, chunked: bool, timeout: float = 30) -> int | None:
    """POST `body` over a raw socket, stop sending as soon as the server answers; the status."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n".encode()
        )
        view, step = memoryview(body), 64 * 1024
        try:
            for start in range(0, len(body), step):
                if select.select([sock], [], [], 0)[0] or time.monotonic() > deadline:
                    break  # the server answered (or gave up): stop sending
                piece = bytes(view[start : start + step])
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        answer = b""
        try:
            while b"\r\n" not in answer and time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    found = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(found.group(1)) if found else None


@dataclass
class Attack:
    """Worker RSS around the attack; with several workers, the one that grew most."""

    idle_mb: float
    peak_mb: float
    after_mb: float
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def delta_mb(self) -> float:
        return self.peak_mb - self.idle_mb

    @property
    def all_413(self) -> bool:
        return self.statuses == {"413": ATTACK_REQUESTS}


class RssWatch:
    """One worker's RSS: idle (median of 0.5 s), peak (10 ms samples and the kernel's VmHWM,
    which catches what sampling misses), after."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.status = Path(f"/proc/{pid}/status")
        try:  # reset VmHWM to the current RSS (Linux: "5" > clear_refs): it spans the attack
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.kernel_peak = True
        except OSError:
            self.kernel_peak = False
        samples = []
        for _ in range(5):
            samples.append(self.rss())
            time.sleep(0.1)
        self.idle = sorted(samples)[2]
        self.peak = self.idle

    def rss(self) -> float:
        return self.process.memory_info().rss / 2**20

    def sample(self) -> None:
        self.peak = max(self.peak, self.rss())

    def finish(self) -> tuple[float, float, float]:
        """(idle, peak, after) in MB."""
        if self.kernel_peak:
            found = re.search(r"^VmHWM:\s+(\d+) kB", self.status.read_text(), re.M)
            if found:
                self.peak = max(self.peak, int(found.group(1)) / 1024)
        return self.idle, self.peak, self.rss()


def body_attack(server: Server) -> Attack:
    watches = [RssWatch(pid) for pid in server.worker_pids()]
    port = int(server.url.rsplit(":", 1)[1])
    row = json.dumps(ROW).encode()
    body = b'{"instances": [' + b",".join([row] * (ATTACK_BODY_BYTES // (len(row) + 1))) + b"]}"
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for watch in watches:
                watch.sample()
            time.sleep(0.01)

    statuses: list[int | None] = []
    lock = threading.Lock()
    jobs = [i % 2 == 1 for i in range(ATTACK_REQUESTS)]  # alternate Content-Length / chunked

    def attacker() -> None:
        while True:
            with lock:
                if not jobs:
                    return
                chunked = jobs.pop()
            status = send_oversized(port, body, chunked)
            with lock:
                statuses.append(status)

    started = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(ATTACK_PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ATTACK_REQUESTS * 35)  # send_oversized gives up after 30 s
    elapsed = time.perf_counter() - started
    time.sleep(1.0)
    stop.set()
    sampler.join(5)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    idle, peak, after = max((w.finish() for w in watches), key=lambda f: f[1] - f[0])
    return Attack(idle, peak, after, counts, elapsed)


# --- one family --------------------------------------------------------------------------------


@dataclass
class FamilyResult:
    family: str
    loads: list[Load] = field(default_factory=list)
    cold_start_s: dict[str, float] = field(default_factory=dict)
    attack: Attack | None = None
    unbatched_via: str = ""


def prepare(family: str, where: Path) -> Path:
    where.mkdir(parents=True)
    repo = copy_project(where, {"train": {"family": family}})
    # What is measured here is serving an accepted model of each family, not a comparison with
    # the committed results of the default family: start without a baseline, as a new project.
    run(["git", "rm", "-q", "-r", "--ignore-unmatch", "metrics"], repo)
    run(["git", "commit", "-q", "--allow-empty", "-m", "no baseline"], repo)
    started = time.perf_counter()
    run(["mlops", "data"], repo)
    run(["dvc", "repro"], repo)
    print(f"{family}: pipeline {time.perf_counter() - started:.0f} s", flush=True)
    return repo


def served_batching(server: Server) -> bool | None:
    """What the service's /metadata says about batching (None for the bare app)."""
    request = urllib.request.Request(
        f"{server.url}/metadata",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(json.loads(response.read())["serving"]["batched"])
    except urllib.error.HTTPError:
        return None


def run_server(
    server: Server,
    result: FamilyResult,
    body: Path,
    duration: float,
    attack: bool = False,
    batched: bool | None = None,
    big_body: Path | None = None,
) -> None:
    try:
        result.cold_start_s[server.name] = server.wait_ready()
        print(
            f"  {result.family} {server.name}: ready after {server.cold_start_s:.1f} s", flush=True
        )
        if served_batching(server) is not batched:
            raise RuntimeError(f"{server.name} should serve with batching={batched}")
        result.loads += measure(result.family, server, body, duration)
        if big_body is not None:
            result.loads += measure(
                result.family, server, big_body, duration, (BIG_CLIENTS,), BIG_ROWS
            )
        if attack:
            result.attack = body_attack(server)
    finally:
        server.stop()


def bench_family(family: str, tmp: Path, duration: float, args: Sequence[str]) -> FamilyResult:
    repo = prepare(family, tmp / family / "project")
    body = tmp / "one-row.json"
    body.write_text(json.dumps({"instances": [ROW]}))
    big = tmp / "big.json"
    big.write_text(json.dumps({"instances": [ROW] * BIG_ROWS}))
    result = FamilyResult(family)
    served = config.ServiceArgs(**dict(a.split("=", 1) for a in args))
    batched = served.batched(contract.get_family(family).batchable)
    run_server(
        bentoml_server("bentoml", repo, args),
        result,
        body,
        duration,
        attack=True,
        batched=batched,
        big_body=big,
    )
    run_server(bare_server(repo), result, body, duration, big_body=big)
    if batched:
        server, result.unbatched_via = unbatched_server(repo, args)
        run_server(server, result, body, duration, batched=False)
    return result


# --- report ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(results: list[FamilyResult], command: str, duration: float, args: Sequence[str]) -> None:
    print()
    print(f"command: `{command}`  ")
    print(
        f"hey, {duration:g} s per row after a {WARMUP_S:g} s warm-up, one-row requests, "
        f"127.0.0.1; bentoml {_version('bentoml')}, {os.cpu_count()} CPUs; "
        "last columns: 1-min load average at the start of the row (this benchmark's own load "
        "included) and the CPU share other processes used during the row  "
    )
    served = config.ServiceArgs(**dict(a.split("=", 1) for a in args))
    print(
        f"service: default template arguments{' + ' + ', '.join(args) if args else ''}; "
        f"batching (families that declare it): max_batch_size {served.batch_size}, "
        f"max_latency_ms {served.batch_latency_ms}; max_concurrency {served.max_concurrency}, "
        f"timeout {served.timeout_s:g} s  "
    )
    print()
    print(
        "| family | server | clients | rows | req/s | p50 ms | p99 ms | errors | vs bare | "
        "batched / unbatched | mean batch | server CPU ms/req | load avg | others' CPU |"
    )
    print(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |"
    )
    for res in results:
        by = {(x.server, x.clients, x.rows): x for x in res.loads}
        for x in res.loads:
            bare = by.get(("bare", x.clients, x.rows))
            ratio = f"{x.rps / bare.rps:.2f}" if bare and x.server != "bare" and bare.rps else ""
            unbatched = by.get(("bentoml-unbatched", x.clients, x.rows))
            gain = ""
            if x.server == "bentoml" and unbatched and unbatched.rps:
                gain = f"{x.rps / unbatched.rps:.2f}"
            print(
                f"| {x.family} | {x.server} | {x.clients} | {x.rows} | {x.rps:.0f} | "
                f"{fmt(x.p50_ms)} | "
                f"{fmt(x.p99_ms)} | {x.errors} | {ratio} | {gain} | "
                f"{fmt(x.batch_size)} | {x.cpu_ms:.2f} | {x.load_avg:.2f} | {x.others_cpu:.0f}% |"
            )
    print()
    print(
        "| family | cold start to /readyz (s) | 10 MB bodies: worker RSS idle / peak / after "
        "(MB) | peak - idle | answers |"
    )
    print("| --- | --- | --- | ---: | --- |")
    for res in results:
        starts = ", ".join(f"{k} {v:.1f}" for k, v in res.cold_start_s.items())
        a = res.attack
        if a is None:
            print(f"| {res.family} | {starts} | n/a | n/a | n/a |")
            continue
        answers = ", ".join(f"{k}: {n}" for k, n in sorted(a.statuses.items()))
        print(
            f"| {res.family} | {starts} | {a.idle_mb:.0f} / {a.peak_mb:.0f} / {a.after_mb:.0f} "
            f"| {a.delta_mb:.0f} MB | {answers} ({a.seconds:.1f} s) |"
        )
    for res in results:
        if res.unbatched_via:
            print(f"\n{res.family} unbatched service: {res.unbatched_via}")
    print()
    print("| target | family | measured | result |")
    print("| --- | --- | --- | --- |")
    for line in verdicts(results):
        print(line)


def verdicts(results: list[FamilyResult]) -> list[str]:
    out = []

    def add(target: str, family: str, measured: str, ok: bool) -> None:
        out.append(f"| {target} | {family} | {measured} | {'PASS' if ok else 'FAIL'} |")

    top = max(CLIENTS)
    for res in results:
        by = {(x.server, x.clients, x.rows): x for x in res.loads}
        svc, bare = by.get(("bentoml", top, 1)), by.get(("bare", top, 1))
        if svc and bare:
            ratio = svc.rps / bare.rps if bare.rps else 0.0
            errors = sum(x.errors for x in res.loads if x.server == "bentoml")
            add(
                f"{top} clients: service >= {TARGET_RATIO_VS_BARE:.0%} of bare, 0 errors",
                res.family,
                f"{svc.rps:.0f} / {bare.rps:.0f} req/s = {ratio:.0%}; "
                f"{errors} errors over all service runs",
                ratio >= TARGET_RATIO_VS_BARE and errors == 0,
            )
        big = by.get(("bentoml", BIG_CLIENTS, BIG_ROWS))
        if big:
            big_bare = by.get(("bare", BIG_CLIENTS, BIG_ROWS))
            versus = f", bare p99 {fmt(big_bare.p99_ms)} ms" if big_bare else ""
            add(
                f"{BIG_CLIENTS} clients, {BIG_ROWS}-row requests: 0 errors",
                res.family,
                f"p99 {fmt(big.p99_ms)} ms{versus}; {big.errors} errors ({big.detail})",
                big.errors == 0 and big.responses > 0,
            )
        unbatched = by.get(("bentoml-unbatched", top, 1))
        if svc and unbatched:
            gain = svc.rps / unbatched.rps if unbatched.rps else 0.0
            add(
                f"{top} clients: batched >= {TARGET_BATCH_GAIN:g}x unbatched",
                res.family,
                f"{svc.rps:.0f} / {unbatched.rps:.0f} req/s = {gain:.2f}x",
                gain >= TARGET_BATCH_GAIN,
            )
        for name, seconds in res.cold_start_s.items():
            if name != "bare":
                add(
                    f"cold start <= {TARGET_COLD_START_S:g} s",
                    f"{res.family} ({name})",
                    f"{seconds:.1f} s",
                    seconds <= TARGET_COLD_START_S,
                )
        if res.attack:
            a = res.attack
            add(
                f"10 MB bodies: worker < {TARGET_MEMORY_MB:g} MB above idle, all 413",
                res.family,
                f"+{a.delta_mb:.0f} MB, {a.statuses}",
                a.delta_mb < TARGET_MEMORY_MB and a.all_413,
            )
    return out


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families", nargs="+", choices=["sklearn", "keras"], default=["sklearn", "keras"]
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument(
        "--service-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template argument for the service under test (e.g. workers=2)",
    )
    parser.add_argument("--bare-model", type=Path, help=argparse.SUPPRESS)  # internal: the
    parser.add_argument("--bare-port", type=int, help=argparse.SUPPRESS)  # ceiling's process
    args = parser.parse_args()
    if args.bare_model:
        serve_bare(args.bare_model, args.bare_port)
        return 0
    if shutil.which("hey") is None:
        print(HEY_INSTALL, file=sys.stderr)
        return 2
    if not 1 <= args.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    for name, value in (
        ("BENTOML_DO_NOT_TRACK", "true"),
        ("DVC_NO_ANALYTICS", "1"),
        ("ITERATIVE_DO_NOT_TRACK", "1"),
        ("TF_CPP_MIN_LOG_LEVEL", "2"),
    ):
        os.environ[name] = value
    os.environ.pop("BENTOML_HOME", None)  # each temp copy uses its own .bentoml store
    command = shlex.join(
        ["uv", "run", "--extra", "keras", "python", "benchmarks/serving.py", *sys.argv[1:]]
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        results = [
            bench_family(f, Path(tmp), args.duration, args.service_arg) for f in args.families
        ]
    report(results, command, args.duration, args.service_arg)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(line.endswith("| PASS |") for line in verdicts(results)) else 1


if __name__ == "__main__":
    sys.exit(main())
