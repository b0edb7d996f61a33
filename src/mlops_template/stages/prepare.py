"""`mlops prepare`: a seeded, stratified train/test split, sizes from params.yaml."""

from __future__ import annotations

from pathlib import Path

import click
from sklearn.model_selection import train_test_split

from mlops_template.files import write_json, write_text_atomic
from mlops_template.params import load_params
from mlops_template.paths import SPLIT_DIR, TASK_FILE
from mlops_template.table import read_table
from mlops_template.task import task_record


@click.command("prepare", help=__doc__)
def prepare() -> None:
    params = load_params()
    df = read_table(Path(params.data.path), params)
    train, test = train_test_split(
        df,
        test_size=params.prepare.test_size,
        random_state=params.prepare.seed,
        stratify=df[params.data.target],
    )
    for name, part in (("train", train), ("test", test)):
        write_text_atomic(SPLIT_DIR / f"{name}.csv", part.to_csv(index=False, lineterminator="\n"))
    write_json(TASK_FILE, task_record(params).model_dump(mode="json"))
    print(f"split: {len(train)} train / {len(test)} test rows -> {SPLIT_DIR}/")
