"""What /predict accepts and returns, built from the model's FeatureSpec (the schema it was
trained with), so the service refuses exactly what the model was never meant to see.

An instance is one row of the model's feature columns, given
- positionally: a list of values in the spec's column order (`[13.2, "north", true, null]`);
- by name: an object naming every column (`{"alcohol": 13.2, "region": "north", ...}`);
  unknown names are refused;
- when the spec has a `shape`: a nested list of that shape, read row by row (an image sent as
  rows of pixels, say).
Each column's own rule applies: a numeric column takes a finite JSON number (not a string, not
a boolean) within its own min/max; an integer column takes a whole number (3 or 3.0, not 3.5);
a categorical column one of its allowed strings; a boolean column true or false; null only
where the column is nullable. A request carries 1..max_rows instances.

A bad request gets a 400 listing one error per bad instance (its index, the first column at
fault by name, what was sent and what the column takes, and how many more problems that
instance has), for at most MAX_REPORTED instances, then a count: never a 5xx and never a
64000-line answer. The answer is a list with one Prediction per instance, which is also what
lets BentoML split a merged batch back into the requests it came from (adaptive batching).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    create_model,
)
from pydantic_core import PydanticCustomError

from mlops_template.contract import Column, FeatureSpec
from mlops_template.records import Provenance

MAX_REPORTED = 20  # bad instances listed in one 400 answer; the rest are counted
LISTED_NAMES = 8  # column names quoted in one message
SHOWN_CHARS = 60  # characters of a bad value quoted in a message


def column_type(column: Column) -> Any:
    """The pydantic type of one column's value (bounds, allowed values, nullability baked in)."""
    base: Any
    if column.kind == "categorical":
        base = (
            Literal[tuple(column.values)] if column.values else Annotated[str, Field(strict=True)]
        )
    elif column.kind == "boolean":
        base = Annotated[bool, Field(strict=True)]
    else:  # strict: JSON numbers only (no "3", no true); ints are numbers too
        base = Annotated[
            float,
            Field(
                strict=True,
                allow_inf_nan=False,
                ge=column.min,
                le=column.max,
                multiple_of=1 if column.integer else None,
            ),
        ]
    return base | None if column.nullable else base


def expected(column: Column) -> str:
    """What a column takes, in words (the second half of every value error)."""
    return column.describe() + (" or null" if column.nullable else "")


