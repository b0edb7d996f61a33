"""The Ray cluster at RAY_ADDRESS: check that it can be reached, then connect.

The check is a plain TCP connection to the head (no Ray import, a few seconds at most), so
`mlops train --check` can run before DVC deletes the train stage's outputs, and a wrong
address is one message with the fix rather than Ray's retries and traceback.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from mlops_template import determinism
from mlops_template.errors import UserError

ADDRESS_VARIABLE = "RAY_ADDRESS"
CLIENT_SCHEME = "ray://"
CONNECT_TIMEOUT_S = 5.0
# Passed on to every Ray worker: the determinism pins (set in this process by the CLI before
# numpy loads), so a worker computes the same bytes as `local` on the same kind of CPU.
WORKER_VARIABLES = (*determinism.THREADS, *determinism.AVX2_KERNELS, "TF_CPP_MIN_LOG_LEVEL")
FIX = (
    "start the cluster, or point RAY_ADDRESS at its head: host:6379 (the head's GCS port, "
    "e.g. a KubeRay head service) or ray://host:10001 (Ray Client); "
    "or set train.compute: local in params.yaml"
)


def address(environ: Mapping[str, str] = os.environ) -> str:
    value = environ.get(ADDRESS_VARIABLE, "").strip()
    if not value:
        raise UserError(
            "RAY_ADDRESS is not set: `train.compute: ray` and `mlops sweep` run on the Ray "
            "cluster it names",
            "export RAY_ADDRESS=<head host>:6379 (a KubeRay or Anyscale cluster, or "
            "`ray start --head` on this machine); or set train.compute: local in params.yaml",
        )
    return value


def endpoint(value: str) -> tuple[str, int]:
    """(host, port) of a RAY_ADDRESS: `host:port` or `ray://host:port`."""
    rest = value[len(CLIENT_SCHEME) :] if value.startswith(CLIENT_SCHEME) else value
    try:
        parts = urlsplit(f"//{rest}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None or "/" in rest:
        raise UserError(
            f"RAY_ADDRESS={value} is not a Ray head address",
            "use host:port (the head's GCS port, 6379 by default) or ray://host:port "
            "(Ray Client, 10001 by default)",
        )
    return host, port


def check_reachable(environ: Mapping[str, str] = os.environ) -> str:
    """The address, once a TCP connection to it succeeded; UserError naming it otherwise."""
    value = address(environ)
    host, port = endpoint(value)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"the Ray cluster at RAY_ADDRESS={value} cannot be reached ({reason})", FIX
        ) from None
    return value


def import_ray() -> ModuleType:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise UserError(
            "Ray is not installed: `train.compute: ray` and `mlops sweep` need it",
            "install the ray extra: `uv sync --extra ray` (and the extra of your model family)",
        ) from None
    return ray


def worker_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {k: environ[k] for k in WORKER_VARIABLES if k in environ}


@contextmanager
def connected() -> Iterator[ModuleType]:
    """Connected to the cluster for the block; the workers get this package's code (so they
    run the code of this checkout) and the determinism pins. Yields the `ray` module."""
    value = check_reachable()
    ray = import_ray()
    package = Path(__file__).resolve().parents[1]
    runtime_env: dict[str, Any] = {
        "env_vars": worker_environment(),
        "py_modules": [str(package)],
    }
    try:
        ray.init(
            address=value,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise UserError(
            f"could not connect to the Ray cluster at RAY_ADDRESS={value}: {exc}", FIX
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()
