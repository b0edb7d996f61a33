"""The acceptance gate: declared rules decide whether a model may ship, and say why.

Semantics follow TFX's Evaluator. Each rule names a metric and a direction (is higher or lower
better?) and carries up to four bounds:

- value bounds `min` and `max` always apply;
- change bounds `max_regression` (absolute) and `max_relative_regression` (a fraction of
  |baseline|) apply only when the baseline holds a finite value for that metric; otherwise
  they are skipped ("skipped: no baseline"), as on a project's first run.

"Regression" is how much worse the value got in the rule's direction, so a positive number
is always bad: `baseline - value` when higher is better, `value - baseline` when lower is.
A check passes iff its actual number is <= its bound (>= for `min`): equality passes, and a
negative change bound demands an improvement. A missing, null, boolean, non-numeric, NaN or
infinite metric fails its rule.

Numbers are compared exactly as written (in the metrics JSON and in params.yaml): each float
becomes the decimal its shortest repr shows, and arithmetic is done on exact fractions. So
0.97 - 0.96 is exactly 0.01, and a value sitting exactly on a bound passes, with no epsilon.

This module is pure: it takes dicts and returns dataclasses (`Verdict.record()` is the file's
typed form). Reading files and git lives in
`mlops_template.stages.gate`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mlops_template.errors import UserError
from mlops_template.metrics_io import flatten, is_finite_number
from mlops_template.records import BaselineRecord, CheckRecord, GateVerdict, RuleRecord

DIRECTIONS = ("higher", "lower")
VALUE_BOUNDS = ("min", "max")
CHANGE_BOUNDS = ("max_regression", "max_relative_regression")
BOUND_KEYS = VALUE_BOUNDS + CHANGE_BOUNDS
RULE_KEYS = ("direction", *BOUND_KEYS)

Number = int | float | Fraction

_EXAMPLE_RULE = "accuracy: {direction: higher, min: 0.9, max_regression: 0.01}"
NO_BASELINE = "skipped: no baseline"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One metric's acceptance rule, validated (see `parse_rules`)."""

    metric: str
    direction: str  # "higher" | "lower": which way is better
    min: int | float | None = None
    max: int | float | None = None
    max_regression: int | float | None = None
    max_relative_regression: int | float | None = None

    def bounds(self) -> list[tuple[str, int | float]]:
        """The bounds this rule sets, as (kind, bound), in a fixed order."""
        return [
            (kind, getattr(self, kind)) for kind in BOUND_KEYS if getattr(self, kind) is not None
        ]


def parse_rules(rules: Any) -> list[Rule]:
    """Validate the `gate.rules` mapping (metric name -> rule) from params.yaml.

    Mistakes are caught here, before any metric is read, so a typo in a rule can never
    silently pass a model: each error names the metric and the key, and says how to fix it.
    """
    if rules is None or (isinstance(rules, Mapping) and not rules):
        raise UserError(
            "gate.rules is empty: the gate would accept any model",
            f"add at least one rule under gate.rules in params.yaml, e.g. {_EXAMPLE_RULE}",
        )
    if not isinstance(rules, Mapping):
        raise UserError(
            f"gate.rules must be a mapping of metric name -> rule, not {_type_name(rules)}",
            f"write one rule per line under gate.rules, e.g. {_EXAMPLE_RULE}",
        )
    return [_parse_rule(metric, spec) for metric, spec in rules.items()]