def _show(value: Any) -> str:
    """A sent value as JSON text, cut short (a bad value may be a whole nested list)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:LISTED_NAMES])
    return shown + (f" and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


class InvalidInstance(Exception):
    """Why an instance cannot be read as a row (the message of its 400 error)."""


def _flatten(value: Any, shape: tuple[int, ...]) -> list[Any] | None:
    """A nested list of exactly `shape`, row by row; None when the nesting differs."""
    if not isinstance(value, list) or len(value) != shape[0]:
        return None
    if len(shape) == 1:
        return None if any(isinstance(v, list) for v in value) else value
    out: list[Any] = []
    for part in value:
        flat = _flatten(part, shape[1:])
        if flat is None:
            return None
        out.extend(flat)
    return out


def _outline(value: Any) -> str:
    """The shape of a nested list, for an error message ('7x8', or 'ragged')."""
    dims: list[int] = []
    level = [value]
    while level:
        nested = {isinstance(v, list) for v in level}
        if nested == {False}:
            break
        lengths = {len(v) for v in level if isinstance(v, list)}
        if nested == {True, False} or len(lengths) != 1:
            return "a ragged nested list"
        dims.append(lengths.pop())
        level = [item for v in level for item in v]
    return "a nested list of shape " + "x".join(map(str, dims))


class InstanceReader:
    """Reads one instance (positional, named or shaped) into a tuple in column order, with
    every value checked against its own column; a problem raises one error for the instance."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.columns = list(spec.columns)
        self.names = spec.names
        self.known = set(self.names)
        self.shape = tuple(spec.shape) if spec.shape and len(spec.shape) > 1 else None
        self.row = TypeAdapter(tuple[tuple(column_type(c) for c in self.columns)])  # type: ignore[misc]

    def forms(self) -> str:
        text = (
            f"a list of {len(self.names)} values in column order ({_names(self.names)}) "
            "or an object naming each column"
        )
        if self.shape:
            text += f", or a nested list of shape {'x'.join(map(str, self.shape))}"
        return text

    def values(self, instance: Any) -> list[Any]:
        """The instance's values in column order, before they are checked."""
        if isinstance(instance, dict):
            unknown = [str(k) for k in instance if k not in self.known]
            if unknown:
                raise InvalidInstance(
                    f"unknown column{'s' * (len(unknown) > 1)} {_names(unknown)} "
                    f"(the model's columns: {_names(self.names)})"
                )
            missing = [n for n in self.names if n not in instance]
            if missing:
                raise InvalidInstance(
                    f"missing column{'s' * (len(missing) > 1)} {_names(missing)} "
                    "(an object must name every column)"
                )
            return [instance[n] for n in self.names]
        if isinstance(instance, list):
            if self.shape and instance and all(isinstance(v, list) for v in instance):
                flat = _flatten(instance, self.shape)
                if flat is None:
                    raise InvalidInstance(f"got {_outline(instance)}; expected {self.forms()}")
                return flat
            if len(instance) != len(self.names):
                raise InvalidInstance(
                    f"got a list of {_plural(len(instance), 'value')}; expected {self.forms()}"
                )
            return instance
        raise InvalidInstance(f"got {_show(instance)}; an instance is {self.forms()}")

    def __call__(self, instance: Any) -> tuple[Any, ...]:
        try:
            values = self.values(instance)
        except InvalidInstance as exc:
            raise PydanticCustomError("invalid_instance", str(exc)) from None
        try:
            return self.row.validate_python(values)
        except ValidationError as exc:
            problems = exc.errors()
            first = problems[0]
            column = self.columns[int(first["loc"][0])]
            message = (
                f"column {column.name!r}: got {_show(first['input'])}; expected {expected(column)}"
            )
            if len(problems) > 1:
                message += f" (and {_plural(len(problems) - 1, 'more problem')} in this instance)"
            raise PydanticCustomError("invalid_value", message) from None

    def json_schema(self) -> dict[str, Any]:
        """The instance's JSON schema for the OpenAPI docs: the three forms it may take."""
        columns = {}
        for column in self.columns:
            schema = TypeAdapter(column_type(column)).json_schema()
            columns[column.name] = {**schema, "title": column.name, "description": expected(column)}
        forms: list[dict[str, Any]] = [
            {
                "type": "array",
                "description": "values in column order",
                "prefixItems": list(columns.values()),
                "minItems": len(columns),
                "maxItems": len(columns),
            },
            {
                "type": "object",
                "description": "every column by name",
                "properties": columns,
                "required": self.names,
                "additionalProperties": False,
            },
        ]
        if self.shape:
            nested: dict[str, Any] = {}
            for size in reversed(self.shape):
                nested = {"type": "array", "minItems": size, "maxItems": size, "items": nested}
            forms.append({**nested, "description": "a nested list, read row by row"})
        return {"anyOf": forms}


