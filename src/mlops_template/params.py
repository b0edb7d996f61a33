"""Load params.yaml once, check every key, and turn mistakes into one readable message.

The blocks under `train` are declared by the model families (`custom/families/<name>.py`, each
validating `train.<name>`); every other section is declared here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_template import contract
from mlops_template.errors import UserError
from mlops_template.gate import parse_rules
from mlops_template.paths import PARAMS_FILE

DTYPES = ("int64", "float64", "str", "bool")
TAG_PART = r"^[a-z0-9]([-._a-z0-9]*[a-z0-9])?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectParams(Strict):
    """Names the model in the BentoML store (`<name>-model`), the bento (`<name>-service`),
    the image and the release tags (`<name>@vX.Y.Z`)."""

    name: str = Field(pattern=TAG_PART, max_length=40)
    description: str = Field(min_length=1, max_length=300)


class DataParams(Strict):
    path: str
    target: str


class ColumnRule(Strict):
    dtype: str
    regex: bool = False
    count: int | None = Field(default=None, ge=1)
    min: float | None = None
    max: float | None = None
    values: list[str] | None = Field(default=None, min_length=1)
    nullable: bool = False

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, dtype: str) -> str:
        if dtype not in DTYPES:
            raise ValueError(
                f"unknown column type {dtype!r}: use int64 or float64 (numbers), "
                "str (categories, with `values`) or bool"
            )
        return dtype

    @model_validator(mode="after")
    def _fits_dtype(self) -> ColumnRule:
        numeric = self.dtype in ("int64", "float64")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply to numeric columns, not {self.dtype}")
        if self.values is not None and self.dtype != "str":
            raise ValueError("`values` applies to str (categorical) columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    @property
    def kind(self) -> Literal["numeric", "categorical", "boolean"]:
        return {"str": "categorical", "bool": "boolean"}.get(self.dtype, "numeric")  # type: ignore[return-value]


class SchemaParams(Strict):
    min_rows: int = Field(ge=1)
    min_rows_per_class: int = Field(ge=1)
    classes: list[int | str] = Field(min_length=2)
    columns: dict[str, ColumnRule]
    shape: list[int] | None = Field(default=None, min_length=1)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, classes: list[int | str]) -> list[int | str]:
        if len({str(c) for c in classes}) != len(classes):
            raise ValueError("classes must be distinct")
        return classes

    def rule_for(self, column: str) -> ColumnRule | None:
        """The rule of a column: its own entry, else the first regex that matches it."""
        if column in self.columns and not self.columns[column].regex:
            return self.columns[column]
        for name, rule in self.columns.items():
            if rule.regex and re.fullmatch(name, column):
                return rule
        return None


class ComputeParams(Strict):
    """Where the train stage fits the model: `local` (this process) or `ray` (the Ray cluster
    at RAY_ADDRESS). `compute: ray` is short for `compute: {backend: ray}`. With `ray`, a family
    with a Ray Train trainer (`ray_trainer`) trains data-parallel on `num_workers` workers of
    `cpus_per_worker` CPUs each; another family's fit runs on one worker."""

    backend: Literal["local", "ray"] = "local"
    num_workers: int = Field(default=1, ge=1)
    cpus_per_worker: float = Field(default=1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"backend": value} if isinstance(value, str) else value


class TrainParams(BaseModel):
    """`family` picks the model family; one block per family holds its hyperparameters
    (validated by the family's own `Params`). `compute` is not a family block: it says where
    the fit runs, and is `local` when absent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    family: str
    seed: int
    compute: ComputeParams = Field(default_factory=ComputeParams)
    _family_params: BaseModel | None = PrivateAttr(default=None)

    @property
    def blocks(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def family_params(self) -> BaseModel:
        assert self._family_params is not None, "validated by parse_params"
        return self._family_params


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


class Tolerance(Strict):
    """How far CI's recomputation of one metric may be from the committed value."""

    abs: float | None = Field(default=None, ge=0)
    rel: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> Tolerance:
        if self.abs is None and self.rel is None:
            raise ValueError("give `abs` or `rel` (or both)")
        return self

    def allows(self, committed: float, reproduced: float) -> bool:
        """Exact decimal arithmetic on the numbers as written, so equality at a bound passes."""
        gap = abs(Decimal(repr(reproduced)) - Decimal(repr(committed)))
        return (self.abs is not None and gap <= Decimal(repr(self.abs))) or (
            self.rel is not None and gap <= Decimal(repr(self.rel)) * abs(Decimal(repr(committed)))
        )

    def describe(self) -> str:
        parts = [f"|Δ| ≤ {self.abs:g}" if self.abs is not None else ""]
        parts.append(f"|Δ| ≤ {self.rel:g} of the committed value" if self.rel is not None else "")
        return " or ".join(p for p in parts if p)


