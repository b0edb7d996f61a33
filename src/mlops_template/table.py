"""Read the data as the schema types it, and derive the model's FeatureSpec from the schema.

Categorical columns are read as strings (so "01" stays "01"), the target as strings when a
class is a string; numbers and booleans as pandas infers them (pandera then checks the type).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops_template.contract import Column, FeatureSpec
from mlops_template.errors import UserError
from mlops_template.params import Params


def read_header(path: Path) -> list[str]:
    return list(_read(path, nrows=0).columns)


def read_table(path: Path, params: Params | None = None) -> pd.DataFrame:
    """Read a data CSV; an absent, empty or unparsable file is a UserError."""
    dtypes: dict[str, type] = {}
    if params is not None:
        schema = params.schema_
        for name in read_header(path):
            rule = schema.rule_for(name)
            if rule is not None and rule.dtype == "str":
                dtypes[name] = str
        if any(isinstance(c, str) for c in schema.classes):
            dtypes[params.data.target] = str
    df = _read(path, dtype=dtypes or None)
    if params is not None:
        _nullable_types(df, params)
    return df


def _nullable_types(df: pd.DataFrame, params: Params) -> None:
    """Give nullable int64/bool columns pandas' nullable dtypes (Int64, boolean): an empty
    cell otherwise turns them into float/str. A column with other values is left as read, so
    validate names the cells of the wrong type."""
    for name in df.columns:
        rule = params.schema_.rule_for(name)
        if rule is None or not rule.nullable:
            continue
        values = df[name].dropna()
        if rule.dtype == "int64" and pd.api.types.is_numeric_dtype(df[name]):
            if (values % 1 == 0).all():
                df[name] = df[name].astype("Int64")
        elif rule.dtype == "bool" and values.astype(str).isin(["True", "False"]).all():
            df[name] = df[name].map({True: True, False: False, "True": True, "False": False})
            df[name] = df[name].astype("boolean")


def _read(path: Path, **options: object) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"{path} not found", "run `mlops data` (or `make run`) to fetch the data")
    try:
        return pd.read_csv(path, **options)  # type: ignore[call-overload]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path} is not a readable CSV: {str(exc).strip()}",
            "restore it with `dvc checkout --force data.dvc`",
        ) from None


def feature_spec(params: Params, header: list[str]) -> FeatureSpec:
    """The model's input, in the data's column order: every column but the target."""
    schema = params.schema_
    columns = []
    for name in header:
        if name == params.data.target:
            continue
        rule = schema.rule_for(name)
        if rule is None:
            raise UserError(
                f"column {name!r} has no rule in schema.columns",
                "add it to schema.columns in params.yaml (or drop it from the data)",
            )
        if rule.kind == "categorical" and not rule.values:
            raise UserError(
                f"categorical column {name!r} (dtype str) lists no allowed values",
                "add `values: [...]` to its rule in schema.columns",
            )
        columns.append(
            Column(
                name=name,
                kind=rule.kind,
                integer=rule.dtype == "int64",
                min=rule.min,
                max=rule.max,
                values=tuple(rule.values) if rule.values else None,
                nullable=rule.nullable,
            )
        )
    spec_shape = tuple(schema.shape) if schema.shape else None
    if spec_shape is not None:
        size = 1
        for n in spec_shape:
            size *= n
        if size != len(columns):
            raise UserError(
                f"schema.shape {list(spec_shape)} holds {size} values, but there are "
                f"{len(columns)} feature columns",
                "fix schema.shape in params.yaml, or remove it",
            )
    return FeatureSpec(
        columns=tuple(columns),
        target=params.data.target,
        classes=tuple(schema.classes),
        shape=spec_shape,
    )