def _with_instance_indices(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Name the instance in every message and keep the answer short: at most MAX_REPORTED bad
    instances are listed, the rest counted."""
    try:
        return handler(value)
    except ValidationError as exc:
        problems = exc.errors()
        line_errors: list[Any] = []
        for problem in problems[:MAX_REPORTED]:
            loc = tuple(problem["loc"])
            message = problem["msg"]
            if loc and isinstance(loc[0], int):
                message = f"instance {loc[0]}: {message}"
            line_errors.append(
                {
                    "type": PydanticCustomError(problem["type"], message),
                    "loc": loc,
                    "input": problem.get("input"),
                }
            )
        if len(problems) > MAX_REPORTED:
            more = len(problems) - MAX_REPORTED
            line_errors.append(
                {
                    "type": PydanticCustomError(
                        "more_invalid_instances",
                        f"and {_plural(more, 'more invalid instance')}",
                    ),
                    "loc": (),
                    "input": None,
                }
            )
        raise ValidationError.from_exception_data(exc.title, line_errors) from None


def instances_type(spec: FeatureSpec, max_rows: int) -> Any:
    """The annotated type of /predict's `instances` for this spec: validated instances are
    tuples in column order (numbers as floats, None for null)."""
    reader = InstanceReader(spec)
    instance = Annotated[Any, PlainValidator(reader), WithJsonSchema(reader.json_schema())]
    return Annotated[
        list[instance],  # type: ignore[valid-type]
        Field(
            min_length=1,
            max_length=max_rows,
            description=f"1..{max_rows} instances, each {reader.forms()}",
        ),
        WrapValidator(_with_instance_indices),
    ]


def request_model(spec: FeatureSpec, max_rows: int) -> type[BaseModel]:
    """A standalone model of the /predict body (`{"instances": [...]}`), for checks and docs."""
    return create_model("PredictRequest", instances=(instances_type(spec, max_rows), ...))


def to_frame(spec: FeatureSpec, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Validated instances as the frame the model takes (`FeatureSpec.frame`): numbers and
    booleans as float64 (booleans 1.0/0.0, null -> NaN), categories as text (null -> "")."""
    names = spec.names
    if all(c.kind == "numeric" for c in spec.columns):  # one array: the common, fast case
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
        return pd.DataFrame(matrix, columns=names)
    data: dict[str, Any] = {}
    for i, column in enumerate(spec.columns):
        values = [row[i] for row in rows]
        if column.kind == "categorical":
            data[column.name] = pd.Series(["" if v is None else v for v in values], dtype=object)
        else:  # validated: numbers, booleans or None (float(None) is not NaN: map it)
            data[column.name] = np.asarray(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
    return pd.DataFrame(data, columns=names)


class Prediction(BaseModel):
    """The answer for one instance (a request gets one per instance, in request order)."""

    model_config = ConfigDict(protected_namespaces=())

    label: int | str = Field(description="the most probable class")
    confidence: float = Field(description="its probability")
    probabilities: dict[str, float] = Field(description="probability of every class")
    model_version: str = Field(description="the exact model tag that answered (NAME:VERSION)")


def predictions(proba: np.ndarray, classes: list[Any], model_tag: str) -> list[Prediction]:
    proba = np.asarray(proba, dtype=np.float64)
    names = [str(c) for c in classes]
    return [
        Prediction(
            label=classes[int(row.argmax())],
            confidence=float(row.max()),
            probabilities=dict(zip(names, row.tolist(), strict=True)),
            model_version=model_tag,
        )
        for row in proba
    ]


def input_description(spec: FeatureSpec, max_rows: int) -> dict[str, Any]:
    """What an instance must be, as /metadata tells clients."""
    return {
        "columns": [c.model_dump(mode="json") for c in spec.columns],
        "shape": list(spec.shape) if spec.shape else None,
        "max_rows": max_rows,
    }


def metadata_payload(
    model_tag: str,
    provenance: Provenance,
    spec: FeatureSpec,
    max_rows: int,
    serving: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What /metadata answers: which model this is, where it came from, what it accepts."""
    model = provenance.model
    return {
        "tag": model_tag,
        "project": provenance.project.to_json(),
        "name": model.name,
        "version": model.version,
        "family": model.family,
        "architecture": model.architecture,
        "classes": model.classes,
        "git_commit": provenance.git_commit,
        "data_md5": provenance.data.md5,
        "params": provenance.params,
        "metrics": provenance.metrics,
        "gate": provenance.gate.to_json(),
        "input": input_description(spec, max_rows),
        "serving": serving or {},
    }
