"""The records the stages, CI and the release hand each other as JSON files, typed once.

- `DataSummary`: reports/data.json, written by `mlops validate`;
- `GateVerdict`: reports/gate.json (and the release's dist/gate-verdict.json), `mlops gate`;
- `ReproRecord`: build/ci/repro.json, `mlops ci repro`;
- `Provenance`: provenance.json inside the packaged model, `mlops package`;
- `PredictionRecord`: one line of the service's prediction log (JSON lines), read by
  `mlops monitor`.

Each has one reader (`read` for a file, `parse` for JSON from elsewhere, such as a git
revision) that turns a missing, broken or invalid record into one UserError with its fix, so
no module looks keys up by string in a dict it hopes is complete. Unknown keys are ignored, so a
newer writer's extra fields do not break an older reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from mlops_template.errors import UserError
from mlops_template.files import parse_json, read_json

if TYPE_CHECKING:
    from mlops_template.contract import FeatureSpec

Number = int | float


class Record(BaseModel):
    """A JSON record: `WHAT` names it in errors, `FIX` says how to re-create it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    WHAT: ClassVar[str] = "record"
    FIX: ClassVar[str] = "re-create it"

    @classmethod
    def read(cls, path: Path | str, fix: str | None = None) -> Self:
        """The record in `path`; UserError (with `fix`, else the record's own) otherwise."""
        fix = fix or cls.FIX
        return cls.parse(read_json(path, fix), str(path), fix)

    @classmethod
    def parse_text(cls, text: str, source: str, fix: str | None = None) -> Self:
        fix = fix or cls.FIX
        return cls.parse(parse_json(text, source, fix), source, fix)

    @classmethod
    def parse(cls, data: Any, source: str, fix: str | None = None) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UserError(f"{source} {cls._problem(exc)}", fix or cls.FIX) from None

    @classmethod
    def _problem(cls, exc: ValidationError) -> str:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        if not where:
            return f"holds no {cls.WHAT} (not a JSON object)"
        return f"is not a valid {cls.WHAT}: {where}: {error['msg']}"

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (what `read` parses back)."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- data summary


class DataSummary(Record):
    """What `mlops validate` found in the data; the PR report diffs it against the base."""

    WHAT: ClassVar[str] = "data summary"
    FIX: ClassVar[str] = "re-create it with `dvc repro validate --force`"

    rows: int
    columns: int
    per_class: dict[str, int] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)  # path under data/ -> md5


# --------------------------------------------------------------------------- gate verdict


class CheckRecord(Record):
    """One bound of one rule, checked (see `mlops_template.gate.Check`)."""

    kind: str
    bound: Number | None = None
    actual: Number | None = None  # null in the file when not finite
    passed: bool | None = None  # None: skipped
    reason: str = ""


class RuleRecord(Record):
    metric: str
    direction: str
    value: Number | None = None
    baseline: Number | None = None
    checks: list[CheckRecord] = Field(default_factory=list)
    passed: bool


class BaselineRecord(Record):
    source: str | None = None  # "git:REV", "file:PATH" or None
    available: bool = False
    note: str | None = None  # why a baseline that exists was not used


class GateVerdict(Record):
    """reports/gate.json: the gate's decision, which packaging, CI and the release obey."""

    WHAT: ClassVar[str] = "gate verdict"
    FIX: ClassVar[str] = "run the gate first (again if the file is broken): `dvc repro gate`"

    accepted: StrictBool
    baseline: BaselineRecord = Field(default_factory=BaselineRecord)
    rules: list[RuleRecord] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    summary: str = ""

    @classmethod
    def _problem(cls, exc: ValidationError) -> str:
        if any(error["loc"] in ((), ("accepted",)) for error in exc.errors()):
            return "has no boolean 'accepted' verdict"
        return super()._problem(exc)


# --------------------------------------------------------------------------- reproducibility


STALE_FIX = (
    "Run `make run` (or `dvc repro`) and commit dvc.lock with the metrics, plots and reports "
    "it changes"
)


class MetricMismatch(Record):
    """A committed quality metric that CI computed differently."""

    metric: str
    committed: Any = None
    reproduced: Any = None
    allowed: str = "exact"

    def describe(self) -> str:
        return (
            f"{self.metric}: committed {self.committed}, CI computed {self.reproduced} "
            f"(allowed: {self.allowed})"
        )


class ReproRecord(Record):
    """build/ci/repro.json: what reproducing the pipeline in CI found."""

    WHAT: ClassVar[str] = "reproducibility record"
    FIX: ClassVar[str] = "run the repro action (`mlops ci repro`) before this step"

    data_source: str = "unknown"  # cache, remote, example, present
    lock_up_to_date: StrictBool
    stale: list[str] = Field(default_factory=list)  # why dvc.lock does not match the checkout
    metrics_reproduced: bool | None = None  # None: nothing committed to compare with
    mismatches: list[MetricMismatch] = Field(default_factory=list)
    on_stale: Literal["fail", "warn"] = "fail"
    notes: list[str] = Field(default_factory=list)

    def stale_problems(self) -> list[str]:
        """Why the committed results are not what this commit produces (empty: they are)."""
        problems = [f"dvc.lock out of date: {p}" for p in self.stale]
        if not self.lock_up_to_date and not self.stale:
            problems.append("dvc.lock out of date")
        problems += [m.describe() for m in self.mismatches]
        if self.metrics_reproduced is False and not self.mismatches:
            problems.append("the committed metrics/quality.json was not reproduced")
        return problems


