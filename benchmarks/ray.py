"""The cost of training through Ray: the train stage `local` vs `ray` with 1 and 2 workers.

Run: `uv run --extra ray --extra keras --extra lightgbm python benchmarks/ray.py
[--family NAME ...] [--repeats N]`

A temp copy of the project per family (the example data and params, `mlops data`, validate,
prepare), one Ray head on 127.0.0.1 with 2 CPUs (tests/helpers_ray.py, stopped by its PID),
then `mlops train` as a fresh process per run, the configurations interleaved so a change in the
machine's load hits them alike. A family with a Ray Train trainer (`ray_trainer`) trains
data-parallel on `num_workers`; another runs its fit on one worker. Prints the medians, their
ratio to `local`, and whether the repeats of each configuration wrote the same model bytes
(data-parallel training is another computation than `local`: its bytes differ from local's,
not between its own repeats). Wall time includes starting the process and, for `ray`,
connecting to the cluster, reading the split with Ray Data and starting the workers.
This script never imports Ray itself (its file name would shadow the package).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers_ray import LOOPBACK_ENV, start_head
from project import copy_project, run, set_params

BASE_PORT = 26800
CONFIGS = {
    "local": {"backend": "local"},
    "ray, 1 worker": {"backend": "ray", "num_workers": 1},
    "ray, 2 workers": {"backend": "ray", "num_workers": 2},
}


def model_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((repo / "artifacts/model").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def bench(family: str, tmp: Path, repeats: int) -> dict[str, object]:
    repo = copy_project(tmp / family, {"train": {"family": family}})
    for cmd in (["mlops", "data"], ["mlops", "validate"], ["mlops", "prepare"]):
        run(cmd, repo)
    seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
    digests: dict[str, set[str]] = {name: set() for name in CONFIGS}
    for _ in range(repeats):
        for name, compute in CONFIGS.items():
            set_params(repo, {"train": {"compute": compute}})
            start = time.perf_counter()
            run(["mlops", "train"], repo)
            seconds[name].append(time.perf_counter() - start)
            digests[name].add(model_digest(repo))
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    repeatable = all(len(d) == 1 for d in digests.values())
    return {"family": family, "medians": medians, "repeatable": repeatable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["lightgbm", "keras"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(LOOPBACK_ENV)
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(
            prefix="rayb",
            dir="/tmp",  # short: Ray's socket paths
        ) as ray_tmp,
    ):
        head = start_head(ray_tmp, BASE_PORT)
        os.environ["RAY_ADDRESS"] = head.address
        try:
            rows = [bench(f, Path(tmp), args.repeats) for f in args.family]
        finally:
            head.stop()
    print(f"command: {shlex.join(['python', 'benchmarks/ray.py', *sys.argv[1:]])}")
    names = list(CONFIGS)
    columns = " | ".join(f"{n} (median s, ratio)" for n in names)
    print(f"| family | {columns} | repeats, same bytes |")
    print("| --- |" + " ---: |" * len(names) + " --- |")
    for r in rows:
        medians = r["medians"]
        assert isinstance(medians, dict)
        cells = [f"{medians[n]:.1f} s ({medians[n] / medians['local']:.2f}x)" for n in names]
        same = "yes" if r["repeatable"] else "no"
        print(f"| {r['family']} | " + " | ".join(cells) + f" | {same} |")


if __name__ == "__main__":
    main()
