"""A real Ray head on 127.0.0.1 for the Ray tests and benchmarks/ray.py.

Loopback only (every listener on 127.0.0.1: `--node-ip-address` and
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, drivers included), its own temp dir and ports, usage stats
off. It is stopped by the PID of the `ray start --block` process we started and its process
group, never with `ray stop` (which stops every Ray process on the machine).

No dashboard: the head runs Ray's minimal dashboard agent (as a `ray` install without the
dashboard's packages would), which serves no port. The raylet waits a fixed 15 s (Ray 2.60) for
the agent to write its port files, and on a loaded machine the agent's imports alone take
longer, so the raylet aborts and the head never starts. The helper writes what the minimal
agent writes there, `-1` ("no port"), as soon as the session exists; the agent later writes
the same. A head that still fails is retried, a few times at most.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
READY = "Ray runtime started"
ATTEMPTS = 3
START_TIMEOUT_S = 180.0
AGENT_PORTS = ("metrics_agent_port", "dashboard_agent_listen_port")
# `ray start` with the dashboard's optional packages hidden: the minimal dashboard agent.
RAY_START = (
    "import sys; sys.modules['ray.dashboard.optional_deps'] = None; sys.argv[0] = 'ray'; "
    "from ray.scripts.scripts import main; main()"
)


@dataclass
class Head:
    process: subprocess.Popen[str]
    address: str  # host:port of the GCS: what RAY_ADDRESS holds
    temp_dir: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM to `ray start --block` (it stops what it started), then SIGKILL to its
        process group (only the processes this head started are in it)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def ports(base: int) -> dict[str, int]:
    return {
        "port": base,
        "ray-client-server-port": base + 1,
        "runtime-env-agent-port": base + 4,
        "metrics-export-port": base + 5,
        "node-manager-port": base + 6,
        "object-manager-port": base + 7,
        "min-worker-port": base + 100,
        "max-worker-port": base + 199,
    }


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(start: int, tries: int = 10) -> int:
    """The first of `start`, `start + 200`, ... whose head, client and worker ports are free (so
    two test runs on one machine do not collide)."""
    for base in range(start, start + 200 * tries, 200):
        wanted = [base, base + 1, *range(base + 4, base + 8), *range(base + 100, base + 200)]
        if all(_free(p) for p in wanted):
            return base
    raise RuntimeError(f"no free Ray ports from {start} on: choose another base port")


def _launch(temp_dir: Path, base: int, num_cpus: int, log: Path) -> subprocess.Popen[str]:
    flags = [f"--{name}={value}" for name, value in ports(base).items()]
    cmd = [
        sys.executable, "-c", RAY_START, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1",
        *flags, f"--num-cpus={num_cpus}", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    return subprocess.Popen(
        cmd,
        env={**os.environ, **LOOPBACK_ENV},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stop() ends exactly this head
    )


def _no_agent_ports(temp_dir: Path) -> None:
    """Write `-1` to the minimal agent's port files of the session, once it exists."""
    for gcs in (temp_dir / "session_latest").glob("gcs_server_port_*"):
        node = gcs.name.removeprefix("gcs_server_port_")
        for name in AGENT_PORTS:
            target = gcs.parent / f"{name}_{node}"
            if not target.exists():
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_text("-1")
                tmp.replace(target)


def start_head(temp_dir: Path | str, base_port: int, num_cpus: int = 2) -> Head:
    """A ready head (or RuntimeError with the end of its log)."""
    temp_dir = Path(temp_dir)  # short: Ray's socket paths must fit in 107 bytes
    temp_dir.mkdir(parents=True, exist_ok=True)
    busy = [p for p in (base_port, base_port + 1, base_port + 100) if not _free(p)]
    if busy:
        raise RuntimeError(f"ports {busy} are in use: choose another base port")
    tail = ""
    for attempt in range(1, ATTEMPTS + 1):
        log = temp_dir / f"start-{attempt}.log"
        head = Head(
            _launch(temp_dir, base_port, num_cpus, log), f"127.0.0.1:{base_port}", temp_dir, log
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and head.process.poll() is None:
            if READY in log.read_text(errors="replace"):
                return head
            _no_agent_ports(temp_dir)
            time.sleep(0.5)
        head.stop()
        tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the Ray head did not start in {ATTEMPTS} attempts:\n{tail}")


def outputs(repo: Path) -> dict[str, bytes]:
    """The train stage's outputs (model and DVCLive files) by path: what must not change."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for root in ("artifacts/model", "dvclive")
        for p in sorted((repo / root).rglob("*"))
        if p.is_file()
    }
