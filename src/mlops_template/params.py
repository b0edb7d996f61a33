"""Load params.yaml once, check every key, and turn mistakes into one readable message.

Sections a forker replaces (`train`) are declared in `custom/models.py`; the sections the template
keeps (data, schema, prepare, evaluate, gate, ci) are declared here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_template.custom.models import TrainParams
from mlops_template.errors import UserError
from mlops_template.gate import parse_rules

PARAMS_FILE = Path("params.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Strict):
    path: str
    target: str


class ColumnRule(Strict):
    dtype: Literal["int64", "float64", "str", "bool"]
    regex: bool = False
    count: int | None = Field(default=None, ge=1)
    min: float | None = None
    max: float | None = None
    nullable: bool = False


class SchemaParams(Strict):
    min_rows: int = Field(ge=1)
    min_rows_per_class: int = Field(ge=1)
    classes: list[int | str] = Field(min_length=2)
    columns: dict[str, ColumnRule]


class PrepareParams(Strict):
    test_size: float = Field(gt=0, lt=1)
    seed: int


class EvaluateParams(Strict):
    latency_repeats: int = Field(ge=10)
    latency_batch_size: int = Field(ge=1)


class GateParams(Strict):
    rules: Any

    @field_validator("rules")
    @classmethod
    def _rules_are_valid(cls, rules: Any) -> Any:
        parse_rules(rules)  # raises UserError naming the metric and the key
        return rules


class CiParams(Strict):
    metrics_tolerance: float = Field(ge=0)


class Params(Strict):
    data: DataParams
    schema_: SchemaParams = Field(alias="schema")
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    gate: GateParams
    ci: CiParams


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-")) or "(top)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: missing"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; every problem is listed by its dotted key."""
    if not isinstance(raw, dict):
        raise UserError(
            f"{source} must be a YAML mapping of sections", "see the README's params table"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()[:8])
        raise UserError(
            f"{source} has invalid parameters: {problems}",
            "fix those keys (the comments in params.yaml list the allowed values)",
        ) from None


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"{path} not found", "run from the repository root, where params.yaml lives"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(
            f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            "fix the YAML syntax (indentation, colons, quotes)",
        ) from None
    return parse_params(raw, str(path))


def load_raw(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The params as plain data, for recording them in model metadata."""
    return load_params(path).model_dump(by_alias=True)