def _parse_rule(metric: Any, spec: Any) -> Rule:
    if not isinstance(metric, str) or not metric.strip():
        raise UserError(
            f"gate.rules has a rule whose metric name is {metric!r}",
            "key each rule by a metric name from metrics/*.json, e.g. accuracy or "
            "latency.single_p95_ms",
        )
    where = f"gate.rules.{metric}"
    if not isinstance(spec, Mapping):
        raise UserError(
            f"{where} must be a mapping of keys to values, not {_type_name(spec)}",
            f"write it like {_EXAMPLE_RULE}",
        )
    for key in spec:
        if key not in RULE_KEYS:
            close = difflib.get_close_matches(str(key), RULE_KEYS, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"{where} has an unknown key {key!r}",
                f"{guess}allowed keys: {', '.join(RULE_KEYS)}",
            )
    if "direction" not in spec:
        raise UserError(
            f"{where} is missing the key 'direction'",
            "add direction: higher (bigger is better) or direction: lower (smaller is better)",
        )
    direction = spec["direction"]
    if direction not in DIRECTIONS:
        raise UserError(
            f"{where}.direction must be 'higher' or 'lower', not {direction!r}",
            "use direction: higher (bigger is better) or direction: lower (smaller is better)",
        )
    bounds: dict[str, int | float] = {}
    for kind in BOUND_KEYS:
        if kind in spec:
            bound = spec[kind]
            if not is_finite_number(bound):
                raise UserError(
                    f"{where}.{kind} must be a finite number, not {bound!r}",
                    "write a plain number such as 0.97 or 1.0e-3 "
                    "(YAML reads 1e-3 without a dot as text), or remove the key",
                )
            bounds[kind] = bound
    if not bounds:
        raise UserError(
            f"{where} sets no bound, so it checks nothing",
            f"add at least one of: {', '.join(BOUND_KEYS)}",
        )
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None and low > high:
        raise UserError(
            f"{where} has min {_fmt(low)} greater than max {_fmt(high)}: no value can pass",
            "swap min and max, or remove one of them",
        )
    return Rule(metric=metric, direction=direction, **bounds)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Check:
    """One bound of one rule, checked.

    `actual` is the number compared with `bound`: the metric value for min/max; for change
    bounds the regression (positive = worse; relative: a fraction of |baseline|, and infinite
    when a baseline of 0 got worse). `passed` is None when the check was skipped.
    """

    kind: str
    bound: int | float
    actual: float | None
    passed: bool | None
    reason: str

    def record(self) -> CheckRecord:
        return CheckRecord(
            kind=self.kind,
            bound=self.bound,
            actual=_json_number(self.actual),
            passed=self.passed,
            reason=self.reason,
        )


@dataclass(frozen=True)
class RuleResult:
    """A rule applied to one metric: its value, its baseline and every check made."""

    metric: str
    direction: str
    value: int | float | None  # None when the metric is missing or not a finite number
    baseline: int | float | None  # None when there is no usable baseline value
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """A rule passes when no check failed (skipped checks do not fail it)."""
        return all(check.passed is not False for check in self.checks)

    @property
    def skipped(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.passed is None)

    def record(self) -> RuleRecord:
        return RuleRecord(
            metric=self.metric,
            direction=self.direction,
            value=self.value,
            baseline=self.baseline,
            checks=[check.record() for check in self.checks],
            passed=self.passed,
        )


@dataclass(frozen=True)
class Verdict:
    """The gate's decision, written to reports/gate.json and obeyed by CI and the release."""

    rules: tuple[RuleResult, ...]
    baseline_source: str | None  # "git:HEAD", "file:path" or None
    baseline_available: bool
    baseline_note: str | None = None  # why a baseline that exists was not used

    @property
    def accepted(self) -> bool:
        return all(result.passed for result in self.rules)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.rules if not result.passed)

    @property
    def reasons(self) -> list[str]:
        """Why the model was not accepted: each failed check's sentence, once."""
        reasons: list[str] = []
        for result in self.rules:
            for check in result.checks:
                if check.passed is False and check.reason not in reasons:
                    reasons.append(check.reason)
        return reasons

    @property
    def summary(self) -> str:
        total = len(self.rules)
        if self.accepted:
            text = f"accepted: {_plural(total, 'rule')} passed"
        else:
            names = ", ".join(result.metric for result in self.failed)
            text = f"not accepted: {len(self.failed)} of {_plural(total, 'rule')} failed: {names}"
        note = self._skip_note()
        return f"{text} ({note})" if note else text

    def _skip_note(self) -> str:
        """Say when change bounds were not checked, so a pass is never mistaken for more."""
        skipped = [result.metric for result in self.rules if result.skipped]
        if not skipped:
            return ""
        if not self.baseline_available:
            return f"change bounds skipped: {self.baseline_note or 'no baseline'}"
        return f"change bounds skipped for {', '.join(skipped)}: no baseline value"

    def record(self) -> GateVerdict:
        """The verdict as reports/gate.json holds it (see `mlops_template.records`)."""
        return GateVerdict(
            accepted=self.accepted,
            baseline=BaselineRecord(
                source=self.baseline_source,
                available=self.baseline_available,
                note=self.baseline_note,
            ),
            rules=[result.record() for result in self.rules],
            reasons=self.reasons,
            summary=self.summary,
        )

    def to_dict(self) -> dict[str, Any]:
        """The verdict file's JSON object (strict JSON: no NaN or Infinity anywhere)."""
        return self.record().to_json()


# --------------------------------------------------------------------------- evaluation