# --------------------------------------------------------------------------- provenance


class ProjectRecord(Record):
    name: str
    description: str


class ModelRecord(Record):
    name: str  # in the BentoML store: <project>-model
    version: str  # a hash of the served files (artifacts/serving)
    family: str
    architecture: str
    classes: list[int | str]
    features: list[str]
    spec: dict[str, Any]  # the FeatureSpec as JSON

    def feature_spec(self) -> FeatureSpec:
        from mlops_template.contract import FeatureSpec

        return FeatureSpec.model_validate(self.spec)


class DataRef(Record):
    dvc_file: str
    md5: str


class Provenance(Record):
    """provenance.json in the packaged model: where it came from, how good it is, who let it."""

    WHAT: ClassVar[str] = "provenance record"
    FIX: ClassVar[str] = "package the model again: `dvc repro package --force`"

    project: ProjectRecord
    model: ModelRecord
    git_commit: str
    # True: the work tree had uncommitted changes to tracked files when the model was packaged,
    # so `git_commit` does not name the code that built it; None: not recorded (no git).
    dirty: bool | None = None
    data: DataRef
    params: dict[str, Any]
    metrics: dict[str, Any]
    gate: GateVerdict

    @property
    def tag(self) -> str:
        return f"{self.model.name}:{self.model.version}"


class PackagedModel(Record):
    """An exported `.bentomodel`: its tag, labels and provenance (read by `store`)."""

    tag: str
    labels: dict[str, str] = Field(default_factory=dict)
    provenance: Provenance


class PredictionRecord(Record):
    """One sampled prediction as the service logs it and the drift monitor reads it.

    `features` maps each input column to the value the client sent (after validation);
    `model` is the served model's tag (`<project>-model:<version>`).
    """

    WHAT: ClassVar[str] = "prediction log line"
    FIX: ClassVar[str] = "delete the corrupt log file; the service writes a new one"

    time: str  # UTC, ISO 8601 with a Z suffix
    model: str
    features: dict[str, Any]
    prediction: int | str
    confidence: float = Field(ge=0.0, le=1.0)


# --------------------------------------------------------------------------- PR report data


Curve = list[tuple[float, float]]  # [(step, value)], NaN/inf allowed (the report flags them)


class ReportData(Record):
    """build/ci/report.json: everything the PR report shows, as data, not markdown.

    The PR job writes it (`mlops report`); the comment job renders it with the default branch's
    renderer (`mlops_template.report.render`), so a PR, from a fork too, controls values only,
    never the markdown around them. `*_diff`: `dvc metrics|params diff --json --all` output,
    {file: {name: {"old": x, "new": y, "diff": d}}}; curves {"train/loss": [(step, v)]};
    f1 {class: f1}; confusion_pr [(actual, predicted)].
    """

    # a NaN or infinite metric stays one in the file (NaN, Infinity), not null: the report flags it
    model_config = ConfigDict(extra="ignore", frozen=True, ser_json_inf_nan="constants")
    WHAT: ClassVar[str] = "PR report data"
    FIX: ClassVar[str] = "write it with `mlops report` (the report action) in the PR workflow"

    metrics_diff: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    params_diff: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    gate: GateVerdict | None = None
    data_base: DataSummary | None = None
    data_pr: DataSummary | None = None
    curves_base: dict[str, Curve] = Field(default_factory=dict)
    curves_pr: dict[str, Curve] = Field(default_factory=dict)
    f1_base: dict[str, float] = Field(default_factory=dict)
    f1_pr: dict[str, float] = Field(default_factory=dict)
    confusion_pr: list[tuple[str, str]] = Field(default_factory=list)
    repro: ReproRecord | None = None
    base_ref: str = ""
    base_sha: str = ""
    head_ref: str = ""
    head_sha: str = ""


class ColumnDrift(Record):
    column: str
    kind: Literal["feature", "prediction"]
    method: str  # Evidently's name of the test, e.g. "K-S p_value"
    statistic: float
    threshold: float
    drifted: bool


class DriftResult(Record):
    """build/monitor/drift.json: what `mlops monitor drift` found (`mlops monitor issue`)."""

    WHAT: ClassVar[str] = "drift result"
    FIX: ClassVar[str] = "run `mlops monitor drift` first"

    drifted: bool
    window_start: str
    window_end: str
    window_records: int
    logged_records: int
    models: list[str] = Field(default_factory=list)
    reference_rows: int
    drift_share: float  # the rule's threshold
    drifted_share: float  # share of feature columns that drifted
    columns: list[ColumnDrift]

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]
