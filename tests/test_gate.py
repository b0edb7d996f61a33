"""The acceptance gate's rule engine: every bound, every edge, every sentence a person reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_template.errors import UserError
from mlops_template.gate import (
    Rule,
    Verdict,
    evaluate_gate,
    format_verdict,
    parse_rules,
)

NO_BASELINE = object()  # marks "no baseline at all" in the tables below
SKIPPED = "skipped: no baseline"
ALLOWED_KEYS = "allowed keys: direction, min, max, max_regression, max_relative_regression"


def only_check(metric: str, rule: dict[str, Any], value: Any, baseline: Any = NO_BASELINE):
    """Evaluate one single-bound rule and return its one check (as the verdict JSON has it)."""
    base = None if baseline is NO_BASELINE else {metric: baseline}
    verdict = evaluate_gate({metric: value}, {metric: rule}, base, "test")
    (result,) = verdict.to_dict()["rules"]
    (check,) = result["checks"]
    assert result["passed"] is (check["passed"] is not False)
    assert verdict.accepted is result["passed"]
    return check


# (id, metric, rule, value, baseline, passed, reason)
BOUND_CASES = [
    # value bounds
    (
        "min-equal-passes",
        "accuracy",
        {"direction": "higher", "min": 0.97},
        0.97,
        NO_BASELINE,
        True,
        "accuracy 0.97 is at or above the minimum 0.97",
    ),
    (
        "min-below-fails",
        "accuracy",
        {"direction": "higher", "min": 0.97},
        0.9512,
        NO_BASELINE,
        False,
        "accuracy 0.9512 is below the minimum 0.97",
    ),
    (
        "min-barely-below-shows-enough-digits",
        "accuracy",
        {"direction": "higher", "min": 0.97},
        0.96999,
        NO_BASELINE,
        False,
        "accuracy 0.96999 is below the minimum 0.97",
    ),
    (
        "max-equal-passes",
        "log_loss",
        {"direction": "lower", "max": 0.15},
        0.15,
        NO_BASELINE,
        True,
        "log_loss 0.15 is at or below the maximum 0.15",
    ),
    (
        "max-above-fails",
        "log_loss",
        {"direction": "lower", "max": 0.15},
        0.2,
        NO_BASELINE,
        False,
        "log_loss 0.2 is above the maximum 0.15",
    ),
    (
        "max-int-equal-passes",
        "model_size_bytes",
        {"direction": "lower", "max": 5000000},
        5000000,
        NO_BASELINE,
        True,
        "model_size_bytes 5000000 is at or below the maximum 5000000",
    ),
    (
        "min-on-lower-is-better-fails",
        "latency.single_p95_ms",
        {"direction": "lower", "min": 0.01},
        0.001,
        NO_BASELINE,
        False,
        "latency.single_p95_ms 0.001 is below the minimum 0.01",
    ),
    (
        "max-on-higher-is-better-fails",
        "accuracy",
        {"direction": "higher", "max": 0.999},
        1.0,
        NO_BASELINE,
        False,
        "accuracy 1 is above the maximum 0.999",
    ),
    # absolute change bound
    (
        "max_regression-equal-passes-exactly",  # 0.97 - 0.96 is 0.010000000000000009 in floats
        "accuracy",
        {"direction": "higher", "max_regression": 0.01},
        0.96,
        0.97,
        True,
        "accuracy got worse by 0.01 (1.03%) against the baseline 0.97; allowed 0.01",
    ),
    (
        "max_regression-exceeded-fails",
        "accuracy",
        {"direction": "higher", "max_regression": 0.01},
        0.95,
        0.97,
        False,
        "accuracy got worse by 0.02 (2.06%) against the baseline 0.97; allowed 0.01",
    ),
    (
        "max_regression-lower-is-better-equal-passes",
        "log_loss",
        {"direction": "lower", "max_regression": 0.02},
        0.16,
        0.14,
        True,
        "log_loss got worse by 0.02 (14.3%) against the baseline 0.14; allowed 0.02",
    ),
    (
        "max_regression-lower-is-better-exceeded-fails",
        "log_loss",
        {"direction": "lower", "max_regression": 0.02},
        0.17,
        0.14,
        False,
        "log_loss got worse by 0.03 (21.4%) against the baseline 0.14; allowed 0.02",
    ),
    (
        "max_regression-lower-is-better-improvement-passes",
        "log_loss",
        {"direction": "lower", "max_regression": 0.0},
        0.1,
        0.14,
        True,
        "log_loss improved by 0.04 (28.6%) against the baseline 0.14; no regression allowed",
    ),
    (
        "max_regression-zero-unchanged-passes",
        "accuracy",
        {"direction": "higher", "max_regression": 0},
        0.9,
        0.9,
        True,
        "accuracy did not change from the baseline 0.9; no regression allowed",
    ),
    (
        "max_regression-zero-any-worsening-fails",
        "accuracy",
        {"direction": "higher", "max_regression": 0},
        0.899,
        0.9,
        False,
        "accuracy got worse by 0.001 (0.111%) against the baseline 0.9; no regression allowed",
    ),
    (
        "negative-max_regression-too-small-improvement-fails",
        "accuracy",
        {"direction": "higher", "max_regression": -0.01},
        0.905,
        0.9,
        False,
        "accuracy improved by 0.005 (0.556%) against the baseline 0.9; "
        "must improve by at least 0.01",
    ),
    (
        "negative-max_regression-exact-improvement-passes",
        "accuracy",
        {"direction": "higher", "max_regression": -0.01},
        0.91,
        0.9,
        True,
        "accuracy improved by 0.01 (1.11%) against the baseline 0.9; must improve by at least 0.01",
    ),
    (
        "negative-max_regression-lower-is-better-no-change-fails",
        "log_loss",
        {"direction": "lower", "max_regression": -0.01},
        0.14,
        0.14,
        False,
        "log_loss did not change from the baseline 0.14; must improve by at least 0.01",
    ),
    # relative change bound
    (
        "max_relative_regression-lower-equal-passes-exactly",  # (0.21-0.14)/0.14 > 0.5 in floats
        "log_loss",
        {"direction": "lower", "max_relative_regression": 0.5},
        0.21,
        0.14,
        True,
        "log_loss got worse by 50% (0.07) against the baseline 0.14; allowed 50%",
    ),
    (
        "max_relative_regression-lower-exceeded-fails",
        "log_loss",
        {"direction": "lower", "max_relative_regression": 0.5},
        0.22,
        0.14,
        False,
        "log_loss got worse by 57.1% (0.08) against the baseline 0.14; allowed 50%",
    ),
    (
        "max_relative_regression-higher-equal-passes",
        "accuracy",
        {"direction": "higher", "max_relative_regression": 0.1},
        0.72,
        0.8,
        True,
        "accuracy got worse by 10% (0.08) against the baseline 0.8; allowed 10%",
    ),
    (
        "max_relative_regression-higher-exceeded-fails",
        "accuracy",
        {"direction": "higher", "max_relative_regression": 0.1},
        0.7,
        0.8,
        False,
        "accuracy got worse by 12.5% (0.1) against the baseline 0.8; allowed 10%",
    ),
    (
        "max_relative_regression-negative-baseline-uses-its-magnitude",
        "score",
        {"direction": "higher", "max_relative_regression": 0.5},
        -3,
        -2,
        True,
        "score got worse by 50% (1) against the baseline -2; allowed 50%",
    ),
    (
        # Without the baseline's magnitude the ratio's sign flips: -1 / -2 would read as +50%
        # "improvement" and pass. A worsening against a negative baseline must fail.
        "max_relative_regression-negative-baseline-worsening-fails",
        "score",
        {"direction": "higher", "max_relative_regression": 0.1},
        -3,
        -2,
        False,
        "score got worse by 50% (1) against the baseline -2; allowed 10%",
    ),
    (
        "max_relative_regression-negative-baseline-improvement-passes",
        "score",
        {"direction": "higher", "max_relative_regression": 0},
        -1,
        -2,
        True,
        "score improved by 50% (1) against the baseline -2; no regression allowed",
    ),
    (
        "max_relative_regression-barely-over-shows-enough-digits",
        "log_loss",
        {"direction": "lower", "max_relative_regression": 0.5},
        0.1500001,
        0.1,
        False,
        "log_loss got worse by 50.0001% (0.05) against the baseline 0.1; allowed 50%",
    ),
    # relative change against a baseline of 0
    (
        "baseline-0-unchanged-passes",
        "model_size_bytes",
        {"direction": "lower", "max_relative_regression": 1.0},
        0,
        0,
        True,
        "model_size_bytes did not change from the baseline 0; allowed 100%",
    ),
    (
        "baseline-0-worse-fails",
        "model_size_bytes",
        {"direction": "lower", "max_relative_regression": 1.0},
        120000,
        0,
        False,
        "model_size_bytes got worse by 120000 against the baseline 0 "
        "(an infinite relative regression); allowed 100%",
    ),
    (
        "baseline-0-better-passes",
        "accuracy",
        {"direction": "higher", "max_relative_regression": 0.0},
        0.5,
        0.0,
        True,
        "accuracy improved by 0.5 against the baseline 0; no regression allowed",
    ),
    (
        "baseline-0-absolute-bound-has-no-percent",
        "errors",
        {"direction": "lower", "max_regression": 2},
        3,
        0,
        False,
        "errors got worse by 3 against the baseline 0; allowed 2",
    ),
]


@pytest.mark.parametrize(
    ("metric", "rule", "value", "baseline", "passed", "reason"),
    [case[1:] for case in BOUND_CASES],
    ids=[case[0] for case in BOUND_CASES],
)
def test_each_bound(metric, rule, value, baseline, passed, reason):
    check = only_check(metric, rule, value, baseline)
    assert check["passed"] is passed
    assert check["reason"] == reason


@pytest.mark.parametrize(
    ("rule", "value", "baseline", "actual"),
    [
        ({"direction": "higher", "min": 0.97}, 0.98, NO_BASELINE, 0.98),
        ({"direction": "higher", "max_regression": 0.01}, 0.96, 0.97, 0.01),  # worse: positive
        ({"direction": "lower", "max_regression": 0.01}, 0.1, 0.14, -0.04),  # better: negative
        ({"direction": "lower", "max_relative_regression": 0.5}, 0.21, 0.14, 0.5),
        ({"direction": "lower", "max_relative_regression": 1}, 0, 0, 0),
        ({"direction": "lower", "max_relative_regression": 1}, 5, 0, None),  # +inf: no JSON
        ({"direction": "lower", "max_relative_regression": 1}, -5, 0, None),  # -inf: no JSON
    ],
)
def test_actual_is_the_number_compared_with_the_bound(rule, value, baseline, actual):
    assert only_check("m", rule, value, baseline)["actual"] == actual


# ------------------------------------------------------------------ metric values that fail


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ({}, "accuracy is missing from the metrics"),
        ({"acuracy": 0.99}, "accuracy is missing from the metrics; did you mean 'acuracy'?"),
        ({"accuracy": None}, "accuracy is null, not a number"),
        ({"accuracy": math.nan}, "accuracy is NaN, not a finite number"),
        ({"accuracy": math.inf}, "accuracy is inf, not a finite number"),
        ({"accuracy": -math.inf}, "accuracy is -inf, not a finite number"),
        ({"accuracy": True}, "accuracy is a boolean (true), not a number"),
        ({"accuracy": "0.99"}, "accuracy is not a number: '0.99'"),
        ({"accuracy": [0.99]}, "accuracy is not a number: [0.99]"),
    ],
    ids=["missing", "missing-typo", "null", "nan", "+inf", "-inf", "bool", "string", "list"],
)
@pytest.mark.parametrize("with_baseline", [True, False], ids=["baseline", "no-baseline"])
def test_unusable_metric_fails_every_check_of_its_rule(metrics, reason, with_baseline):
    rules = {"accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01}}
    baseline = {"accuracy": 0.95} if with_baseline else None
    verdict = evaluate_gate(metrics, rules, baseline, "git:HEAD" if with_baseline else None)
    data = verdict.to_dict()
    (rule,) = data["rules"]
    assert not verdict.accepted
    assert rule["passed"] is False
    assert rule["value"] is None
    assert [(c["kind"], c["passed"], c["actual"], c["reason"]) for c in rule["checks"]] == [
        ("min", False, None, reason),
        ("max_regression", False, None, reason),  # failed, not skipped, even with no baseline
    ]
    assert data["reasons"] == [reason]  # said once, not once per check
    json.dumps(data, allow_nan=False)  # strict JSON even for NaN and inf


# ------------------------------------------------------------------ baselines


def test_no_baseline_skips_change_bounds_and_says_so():
    rules = {
        "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01},
        "log_loss": {"direction": "lower", "max_relative_regression": 0.5},
    }
    verdict = evaluate_gate({"accuracy": 0.95, "log_loss": 0.9}, rules, None, None)
    data = verdict.to_dict()
    assert data["accepted"] is True
    assert data["baseline"] == {"source": None, "available": False, "note": None}
    accuracy, log_loss = data["rules"]
    assert accuracy["baseline"] is None
    assert [(c["kind"], c["passed"]) for c in accuracy["checks"]] == [
        ("min", True),
        ("max_regression", None),
    ]
    assert accuracy["checks"][1] == {
        "kind": "max_regression",
        "bound": 0.01,
        "actual": None,
        "passed": None,
        "reason": "skipped: no baseline",
    }
    assert log_loss["passed"] is True  # a rule whose every check was skipped does not fail
    assert log_loss["checks"][0]["reason"] == "skipped: no baseline"
    assert data["reasons"] == []
    assert data["summary"] == "accepted: 2 rules passed (change bounds skipped: no baseline)"


def test_baseline_rev_without_metrics_is_unavailable_but_named():
    rules = {"accuracy": {"direction": "higher", "max_regression": 0.01}}
    verdict = evaluate_gate({"accuracy": 0.5}, rules, None, "git:HEAD")
    assert verdict.to_dict()["baseline"] == {"source": "git:HEAD", "available": False, "note": None}
    assert "(no metrics there)" in format_verdict(verdict)


@pytest.mark.parametrize(
    ("baseline", "reason"),
    [
        ({"f1_macro": 0.9}, f"{SKIPPED} (accuracy is not in the baseline metrics)"),
        ({"accuracy": math.nan}, f"{SKIPPED} (the baseline accuracy is not a finite number)"),
        ({"accuracy": None}, f"{SKIPPED} (the baseline accuracy is not a finite number)"),
    ],
    ids=["metric-missing", "nan", "null"],
)
def test_baseline_without_that_metric_skips_only_its_change_bounds(baseline, reason):
    rules = {
        "accuracy": {"direction": "higher", "min": 0.9, "max_regression": 0.01},
        "f1_macro": {"direction": "higher", "max_regression": 0.01},
    }
    verdict = evaluate_gate({"accuracy": 0.5, "f1_macro": 0.95}, rules, baseline, "git:main")
    data = verdict.to_dict()
    accuracy, f1 = data["rules"]
    assert data["baseline"] == {"source": "git:main", "available": True, "note": None}
    assert accuracy["baseline"] is None
    assert accuracy["checks"][1]["passed"] is None
    assert accuracy["checks"][1]["reason"] == reason
    assert accuracy["checks"][0]["passed"] is False  # value bounds still apply
    if "f1_macro" in baseline:
        assert f1["checks"][0]["passed"] is True
        assert f1["baseline"] == 0.9
    skipped = "accuracy" if "f1_macro" in baseline else "accuracy, f1_macro"
    assert data["summary"] == (
        f"not accepted: 1 of 2 rules failed: accuracy (change bounds skipped for {skipped}: "
        "no baseline value)"
    )


def test_nested_metrics_are_flattened_like_dvc():
    rules = {"latency.single_p95_ms": {"direction": "lower", "max": 100, "max_regression": 5}}
    verdict = evaluate_gate(
        {"latency": {"single_p95_ms": 12.5}}, rules, {"latency": {"single_p95_ms": 10}}, "x"
    )
    (rule,) = verdict.to_dict()["rules"]
    assert (rule["value"], rule["baseline"], rule["passed"]) == (12.5, 10, True)


# ------------------------------------------------------------------ the verdict as a whole


PARAMS_RULES = {
    "accuracy": {"direction": "higher", "min": 0.97, "max_regression": 0.01},
    "f1_macro": {"direction": "higher", "min": 0.97, "max_regression": 0.01},
    "log_loss": {"direction": "lower", "max": 0.15, "max_relative_regression": 0.5},
    "model_size_bytes": {"direction": "lower", "max": 5000000, "max_relative_regression": 1.0},
    "latency.single_p95_ms": {"direction": "lower", "max": 100},
}
BASELINE = {"accuracy": 0.98, "f1_macro": 0.98, "log_loss": 0.1, "model_size_bytes": 100000}


def test_multiple_failures_are_all_reported_in_rule_order():
    metrics = {
        "accuracy": 0.9512,
        "f1_macro": 0.975,
        "log_loss": 0.2,
        "model_size_bytes": 100000,
        "latency": {"single_p95_ms": 250},
    }
    verdict = evaluate_gate(metrics, PARAMS_RULES, BASELINE, "git:main")
    data = verdict.to_dict()
    assert data["accepted"] is False
    assert [r["passed"] for r in data["rules"]] == [False, True, False, True, False]
    assert data["reasons"] == [
        "accuracy 0.9512 is below the minimum 0.97",
        "accuracy got worse by 0.0288 (2.94%) against the baseline 0.98; allowed 0.01",
        "log_loss 0.2 is above the maximum 0.15",
        "log_loss got worse by 100% (0.1) against the baseline 0.1; allowed 50%",
        "latency.single_p95_ms 250 is above the maximum 100",
    ]
    assert data["summary"] == (
        "not accepted: 3 of 5 rules failed: accuracy, log_loss, latency.single_p95_ms"
    )


def test_verdict_json_has_exactly_the_designed_shape():
    metrics = {**BASELINE, "accuracy": 0.985, "latency.single_p95_ms": 3.25}
    verdict = evaluate_gate(metrics, PARAMS_RULES, BASELINE, "git:HEAD")
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert list(data) == ["accepted", "baseline", "rules", "reasons", "summary"]
    assert data["accepted"] is True
    assert data["baseline"] == {"source": "git:HEAD", "available": True, "note": None}
    assert data["reasons"] == []
    assert data["summary"] == "accepted: 5 rules passed"
    assert [r["metric"] for r in data["rules"]] == list(PARAMS_RULES)
    for rule in data["rules"]:
        assert list(rule) == ["metric", "direction", "value", "baseline", "checks", "passed"]
        assert rule["direction"] in ("higher", "lower")
        assert isinstance(rule["passed"], bool)
        for check in rule["checks"]:
            assert list(check) == ["kind", "bound", "actual", "passed", "reason"]
            assert check["kind"] in ("min", "max", "max_regression", "max_relative_regression")
            assert isinstance(check["bound"], int | float)
            assert check["actual"] is None or isinstance(check["actual"], int | float)
            assert check["passed"] in (True, False, None)
            assert isinstance(check["reason"], str) and check["reason"]
    assert data["rules"][0] == {
        "metric": "accuracy",
        "direction": "higher",
        "value": 0.985,
        "baseline": 0.98,
        "checks": [
            {
                "kind": "min",
                "bound": 0.97,
                "actual": 0.985,
                "passed": True,
                "reason": "accuracy 0.985 is at or above the minimum 0.97",
            },
            {
                "kind": "max_regression",
                "bound": 0.01,
                "actual": -0.005,
                "passed": True,
                "reason": "accuracy improved by 0.005 (0.51%) against the baseline 0.98; "
                "allowed 0.01",
            },
        ],
        "passed": True,
    }
    assert data["rules"][4]["baseline"] is None  # latency is not in the baseline: no change bound


def test_one_rule_is_singular():
    verdict = evaluate_gate({"a": 1}, {"a": {"direction": "higher", "min": 0}})
    assert verdict.summary == "accepted: 1 rule passed"
    verdict = evaluate_gate({"a": -1}, {"a": {"direction": "higher", "min": 0}})
    assert verdict.summary == "not accepted: 1 of 1 rule failed: a"


def test_parsed_rules_are_accepted_too():
    rules = parse_rules({"a": {"direction": "lower", "max": 1}})
    assert rules == [Rule(metric="a", direction="lower", max=1)]
    assert evaluate_gate({"a": 1}, rules).accepted


def test_format_verdict_for_people():
    metrics = {**BASELINE, "accuracy": 0.9512, "latency.single_p95_ms": 3.25}
    text = format_verdict(evaluate_gate(metrics, PARAMS_RULES, BASELINE, "git:HEAD"))
    lines = text.splitlines()
    assert lines[0] == "NOT ACCEPTED  (baseline: git:HEAD)"
    rows = {line.split()[1]: line for line in lines if line.startswith(("  PASS", "  FAIL"))}
    assert list(rows) == list(PARAMS_RULES)  # one line per rule
    assert rows["accuracy"].split()[:5] == ["FAIL", "accuracy", "0.9512", "0.98", "higher"]
    assert rows["accuracy"].endswith("min 0.97 (FAIL), max_regression 0.01 (FAIL)")
    assert rows["log_loss"].endswith("max 0.15 (pass), max_relative_regression 50% (pass)")
    latency = rows["latency.single_p95_ms"].split()[:5]
    assert latency == ["PASS", "latency.single_p95_ms", "3.25", "-", "lower"]
    assert "  - accuracy 0.9512 is below the minimum 0.97" in lines
    assert lines[-1] == "not accepted: 1 of 5 rules failed: accuracy"

    text = format_verdict(evaluate_gate({**BASELINE, "latency.single_p95_ms": 1}, PARAMS_RULES))
    assert text.splitlines()[0] == "ACCEPTED  (baseline: none)"
    assert "(skipped)" in text
    assert "why:" not in text


# ------------------------------------------------------------------ rule validation


def user_error(rules: Any) -> UserError:
    with pytest.raises(UserError) as caught:
        parse_rules(rules)
    return caught.value


@pytest.mark.parametrize(
    ("rules", "message", "hint"),
    [
        (
            {"accuracy": {"direction": "higher", "minimum": 0.9}},
            "gate.rules.accuracy has an unknown key 'minimum'",
            f"did you mean 'min'? {ALLOWED_KEYS}",
        ),
        (
            {"accuracy": {"direction": "higher", "threshold": 0.9}},
            "gate.rules.accuracy has an unknown key 'threshold'",
            ALLOWED_KEYS,
        ),
        (
            {"accuracy": {"min": 0.9}},
            "gate.rules.accuracy is missing the key 'direction'",
            "add direction: higher (bigger is better) or direction: lower (smaller is better)",
        ),
        (
            {"accuracy": {"direction": "up", "min": 0.9}},
            "gate.rules.accuracy.direction must be 'higher' or 'lower', not 'up'",
            "use direction: higher (bigger is better) or direction: lower (smaller is better)",
        ),
        (
            {"accuracy": {"direction": "higher", "min": 0.99, "max": 0.9}},
            "gate.rules.accuracy has min 0.99 greater than max 0.9: no value can pass",
            "swap min and max, or remove one of them",
        ),
        (
            {"log_loss": {"direction": "lower"}},
            "gate.rules.log_loss sets no bound, so it checks nothing",
            "add at least one of: min, max, max_regression, max_relative_regression",
        ),
        (
            {},
            "gate.rules is empty: the gate would accept any model",
            "add at least one rule under gate.rules in params.yaml, e.g. "
            "accuracy: {direction: higher, min: 0.9, max_regression: 0.01}",
        ),
        (
            None,
            "gate.rules is empty: the gate would accept any model",
            "add at least one rule under gate.rules in params.yaml, e.g. "
            "accuracy: {direction: higher, min: 0.9, max_regression: 0.01}",
        ),
        (
            ["accuracy"],
            "gate.rules must be a mapping of metric name -> rule, not a list",
            "write one rule per line under gate.rules, e.g. "
            "accuracy: {direction: higher, min: 0.9, max_regression: 0.01}",
        ),
        (
            {"accuracy": "higher"},
            "gate.rules.accuracy must be a mapping of keys to values, not the text 'higher'",
            "write it like accuracy: {direction: higher, min: 0.9, max_regression: 0.01}",
        ),
    ],
    ids=[
        "unknown-key-typo",
        "unknown-key",
        "missing-direction",
        "bad-direction",
        "min-greater-than-max",
        "no-bound",
        "empty",
        "null",
        "not-a-mapping",
        "rule-not-a-mapping",
    ],
)
def test_rule_mistakes_name_the_metric_and_key_and_the_fix(rules, message, hint):
    error = user_error(rules)
    assert (error.message, error.hint) == (message, hint)


@pytest.mark.parametrize(
    ("kind", "bound"),
    [
        ("min", "0.9"),
        ("max", "1e-3"),  # YAML 1.1 reads 1e-3 (no dot) as text
        ("max_regression", True),
        ("max_relative_regression", None),
        ("min", math.nan),
        ("max", math.inf),
        ("max_regression", [0.01]),
    ],
)
def test_non_numeric_bound_is_refused(kind, bound):
    error = user_error({"accuracy": {"direction": "higher", kind: bound}})
    assert error.message == f"gate.rules.accuracy.{kind} must be a finite number, not {bound!r}"
    assert "1.0e-3" in error.hint


def test_empty_rule_list_is_refused_too():
    with pytest.raises(UserError, match=r"gate\.rules is empty"):
        evaluate_gate({"a": 1}, [])


def test_min_equal_to_max_is_allowed_and_ints_and_floats_mix():
    (rule,) = parse_rules({"n": {"direction": "lower", "min": 3, "max": 3.0, "max_regression": -1}})
    assert (rule.min, rule.max, rule.max_regression) == (3, 3.0, -1)
    assert rule.bounds() == [("min", 3), ("max", 3.0), ("max_regression", -1)]


def test_the_shipped_params_rules_are_valid():
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    assert parse_rules(params["gate"]["rules"])


def test_verdict_is_immutable():
    verdict = evaluate_gate({"a": 1}, {"a": {"direction": "higher", "min": 0}})
    assert isinstance(verdict, Verdict)
    with pytest.raises(AttributeError):
        verdict.baseline_source = "x"  # type: ignore[misc]