def evaluate_gate(
    metrics: Mapping[str, Any],
    rules: Sequence[Rule] | Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    baseline_source: str | None = None,
    baseline_note: str | None = None,
) -> Verdict:
    """Check `metrics` against `rules` (parsed, or the raw gate.rules mapping).

    `metrics` and `baseline` are flat {name: value} mappings as `metrics_io` returns them
    (nested ones are flattened the same way). `baseline=None` means there is no baseline at
    all: every change bound is skipped and the verdict says so (with `baseline_note` as why).
    """
    if isinstance(rules, Mapping):
        parsed = parse_rules(rules)
    elif rules:
        parsed = list(rules)
    else:
        parsed = parse_rules({})  # raises: an empty rule set would accept any model
    current = flatten(metrics)
    previous = flatten(baseline) if baseline is not None else None
    results = tuple(_evaluate_rule(rule, current, previous) for rule in parsed)
    return Verdict(
        rules=results,
        baseline_source=baseline_source,
        baseline_available=previous is not None,
        baseline_note=baseline_note if previous is None else None,
    )


def _evaluate_rule(
    rule: Rule, metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None
) -> RuleResult:
    problem = _value_problem(rule.metric, metrics)
    if problem is not None:
        # Nothing can be checked: every bound fails with the same reason.
        checks = tuple(Check(kind, bound, None, False, problem) for kind, bound in rule.bounds())
        return RuleResult(rule.metric, rule.direction, None, _usable(baseline, rule), checks)

    value = metrics[rule.metric]
    base = _usable(baseline, rule)
    checks = []
    for kind, bound in rule.bounds():
        if kind == "min":
            checks.append(_check_min(rule.metric, value, bound))
        elif kind == "max":
            checks.append(_check_max(rule.metric, value, bound))
        elif base is None:
            checks.append(Check(kind, bound, None, None, _no_baseline_reason(rule, baseline)))
        else:
            checks.append(_check_change(rule, kind, bound, value, base))
    return RuleResult(rule.metric, rule.direction, value, base, tuple(checks))


