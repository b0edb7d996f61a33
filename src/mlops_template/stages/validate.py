"""`mlops validate`: check the data against the schema declared in params.yaml, with pandera.

A violation stops the pipeline before anything trains, with one message naming the rule, the
column and a few offending rows. On success it writes reports/data.json (rows, per-class counts,
file hashes), which the PR report diffs against the base branch.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
import pandas as pd
import pandera.pandas as pa

from mlops_template.errors import UserError
from mlops_template.files import write_json
from mlops_template.params import Params, load_params
from mlops_template.paths import DATA_REPORT as OUT
from mlops_template.records import DataSummary
from mlops_template.table import feature_spec, read_table

SHOW_ROWS = 5


def build_schema(params: Params) -> pa.DataFrameSchema:
    schema = params.schema_
    columns = {}
    for name, rule in schema.columns.items():
        checks = []
        # Named checks, so a failure reads "breaks rule 'max 16'" rather than pandera's internals.
        if rule.min is not None:
            checks.append(pa.Check(lambda s, lo=rule.min: s >= lo, name=f"min {rule.min:g}"))
        if rule.max is not None:
            checks.append(pa.Check(lambda s, hi=rule.max: s <= hi, name=f"max {rule.max:g}"))
        if rule.values is not None:
            values = list(rule.values)
            checks.append(
                pa.Check(lambda s, ok=values: s.isin(ok), name=f"one of {values}", ignore_na=True)
            )
        if name == params.data.target:
            allowed = list(schema.classes)
            checks.append(pa.Check(lambda s, ok=allowed: s.isin(ok), name=f"one of {allowed}"))
        nullable_dtype = {"int64": "Int64", "bool": "boolean"} if rule.nullable else {}
        columns[name] = pa.Column(
            nullable_dtype.get(rule.dtype, rule.dtype),
            checks=checks,
            nullable=rule.nullable,
            regex=rule.regex,
            required=True,
        )
    return pa.DataFrameSchema(columns, strict=True, coerce=False)


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    return "empty" if pd.isna(value) else str(value)


def _offending(df: pd.DataFrame, column: str, mask: pd.Series) -> str:
    rows = df.index[mask][:SHOW_ROWS]
    shown = ", ".join(f"row {i + 2}: {_show(df.at[i, column])}" for i in rows)  # header, 1-based
    more = int(mask.sum()) - len(rows)
    return shown + (f" (and {more} more)" if more > 0 else "")


def _not_of_type(values: pd.Series, expected: str) -> pd.Series:
    """The cells that are present but not of the expected type."""
    present = values.notna()
    if expected.lower() in ("bool", "boolean"):
        return present & ~values.astype(str).isin(["True", "False"])
    numbers = pd.to_numeric(values, errors="coerce")
    bad = present & numbers.isna()
    if expected.lower() == "int64":
        bad = bad | (present & numbers.notna() & (numbers % 1 != 0))
    return bad


def _explain(df: pd.DataFrame, err: pa.errors.SchemaErrors, path: Path) -> str:
    """Turn pandera's failure table into sentences: rule, column, a few rows."""
    lines = []
    cases = err.failure_cases
    wrong_type: set[str] = set()
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        column = None if pd.isna(column) else str(column)
        check = str(check)
        if column is None or column not in df.columns:
            what = ", ".join(str(v) for v in group["failure_case"].astype(str).unique()[:SHOW_ROWS])
            lines.append(f"rule '{check}': {what}")
        elif check.startswith("dtype"):
            wrong_type.add(column)
            expected = re.sub(r"^dtype\(\(?'?|'?\)?\)$", "", check)
            bad = _not_of_type(df[column], expected)
            if not bad.any() and df[column].isna().any():
                continue  # only empty cells made it float: the not_nullable line says so
            lines.append(
                f"column '{column}' must be {expected}, got {_dtype_name(df[column])}: "
                + _offending(df, column, bad if bad.any() else df[column].notna())
            )
        elif column in wrong_type:
            continue  # value rules on a column of the wrong type only repeat the type error
        elif check == "not_nullable":
            lines.append(
                f"column '{column}' has empty cells: " + _offending(df, column, df[column].isna())
            )
        else:
            idx = [int(i) for i in group["index"].dropna().unique()]
            mask = pd.Series(df.index.isin(idx), index=df.index)
            lines.append(
                f"column '{column}' breaks rule '{check}': " + _offending(df, column, mask)
            )
    return f"{path} does not match the schema in params.yaml:\n  " + "\n  ".join(lines[:10])


def _table_checks(df: pd.DataFrame, params: Params, path: Path) -> None:
    schema = params.schema_
    for name, rule in schema.columns.items():
        if rule.regex and rule.count is not None:
            found = int(df.columns.str.fullmatch(name).sum())
            if found != rule.count:
                raise UserError(
                    f"{path}: expected {rule.count} columns matching '{name}', found {found}",
                    f"make the data's columns match the count, or update the count of '{name}' "
                    "in schema.columns in params.yaml",
                )
    if len(df) < schema.min_rows:
        raise UserError(
            f"{path} has {len(df)} rows; the schema requires at least {schema.min_rows}",
            "add data or lower schema.min_rows in params.yaml",
        )
    counts = df[params.data.target].value_counts()
    short = {
        c: int(counts.get(c, 0))
        for c in schema.classes
        if counts.get(c, 0) < schema.min_rows_per_class
    }
    if short:
        listing = ", ".join(f"class {c}: {n}" for c, n in short.items())
        raise UserError(
            f"{path}: too few rows per class (minimum {schema.min_rows_per_class}): {listing}",
            "add examples of those classes or lower schema.min_rows_per_class in params.yaml",
        )


def validate(params: Params) -> DataSummary:
    path = Path(params.data.path)
    df = read_table(path, params)
    if params.data.target not in df.columns:
        raise UserError(
            f"{path} has no target column '{params.data.target}'",
            "fix the CSV header or set data.target in params.yaml",
        )
    try:
        build_schema(params).validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise UserError(
            _explain(df, err, path),
            "fix those rows in the data (then `dvc add data`) or the schema",
        ) from None
    _table_checks(df, params, path)
    feature_spec(params, list(df.columns))  # every feature has a usable rule
    data_dir = Path(path.parts[0])
    files = {
        str(f.relative_to(data_dir)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted(data_dir.rglob("*"))
        if f.is_file()
    }
    counts = df[params.data.target].value_counts()
    return DataSummary(
        rows=len(df),
        columns=len(df.columns),
        per_class={str(c): int(counts.get(c, 0)) for c in params.schema_.classes},
        files=files,
    )


@click.command("validate", help=__doc__)
def validate_command() -> None:
    summary = validate(load_params())
    write_json(OUT, summary.to_json())
    print(f"data valid: {summary.rows} rows, {summary.columns} columns -> {OUT}")


def _dtype_name(series: pd.Series) -> str:
    """The column's type as the schema spells it: text is `str` whichever pandas stores it."""
    is_text = pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)
    return "str" if is_text else str(series.dtype)
