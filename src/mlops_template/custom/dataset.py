"""The example dataset: scikit-learn's bundled handwritten digits, written as a plain CSV.

Replace `write_example_data` (or delete it and configure a DVC remote) for your own data.
It must write exactly the bytes that data.dvc records, so keep it deterministic.
"""

from __future__ import annotations

from pathlib import Path


def write_example_data(path: Path) -> None:
    """64 integer pixel columns (0..16) and a `label` column, one row per 8x8 image."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    lines = [",".join([*names, "label"])]
    for row, label in zip(digits.data.astype(int), digits.target.astype(int), strict=True):
        lines.append(",".join(str(v) for v in row) + f",{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