def _value_problem(metric: str, metrics: Mapping[str, Any]) -> str | None:
    """Why the metric's value cannot be checked, or None when it is a finite number."""
    if metric not in metrics:
        close = difflib.get_close_matches(metric, list(metrics), n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        return f"{metric} is missing from the metrics{guess}"
    value = metrics[metric]
    if is_finite_number(value):
        return None
    if value is None:
        return f"{metric} is null, not a number"
    if isinstance(value, bool):
        return f"{metric} is a boolean ({str(value).lower()}), not a number"
    if isinstance(value, int | float):
        if math.isnan(value):
            return f"{metric} is NaN, not a finite number"
        return f"{metric} is {'-' if value < 0 else ''}inf, not a finite number"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{metric} is not a number: {shown}"


def _usable(baseline: Mapping[str, Any] | None, rule: Rule) -> int | float | None:
    if baseline is None:
        return None
    value = baseline.get(rule.metric)
    return value if is_finite_number(value) else None


def _no_baseline_reason(rule: Rule, baseline: Mapping[str, Any] | None) -> str:
    if baseline is None:
        return NO_BASELINE
    if rule.metric not in baseline:
        return f"{NO_BASELINE} ({rule.metric} is not in the baseline metrics)"
    return f"{NO_BASELINE} (the baseline {rule.metric} is not a finite number)"


def _check_min(metric: str, value: int | float, bound: int | float) -> Check:
    shown_value, shown_bound = _fmt_pair(value, bound)
    if _exact(value) >= _exact(bound):
        reason = f"{metric} {shown_value} is at or above the minimum {shown_bound}"
        return Check("min", bound, value, True, reason)
    reason = f"{metric} {shown_value} is below the minimum {shown_bound}"
    return Check("min", bound, value, False, reason)


def _check_max(metric: str, value: int | float, bound: int | float) -> Check:
    shown_value, shown_bound = _fmt_pair(value, bound)
    if _exact(value) <= _exact(bound):
        reason = f"{metric} {shown_value} is at or below the maximum {shown_bound}"
        return Check("max", bound, value, True, reason)
    reason = f"{metric} {shown_value} is above the maximum {shown_bound}"
    return Check("max", bound, value, False, reason)


def _check_change(
    rule: Rule, kind: str, bound: int | float, value: int | float, base: int | float
) -> Check:
    """A change bound against a finite baseline, in exact arithmetic."""
    value_x, base_x, limit = _exact(value), _exact(base), _exact(bound)
    note = ""
    worse = base_x - value_x if rule.direction == "higher" else value_x - base_x
    if kind == "max_regression":
        passed = worse <= limit
        actual = float(worse)
        amount, allowed = _fmt_pair(abs(worse), abs(limit))
        percent = None if base_x == 0 else _fmt_percent(abs(worse) / abs(base_x))
        by = f"{amount} ({percent})" if percent else amount
    elif base_x == 0:
        # Relative to a baseline of 0: no change is 0, any worsening is +inf (fails any
        # bound) and any improvement is -inf (passes any bound).
        actual = math.inf if worse > 0 else -math.inf if worse < 0 else 0.0
        passed = actual <= limit
        allowed = _fmt_percent(abs(limit))
        by = _fmt(abs(worse))
        note = " (an infinite relative regression)" if worse > 0 else ""
    else:
        ratio = worse / abs(base_x)
        passed = ratio <= limit
        actual = float(ratio)
        percent, allowed = _fmt_pair(abs(ratio) * 100, abs(limit) * 100, digits=3)
        percent, allowed = f"{percent}%", f"{allowed}%"
        by = f"{percent} ({_fmt(abs(worse))})"

    shown_base = _fmt(base)
    if worse == 0:
        change = f"did not change from the baseline {shown_base}"
    else:
        verb = "got worse by" if worse > 0 else "improved by"
        change = f"{verb} {by} against the baseline {shown_base}{note}"
    if limit > 0:
        rule_text = f"allowed {allowed}"
    elif limit == 0:
        rule_text = "no regression allowed"
    else:
        rule_text = f"must improve by at least {allowed}"
    return Check(kind, bound, actual, passed, f"{rule.metric} {change}; {rule_text}")


# --------------------------------------------------------------------------- numbers


def _exact(number: Number) -> Fraction:
    """The number as written: 0.1 is 1/10, not the binary float nearest to it."""
    if isinstance(number, Fraction | int):
        return Fraction(number)
    return Fraction(repr(number))


def _fmt(number: Number, digits: int = 4) -> str:
    """For people: ints as ints, other numbers to `digits` significant digits."""
    if isinstance(number, int):
        return str(number)
    value = float(number)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if abs(value) >= 10**digits:
        return str(round(value))
    return f"{value:.{digits}g}"


def _fmt_pair(a: Number, b: Number, digits: int = 4) -> tuple[str, str]:
    """Format two numbers that are compared, adding digits until unequal ones look unequal.

    Otherwise "accuracy 0.97 is below the minimum 0.97" could happen for 0.96999.
    """
    for more in range(digits, 18):
        shown_a, shown_b = _fmt(a, more), _fmt(b, more)
        if a == b or shown_a != shown_b:
            return shown_a, shown_b
    return repr(a), repr(b)


def _fmt_percent(fraction: Number) -> str:
    return f"{_fmt(float(fraction) * 100, digits=3)}%"


def _fmt_bound(kind: str, bound: int | float) -> str:
    return _fmt_percent(_exact(bound)) if kind == "max_relative_regression" else _fmt(bound)


def _json_number(number: float | None) -> float | None:
    """Strict JSON has no NaN or Infinity: such numbers are written as null."""
    return number if number is not None and math.isfinite(number) else None


# --------------------------------------------------------------------------- terminal


def format_verdict(verdict: Verdict) -> str:
    """The verdict for a terminal or a CI log: the decision, one line per rule, the reasons."""
    if verdict.baseline_source is None:
        source = "none"
    elif verdict.baseline_available:
        source = verdict.baseline_source
    else:
        source = f"{verdict.baseline_source} ({verdict.baseline_note or 'no metrics there'})"
    lines = [f"{'ACCEPTED' if verdict.accepted else 'NOT ACCEPTED'}  (baseline: {source})"]

    rows = []
    for result in verdict.rules:
        value = "-" if result.value is None else _fmt(result.value)
        base = "-" if result.baseline is None else _fmt(result.baseline)
        bounds = ", ".join(
            f"{check.kind} {_fmt_bound(check.kind, check.bound)} {_RESULT_WORDS[check.passed]}"
            for check in result.checks
        )
        rows.append(
            (
                "PASS" if result.passed else "FAIL",
                result.metric,
                value,
                base,
                result.direction,
                bounds,
            )
        )
    headers = ("", "metric", "value", "baseline", "better", "bounds")
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append(("  " + "  ".join(cells) + "  " + row[-1]).rstrip())

    if verdict.reasons:
        lines.append("why:")
        lines.extend(f"  - {reason}" for reason in verdict.reasons)
    lines.append(verdict.summary)
    return "\n".join(lines)


_RESULT_WORDS = {True: "(pass)", False: "(FAIL)", None: "(skipped)"}


# --------------------------------------------------------------------------- helpers


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _type_name(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, bool | int | float):
        return f"the value {value!r}"
    return f"a {type(value).__name__}"