class CiParams(Strict):
    on_stale: Literal["fail", "warn"] = "fail"
    tolerances: dict[str, Tolerance] = Field(default_factory=dict)


class WindowParams(Strict):
    """Which logged predictions `mlops monitor drift` compares with the training split."""

    last: int = Field(default=2000, ge=1)  # at most this many of the newest records
    hours: float | None = Field(default=24.0, gt=0)  # only records this recent (None: any age)
    min_records: int = Field(default=100, ge=1)  # fewer is an error: too few to test


class PersistenceParams(Strict):
    """Retraining is proposed when `k` of the last `n` windows drifted, not on one noisy one."""

    k: int = Field(default=3, ge=1)
    n: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _k_within_n(self) -> PersistenceParams:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n})")
        return self


class AlertParams(Strict):
    """Thresholds of the Prometheus alerts (`mlops monitor rules` writes them as series)."""

    error_ratio: float = Field(default=0.05, gt=0, le=1)  # 5xx share of /predict answers, 5 min
    latency_p99_seconds: float = Field(default=1.0, gt=0)  # p99 of /predict over 5 min
    class_shift: float = Field(default=0.2, gt=0, le=1)  # total variation vs the priors, 1 h
    confidence_drop: float = Field(default=0.1, gt=0, le=1)  # mean 1 h vs the previous 7 days
    min_predictions: int = Field(default=200, ge=1)  # per hour, before mix/confidence alerts


class MonitorParams(Strict):
    """Drift check (`mlops monitor drift`, monitor.yml) and alert thresholds."""

    window: WindowParams = Field(default_factory=WindowParams)
    drift_share: float = Field(default=0.5, gt=0, le=1)  # share of drifted feature columns
    persistence: PersistenceParams = Field(default_factory=PersistenceParams)
    alerts: AlertParams = Field(default_factory=AlertParams)


SWEEP_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")


class SweepParams(Strict):
    """`mlops sweep`: a seeded random search over `space` with Ray Tune, each trial scored on a
    validation part of the train split (never the test split). `space` maps a dotted key of the
    chosen family's block (`train.<family>.<key>`) to the values to try."""

    metric: Literal[SWEEP_METRICS] = "accuracy"  # type: ignore[valid-type]
    mode: Literal["max", "min"] = "max"
    num_samples: int = Field(default=8, ge=1)  # trials
    max_concurrent: int = Field(default=2, ge=1)  # trials running at once on the cluster
    seed: int = 0
    validation_size: float = Field(default=0.2, gt=0, lt=1)
    space: dict[str, list[Any]] = Field(min_length=1)

    @field_validator("space")
    @classmethod
    def _values_to_try(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in space.items():
            if not key.startswith("train.") or key.count(".") < 2:
                raise ValueError(f"{key!r} is not a key of a family block: train.<family>.<key>")
            if not values:
                raise ValueError(f"{key!r} has no values to try")
        return space


class Params(Strict):
    project: ProjectParams
    data: DataParams
    schema_: SchemaParams = Field(alias="schema")
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    gate: GateParams
    ci: CiParams
    monitor: MonitorParams = Field(default_factory=MonitorParams)
    sweep: SweepParams | None = None


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
        params = Params.model_validate(raw)
    except ValidationError as exc:
        _invalid(exc, source)
    _validate_train(params.train, source)
    return params


def _invalid(exc: ValidationError, source: str, prefix: tuple[str, ...] = ()) -> None:
    problems = "; ".join(_describe({**e, "loc": (*prefix, *e["loc"])}) for e in exc.errors()[:8])
    raise UserError(
        f"{source} has invalid parameters: {problems}",
        "fix those keys (the comments in params.yaml list the allowed values)",
    ) from None


def _validate_train(train: TrainParams, source: str) -> None:
    """Every train block belongs to a family and is valid; the chosen family has one."""
    family = contract.get_family(train.family)
    blocks = train.blocks
    known = contract.family_names()
    for name, block in blocks.items():
        if name not in known:
            raise UserError(
                f"{source}: train.{name} names no model family (known: {', '.join(known)})",
                f"remove train.{name}, or add src/mlops_template/custom/families/{name}.py",
            )
        try:
            validated = contract.get_family(name).Params.model_validate(block)
        except ValidationError as exc:
            _invalid(exc, source, ("train", name))
        if name == train.family:
            train._family_params = validated
    if train.family not in blocks:
        fields = ", ".join(family.Params.model_fields)
        raise UserError(
            f"{source}: train.family is {train.family!r} but there is no train.{train.family} "
            "block with its hyperparameters",
            f"add train.{train.family} to params.yaml (keys: {fields})",
        )


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
