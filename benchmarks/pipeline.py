"""Pipeline speed and reproducibility, measured on this machine in temp copies of the project.

Run: `uv run --extra keras --extra lightgbm python benchmarks/pipeline.py [--family NAME ...]`

For each family: a full `mlops data` + `dvc repro` from a clean copy, a no-op second repro, a
run-cache restore of `train` (change a param, repro, change it back, repro), and a second clean
run in another copy to compare the metrics. Prints a markdown table for the README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from project import copy_project, run, set_params

TARGETS = {"sklearn": 60.0, "lightgbm": 60.0, "keras": 180.0}
TWEAK = {
    "sklearn": (
        {"train": {"sklearn": {"logreg": {"C": 0.5}}}},
        {"train": {"sklearn": {"logreg": {"C": 1.0}}}},
    ),
    "lightgbm": (
        {"train": {"lightgbm": {"num_leaves": 7}}},
        {"train": {"lightgbm": {"num_leaves": 15}}},
    ),
    "keras": ({"train": {"keras": {"batch_size": 64}}}, {"train": {"keras": {"batch_size": 32}}}),
}


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = run(cmd, cwd)
    return time.perf_counter() - start, done


def clean_run(family: str, where: Path) -> tuple[Path, float]:
    repo = copy_project(where, {"train": {"family": family}})
    data_s, _ = timed(["mlops", "data"], repo)
    repro_s, _ = timed(["dvc", "repro"], repo)
    return repo, data_s + repro_s


def bench(family: str, tmp: Path) -> dict[str, object]:
    repo, full = clean_run(family, tmp / f"{family}-1")
    noop, done = timed(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date." in done.stdout, done.stdout
    changed, back = TWEAK[family]
    set_params(repo, changed)
    run(["dvc", "repro", "train"], repo)
    set_params(repo, back)
    restore, done = timed(["dvc", "repro", "train"], repo)
    assert "Stage 'train' is cached - skipping run" in done.stdout, done.stdout
    second, _ = clean_run(family, tmp / f"{family}-2")
    q1, q2 = (r / "metrics/quality.json" for r in (repo, second))
    same_bytes = (
        hashlib.sha256(q1.read_bytes()).digest() == hashlib.sha256(q2.read_bytes()).digest()
    )
    acc = [json.loads(q.read_text())["accuracy"] for q in (q1, q2)]
    return {
        "family": family,
        "accuracy": acc[0],
        "full_s": full,
        "target_s": TARGETS[family],
        "noop_s": noop,
        "restore_s": restore,
        "identical_metrics": same_bytes,
        "identical_accuracy": acc[0] == acc[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    args = parser.parse_args()
    families = args.family
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(f, Path(tmp)) for f in families]
    print(f"command: {shlex.join(['python', 'benchmarks/pipeline.py', *sys.argv[1:]])}")
    print(
        "| family | test accuracy | full pipeline from clean (target) | no-op repro | "
        "run-cache restore of train | 2 clean runs: metrics bytes / accuracy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['family']} | {r['accuracy']:.4f} | "
            f"{r['full_s']:.1f} s (<= {r['target_s']:.0f} s) | "
            f"{r['noop_s']:.1f} s | {r['restore_s']:.1f} s | "
            f"{'identical' if r['identical_metrics'] else 'differ'} / "
            f"{'identical' if r['identical_accuracy'] else 'differ'} |"
        )


if __name__ == "__main__":
    main()
