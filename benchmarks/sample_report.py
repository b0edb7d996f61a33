"""Render docs/sample-pr-report.md from a real run: a base commit and a PR that changes a param.

Run: `uv run --extra keras python benchmarks/sample_report.py`

In a temp copy of the project: the pipeline on the defaults is committed as the base; the "PR"
lowers the Keras learning rate and reproduces; then the same commands the PR workflow runs
(`mlops ci repro`, `mlops ci gate`, `mlops report`) write the report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from project import REPO, copy_project, run, set_params

PR_CHANGE = {"train": {"keras": {"learning_rate": 0.001}}}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_project(Path(tmp))
        run(["mlops", "data"], repo)
        run(["dvc", "repro"], repo)
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "base"], cwd=repo, check=True)
        set_params(repo, PR_CHANGE)
        run(["dvc", "repro", "evaluate"], repo)
        subprocess.run(["git", "checkout", "-qb", "lower-learning-rate"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qam", "Lower the learning rate"], cwd=repo, check=True)
        run(["mlops", "ci", "repro", "--target", "evaluate"], repo)
        run(["mlops", "ci", "gate", "--base", "main", "--no-fail"], repo)
        run(["mlops", "report", "--base", "main", "--summary-file", ""], repo)
        shutil.copy(repo / "build/ci/report.md", REPO / "docs/sample-pr-report.md")
    print("wrote docs/sample-pr-report.md")


if __name__ == "__main__":
    main()
