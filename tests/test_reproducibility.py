"""The same commit trains the same model bytes and metrics on any x86-64 CPU with AVX2.

Two machines are emulated on this one: the native CPU with every core (AVX-512 kernels where the
CPU has them, as many threads as cores), and an AVX2-only CPU with one core (numpy's AVX-512
paths disabled, OpenBLAS and oneDNN on their AVX2 kernels, `taskset` to one core). The pins of
`mlops_template.determinism` must make both train byte-identical models and metrics, for every
family. Without the pins the two differ (measured: benchmarks/README.md, "Reproducibility").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fork import fork_params, make_project
from project import set_params

from mlops_template import determinism

pytestmark = pytest.mark.slow

AVX2_MACHINE = {
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL",
    "OPENBLAS_CORETYPE": "Haswell",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
FAMILIES = {
    "sklearn": {},
    "lightgbm": {},
    "keras": {"keras": {"architecture": "mlp", "epochs": 5}},
}


def mlops(project: Path, *args: str, machine: dict[str, str], one_core: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in determinism.pinned_environment(True)}
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    env.update(machine)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["mlops", *args]
    if one_core:
        command = ["taskset", "-c", "0", *command]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def trained(base: Path, where: Path, machine: dict[str, str], one_core: bool) -> dict[str, str]:
    project = shutil.copytree(base, where)
    for stage in ("train", "evaluate"):
        mlops(project, stage, machine=machine, one_core=one_core)
    files = [*sorted((project / "artifacts/model").iterdir()), project / "metrics/quality.json"]
    return {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fork's data validated and split once: no family's params reach either stage."""
    base = make_project(tmp_path_factory.mktemp("reproducibility") / "base", "sklearn")
    for stage in ("validate", "prepare"):
        mlops(base, stage, machine={}, one_core=False)
    return base


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(not determinism.cpu_has_avx2(), reason="the pins apply to AVX2 CPUs")
@pytest.mark.parametrize("family", list(FAMILIES))
def test_two_cpus_train_the_same_bytes(tmp_path: Path, split: Path, family: str) -> None:
    base = shutil.copytree(split, tmp_path / "base")
    set_params(base, fork_params(family, train=FAMILIES[family]))
    native = trained(base, tmp_path / "native", {}, one_core=False)
    avx2 = trained(base, tmp_path / "avx2", AVX2_MACHINE, one_core=True)
    assert native == avx2
    assert "quality.json" in native and len(native) >= 3  # descriptor, model file(s), metrics
