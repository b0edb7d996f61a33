"""What /predict accepts and returns; requests are checked with pydantic before the model runs.

An instance is one row of the model's features (64 pixel values here) or, when the feature
count is a square, the same values as a grid (8 rows of 8). Values must be real, finite numbers
inside the bounds that params.yaml's schema declares for those columns (0..16 here): strings,
booleans, NaN and Infinity are refused. A request carries 1..max_rows instances. A bad request
gets pydantic's error list (where and what) as a 400, never a 5xx. The answer is a list with
one Prediction per instance, which is also what lets BentoML split a merged batch back into the
requests it came from (adaptive batching).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class InputSpec:
    """The shape and value range one instance must have."""

    n_features: int
    low: float | None = None
    high: float | None = None
    max_rows: int = 1000

    @property
    def side(self) -> int | None:
        """The grid side when the features form a square image (8 for 64 pixels)."""
        side = math.isqrt(self.n_features)
        return side if side * side == self.n_features and side > 1 else None

    def describe(self) -> str:
        shape = f"{self.n_features} numbers"
        if self.side:
            shape += f" (or {self.side} rows of {self.side})"
        if self.low is not None and self.high is not None:
            shape += f" from {self.low:g} to {self.high:g}"
        return shape

    @classmethod
    def from_provenance(cls, provenance: dict[str, Any], max_rows: int) -> InputSpec:
        features = list(provenance["model"]["features"])
        columns = ((provenance.get("params") or {}).get("schema") or {}).get("columns") or {}
        low, high = feature_bounds(columns, features)
        return cls(len(features), low, high, max_rows)


def feature_bounds(
    columns: dict[str, dict[str, Any]], features: list[str]
) -> tuple[float | None, float | None]:
    """The loosest min/max that params.yaml's schema sets over the feature columns.

    A bound applies only when every feature has one (a column without a rule is unbounded).
    """
    lows: list[float | None] = []
    highs: list[float | None] = []
    for feature in features:
        rule = _rule_for(columns, feature)
        lows.append(None if rule is None else rule.get("min"))
        highs.append(None if rule is None else rule.get("max"))
    low = None if not lows or any(v is None for v in lows) else float(min(lows))  # type: ignore[type-var]
    high = None if not highs or any(v is None for v in highs) else float(max(highs))  # type: ignore[type-var]
    return low, high


def _rule_for(columns: dict[str, dict[str, Any]], feature: str) -> dict[str, Any] | None:
    for name, rule in columns.items():
        rule = rule or {}
        if name == feature or (rule.get("regex") and re.fullmatch(name, feature)):
            return rule
    return None


def instances_type(spec: InputSpec) -> Any:
    """The annotated type of the `instances` field for this spec (bounds are baked in)."""
    number = Annotated[
        float,
        Field(strict=True, allow_inf_nan=False, ge=spec.low, le=spec.high),
    ]

    def flatten_grid(value: Any) -> Any:
        """Accept a side x side grid as the same values row by row; refuse ragged grids."""
        side = spec.side
        if not (isinstance(value, list) and value and all(isinstance(r, list) for r in value)):
            return value
        lengths = [len(r) for r in value]
        if side is None or len(value) != side or any(n != side for n in lengths):
            raise ValueError(f"an instance must be {spec.describe()}; got row lengths {lengths}")
        return [v for row in value for v in row]

    def first_problem_only(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One error per instance (its first problem, and how many more), so 1000 bad rows
        get 1000 short errors back, not 64000."""
        try:
            return handler(value)
        except ValidationError as exc:
            problems = exc.errors()
            first, more = problems[0], len(problems) - 1
            if first["loc"]:
                where = f"value {first['loc'][0]}: "
            else:
                where = f"an instance must be {spec.describe()}: "
            extra = f" (and {more} more problem{'s' * (more > 1)} in this instance)" if more else ""
            message = (where + first["msg"] + extra).replace("{", "(").replace("}", ")")
            raise PydanticCustomError(first["type"], message) from None

    instance = Annotated[
        list[number],  # type: ignore[valid-type]
        Field(min_length=spec.n_features, max_length=spec.n_features),
        BeforeValidator(flatten_grid),
        WrapValidator(first_problem_only),
    ]
    return Annotated[
        list[instance],  # type: ignore[valid-type]
        Field(
            min_length=1,
            max_length=spec.max_rows,
            description=f"1..{spec.max_rows} instances, each {spec.describe()}",
        ),
    ]


def request_model(spec: InputSpec) -> type[BaseModel]:
    """A standalone model of the /predict body (`{"instances": [...]}`), for checks and docs."""
    from pydantic import create_model

    return create_model("PredictRequest", instances=(instances_type(spec), ...))


class Prediction(BaseModel):
    """The answer for one instance (a request gets one per instance, in request order)."""

    model_config = ConfigDict(protected_namespaces=())

    label: int | str = Field(description="the most probable class")
    confidence: float = Field(description="its probability")
    probabilities: dict[str, float] = Field(description="probability of every class")
    model_version: str = Field(description="the exact model tag that answered (NAME:VERSION)")


def to_array(instances: list[list[float]]) -> np.ndarray:
    return np.asarray(instances, dtype=np.float32)


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


def metadata_payload(
    model_tag: str,
    provenance: dict[str, Any],
    spec: InputSpec,
    serving: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What /metadata answers: which model this is, where it came from, what it accepts."""
    model = provenance["model"]
    return {
        "tag": model_tag,
        "name": model["name"],
        "version": model["version"],
        "family": model["family"],
        "architecture": model["architecture"],
        "classes": model["classes"],
        "git_commit": provenance["git_commit"],
        "data_md5": provenance["data"]["md5"],
        "params": provenance["params"],
        "metrics": provenance["metrics"],
        "gate": provenance["gate"],
        "input": {
            "n_features": spec.n_features,
            "image_side": spec.side,
            "min": spec.low,
            "max": spec.high,
            "max_rows": spec.max_rows,
        },
        "serving": serving or {},
    }
