"""Pin what makes numerical results depend on the machine, before numpy or TensorFlow load.

Training and evaluation then give the same bytes on any x86-64 CPU with AVX2 (2013 and later):
- BLAS (OpenBLAS, under numpy and scipy): the kernel family is chosen by the CPU, and the
  AVX-512 kernels round differently from the AVX2 ones; the thread count changes the order of
  sums. Pinned: the Haswell (AVX2) kernels, one thread.
- TensorFlow: oneDNN picks its kernels by CPU too (even with its custom ops off), and thread
  pools change reductions. Pinned: oneDNN capped at AVX2, custom ops off, one thread per pool.
- LightGBM and scikit-learn's own loops: one thread (set by the families themselves).
A variable already set in the environment is left alone (an operator may need another kernel
on a CPU without AVX2, where these pins cannot apply). benchmarks/README.md has the measurements.
"""

from __future__ import annotations

import os
from pathlib import Path

THREADS = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
AVX2_KERNELS = {"OPENBLAS_CORETYPE": "Haswell", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        flags = next(
            (line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), ""
        )
    except OSError:
        return False
    return {"avx2", "fma"} <= set(flags.split())


def pinned_environment(has_avx2: bool) -> dict[str, str]:
    return {**THREADS, **(AVX2_KERNELS if has_avx2 else {})}


def apply(environ: dict[str, str] | None = None) -> None:
    """Set the pins that are not set yet (call before numpy, scipy or TensorFlow is imported)."""
    env = os.environ if environ is None else environ
    for key, value in pinned_environment(cpu_has_avx2()).items():
        env.setdefault(key, value)
