"""The PR report's markdown: golden files per scenario, plus targeted checks.

Update the golden files after an intended change with
`UPDATE_GOLDEN=1 uv run pytest tests/test_report_render.py`
and review the diff like code.
"""

from __future__ import annotations

import json
import math
import os
import re
from itertools import pairwise
from pathlib import Path

import pytest

from mlops_template.errors import UserError
from mlops_template.records import DataSummary, GateVerdict, ReportData, ReproRecord
from mlops_template.report.render import (
    MAX_POINTS,
    TITLE,
    WATERMARK,
    ReportOrigin,
    align_curves,
    downsample,
    md_escape,
    render_report,
)

GOLDEN = Path(__file__).parent / "golden" / "report"


def replace(inputs: ReportData, **changes: object) -> ReportData:
    """A copy with `changes`, validated like the JSON the comment workflow reads."""
    return ReportData.model_validate({**dict(inputs), **changes})


CLASSES = [str(c) for c in range(10)]


# --------------------------------------------------------------------------- builders


def _curve(start: float, end: float, rate: float, epochs: int) -> list[tuple[float, float]]:
    return [(i, round(end + (start - end) * math.exp(-i / rate), 6)) for i in range(epochs)]


def keras_curves(epochs: int = 40, better: float = 0.0) -> dict[str, list[tuple[float, float]]]:
    return {
        "train/loss": _curve(2.3, 0.02 - better, 6, epochs),
        "eval/loss": _curve(2.2, 0.09 - better, 7, epochs),
        "train/accuracy": _curve(0.1, 0.995 + better / 10, 5, epochs),
        "eval/accuracy": _curve(0.1, 0.975 + better, 6, epochs),
    }


def f1(shift: float = 0.0) -> dict[str, float]:
    return {
        c: min(1.0, round(0.95 + 0.004 * i + (shift if c == "8" else 0.0), 4))
        for i, c in enumerate(CLASSES)
    }


def entry(old, new) -> dict:
    out = {"old": old, "new": new}
    if isinstance(old, int | float) and isinstance(new, int | float):
        out["diff"] = new - old
    return out


def metrics_diff(base: dict | None, pr: dict) -> dict:
    """Build `dvc metrics diff --json --all` from two flat {name: value} maps."""
    base = base or {}
    files: dict[str, dict] = {}
    for name in sorted(set(base) | set(pr)):
        path = "metrics/serving.json" if name.startswith("latency.") else "metrics/quality.json"
        files.setdefault(path, {})[name] = entry(base.get(name), pr.get(name))
    return files


def quality(acc: float, size: int, lat: float, f1s: dict[str, float]) -> dict:
    out = {
        "accuracy": acc,
        "f1_macro": round(acc - 0.001, 4),
        "precision_macro": round(acc + 0.001, 4),
        "recall_macro": round(acc - 0.0005, 4),
        "log_loss": round((1 - acc) * 4, 4),
        "model_size_bytes": size,
        "latency.single_p50_ms": lat,
        "latency.single_p95_ms": round(lat * 1.6, 3),
        "latency.batch_p50_ms_per_row": round(lat / 40, 4),
        "latency.batch_p95_ms_per_row": round(lat / 30, 4),
    }
    out.update({f"f1_per_class.{c}": v for c, v in f1s.items()})
    return out


RULES = {
    "accuracy": {"direction": "higher", "min": 0.97, "max_regression": 0.01},
    "f1_macro": {"direction": "higher", "min": 0.97, "max_regression": 0.01},
    "log_loss": {"direction": "lower", "max": 0.15, "max_relative_regression": 0.5},
    "model_size_bytes": {"direction": "lower", "max": 5000000, "max_relative_regression": 1.0},
    "latency.single_p95_ms": {"direction": "lower", "max": 100},
}


def gate(pr: dict, base: dict | None) -> GateVerdict:
    """A verdict in reports/gate.json's format, computed the simple way for the fixtures."""
    rules, reasons = [], []
    for name, rule in RULES.items():
        value, baseline = pr.get(name), (base or {}).get(name)
        higher = rule["direction"] == "higher"
        checks = []
        for kind in ("min", "max", "max_regression", "max_relative_regression"):
            if kind not in rule:
                continue
            bound = rule[kind]
            ok = value is not None and math.isfinite(value)
            actual = value
            if kind == "min":
                passed, reason = (
                    ok and value >= bound,
                    f"{name} {value} is below the minimum {bound}",
                )
            elif kind == "max":
                passed, reason = (
                    ok and value <= bound,
                    f"{name} {value} is above the maximum {bound}",
                )
            elif baseline is None:
                passed, actual, reason = None, None, "skipped: no baseline"
            else:
                worse = (baseline - value) if higher else (value - baseline)
                if kind == "max_relative_regression":
                    worse = worse / abs(baseline)
                actual = round(worse, 6) if ok else None
                passed = ok and worse <= bound
                reason = f"{name} got worse by {actual} (allowed {bound})"
            checks.append(
                {"kind": kind, "bound": bound, "actual": actual, "passed": passed, "reason": reason}
            )
            if passed is False:
                reasons.append(reason)
        rules.append(
            {
                "metric": name,
                "direction": rule["direction"],
                "value": value,
                "baseline": baseline,
                "checks": checks,
                "passed": all(c["passed"] is not False for c in checks),
            }
        )
    accepted = not reasons
    return verdict_record(
        {
            "accepted": accepted,
            "baseline": {
                "source": "git:origin/main" if base else None,
                "available": base is not None,
            },
            "rules": rules,
            "reasons": reasons,
            "summary": (
                f"accepted: {len(rules)} rules passed"
                if accepted
                else f"not accepted: {len(reasons)} check(s) failed"
            )
            + ("" if base else " (change bounds skipped: no baseline)"),
        }
    )


def verdict_record(data: dict) -> GateVerdict:
    return GateVerdict.model_validate(data)


def data_summary(
    rows: int = 1797, files: dict | None = None, per_class: dict | None = None
) -> DataSummary:
    return DataSummary(
        rows=rows,
        columns=65,
        per_class=per_class or {c: 180 - i for i, c in enumerate(CLASSES)},
        files=files or {"digits.csv": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
    )


def confusion() -> list[tuple[str, str]]:
    pairs = []
    for i, c in enumerate(CLASSES):
        pairs += [(c, c)] * (44 + i % 3)
    pairs += [("3", "8")] * 3 + [("8", "1")] * 2 + [("9", "5")] + [("7", "9")]
    return pairs


REPRO_OK = {
    "data_source": "cache",
    "lock_up_to_date": True,
    "metrics_reproduced": True,
    "notes": [],
}

PARAMS_DIFF = {
    "params.yaml": {
        "train.family": entry("keras", "keras"),
        "train.keras.epochs": entry(40, 40),
        "train.keras.learning_rate": entry(0.002, 0.001),
        "train.keras.cnn.dropout": entry(0.25, 0.3),
        "gate.rules.accuracy.min": entry(0.97, 0.97),
    }
}


def full_inputs() -> ReportData:
    base = quality(0.9733, 412_345, 7.8, f1())
    pr = quality(0.9800, 415_873, 8.1, f1(0.01))
    return ReportData(
        metrics_diff=metrics_diff(base, pr),
        params_diff=PARAMS_DIFF,
        gate=gate(pr, base),
        data_base=data_summary(),
        data_pr=data_summary(),
        curves_base=keras_curves(),
        curves_pr=keras_curves(better=0.005),
        f1_base=f1(),
        f1_pr=f1(0.01),
        confusion_pr=confusion(),
        repro=ReproRecord.model_validate(REPRO_OK),
        base_ref="origin/main",
        base_sha="1a2b3c4",
        head_ref="feature/lower-lr",
        head_sha="5d6e7f8",
    )


def missing_baseline_inputs() -> ReportData:
    pr = quality(0.9800, 415_873, 8.1, f1())
    return replace(
        full_inputs(),
        metrics_diff=metrics_diff(None, pr),
        params_diff={
            "params.yaml": {k: entry(None, v["new"]) for k, v in PARAMS_DIFF["params.yaml"].items()}
        },
        gate=gate(pr, None),
        data_base=None,
        curves_base={},
        f1_base={},
        repro=ReproRecord.model_validate(
            {
                **REPRO_OK,
                "data_source": "bootstrap",
                "metrics_reproduced": None,
                "notes": ["first run: no committed metrics yet"],
            }
        ),
    )


def new_metric_inputs() -> ReportData:
    inputs = full_inputs()
    diff = {k: dict(v) for k, v in inputs.metrics_diff.items()}
    diff["metrics/quality.json"]["balanced_accuracy"] = {"old": None, "new": 0.9791}
    return replace(inputs, metrics_diff=diff)


def removed_metric_inputs() -> ReportData:
    inputs = full_inputs()
    diff = {k: dict(v) for k, v in inputs.metrics_diff.items()}
    diff["metrics/quality.json"]["top2_accuracy"] = {"old": 0.9955, "new": None}
    return replace(inputs, metrics_diff=diff)


def nan_metric_inputs() -> ReportData:
    base = quality(0.9733, 412_345, 7.8, f1())
    pr = quality(0.9800, 415_873, 8.1, f1())
    pr["log_loss"] = math.nan
    pr["f1_per_class.4"] = math.inf
    curves = keras_curves(better=0.005)
    curves["eval/loss"] = [*curves["eval/loss"][:30], (30, math.nan), (31, math.inf)]
    return replace(
        full_inputs(),
        metrics_diff=metrics_diff(base, pr),
        gate=gate(pr, base),
        curves_pr=curves,
        f1_pr={**f1(), "4": math.nan},
    )


def failing_gate_inputs() -> ReportData:
    base = quality(0.9833, 412_345, 7.8, f1())
    pr = quality(0.9644, 2_915_873, 8.1, f1(-0.08))
    return replace(
        full_inputs(),
        metrics_diff=metrics_diff(base, pr),
        gate=gate(pr, base),
        curves_pr=keras_curves(epochs=25, better=-0.02),
        f1_pr=f1(-0.08),
        repro=ReproRecord.model_validate(
            {
                **REPRO_OK,
                "lock_up_to_date": False,
                "stale": ["train: params changed (train in params.yaml)"],
                "metrics_reproduced": False,
                "mismatches": [
                    {"metric": "accuracy", "committed": 0.9911, "reproduced": 0.9788},
                    {
                        "metric": "log_loss",
                        "committed": 0.05,
                        "reproduced": 0.0623,
                        "allowed": "|Δ| ≤ 0.001",
                    },
                ],
            }
        ),
    )


def sklearn_inputs() -> ReportData:
    base = quality(0.9911, 1_204_551, 0.9, f1(0.02))
    pr = quality(0.9889, 1_198_003, 0.95, f1(0.01))
    params = {
        "params.yaml": {
            "train.family": entry("sklearn", "sklearn"),
            "train.sklearn.svc.C": entry(10.0, 5.0),
            "train.sklearn.svc.gamma": entry(0.001, 0.001),
        }
    }
    return replace(
        full_inputs(),
        metrics_diff=metrics_diff(base, pr),
        params_diff=params,
        gate=gate(pr, base),
        curves_base={},
        curves_pr={},
        f1_base=f1(0.02),
        f1_pr=f1(0.01),
    )


def data_changed_inputs() -> ReportData:
    per_class = {c: 180 - i for i, c in enumerate(CLASSES)}
    pr_per_class = {**per_class, "3": per_class["3"] + 40, "8": per_class["8"] + 13}
    return replace(
        full_inputs(),
        data_pr=data_summary(
            rows=1850,
            files={
                "digits.csv": "ffeeddccbbaa99887766554433221100",
                "extra|<b>fives</b>.csv": "0123456789abcdef0123456789abcdef",
            },
            per_class=pr_per_class,
        ),
        data_base=data_summary(
            files={"digits.csv": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "old.csv": "00"},
        ),
    )


CASES = {
    "full": full_inputs,
    "missing_baseline": missing_baseline_inputs,
    "new_metric": new_metric_inputs,
    "removed_metric": removed_metric_inputs,
    "nan_metric": nan_metric_inputs,
    "failing_gate": failing_gate_inputs,
    "sklearn": sklearn_inputs,
    "data_changed": data_changed_inputs,
}


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    text = render_report(CASES[case]())
    path = GOLDEN / f"{case}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{case} differs from {path}"


# --------------------------------------------------------------------------- targeted checks

_NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
_QUOTED = r'"[^"\n]*"'


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", text, flags=re.S)


def check_xychart(block: str) -> list[int]:
    """Check a block against Mermaid's xychart grammar (old and new); return series lengths."""
    lines = block.splitlines()
    assert lines[0].startswith("%%{init: ") and lines[0].endswith("}%%")
    json.loads(lines[0][len("%%{init: ") : -len("}%%")])
    assert lines[1] == "xychart-beta"
    assert re.fullmatch(rf"    title {_QUOTED}", lines[2]), lines[2]
    band = re.fullmatch(rf"    x-axis {_QUOTED} \[((?:{_QUOTED}, )*{_QUOTED})\]", lines[3])
    linear = re.fullmatch(rf"    x-axis {_QUOTED} {_NUMBER} --> {_NUMBER}", lines[3])
    assert band or linear, lines[3]
    assert re.fullmatch(rf"    y-axis {_QUOTED}(?: {_NUMBER} --> {_NUMBER})?", lines[4]), lines[4]
    lengths = []
    for line in lines[5:]:
        series = re.fullmatch(rf"    (?:line|bar) {_QUOTED} \[((?:{_NUMBER}, )*{_NUMBER})\]", line)
        assert series, line
        lengths.append(len(series.group(1).split(", ")))
    assert lengths and len(set(lengths)) == 1, lengths
    if band:
        assert lengths[0] == len(re.findall(_QUOTED, band.group(1)))
    assert lengths[0] <= MAX_POINTS
    return lengths


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_chart_is_valid_xychart(case: str) -> None:
    text = render_report(CASES[case]())
    for block in mermaid_blocks(text):
        check_xychart(block)
    assert text.splitlines()[0] == WATERMARK
    assert text.count("<details>") == text.count("</details>")


def test_full_report_has_sections_in_order_and_two_series_charts() -> None:
    text = render_report(full_inputs())
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "## 🔬 Model report",
        "### Metrics",
        "### Serving cost",
        "### Params changed",
        "### Data",
        "### Plots",
        "#### Training curves",
        "#### Per-class F1",
        "### Reproducibility",
    ]
    blocks = mermaid_blocks(text)
    assert len(blocks) == 3  # loss, accuracy, per-class F1
    assert all(check_xychart(b) == check_xychart(b)[:1] * 2 for b in blocks)
    assert "✅ **Accepted**" in text
    assert "origin/main @ 1a2b3c4" in text and "5d6e7f8" in text


def test_sklearn_has_no_curve_charts() -> None:
    text = render_report(sklearn_inputs())
    assert "No training curves" in text
    assert len(mermaid_blocks(text)) == 1  # per-class F1 only


def test_pipe_in_param_name_is_escaped() -> None:
    inputs = replace(
        full_inputs(),
        params_diff={"params.yaml": {"a|b": entry(1, 2), "x": entry("<img src=x>", "`rm -rf`")}},
    )
    text = render_report(inputs)
    assert "| a\\|b | 1 | 2 |" in text
    assert "<img" not in text and "&lt;img src=x&gt;" in text
    assert "`rm -rf`" not in text and "&#96;rm -rf&#96;" in text


def test_hostile_names_cannot_break_tables_html_or_charts() -> None:
    name = "acc|<script>`x`</script>@team"
    inputs = replace(
        full_inputs(),
        metrics_diff={"metrics/quality.json": {name: entry(0.5, 0.6)}},
        curves_pr={'eval/lo"ss```': [(0, 1.0), (1, 0.5)]},
        f1_pr={'c"]```\n': 0.9},
        confusion_pr=[("<b>", "<b>")],
    )
    text = render_report(inputs)
    assert "<script>" not in text and "<b>" not in text
    assert "@team" not in text  # no mention: a zero-width space follows the @
    assert text.count("```") % 2 == 0
    for block in mermaid_blocks(text):
        check_xychart(block)
    for line in text.splitlines():
        if line.startswith("| acc"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6  # 5 columns, escaped pipe inside


def test_md_escape() -> None:
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<x>&") == "&lt;x&gt;&amp;"
    assert md_escape("`code`") == "&#96;code&#96;"
    assert md_escape("two\nlines") == "two lines"
    assert md_escape("x" * 200).endswith("…")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("@org/team", "@&#8203;org/team"),
        ("a@b.example", "a@&#8203;b.example"),
        ("#12 and owner/repo#3", "#&#8203;12 and owner/repo#&#8203;3"),
        ("GH-12", "GH&#8203;-12"),
        ("https://evil.example/x", "https:/&#8203;/evil.example/x"),
        ("WWW.evil.example", "WWW&#8203;.evil.example"),
        ("[a](javascript:alert(1))", "\\[a\\](javascript:alert(1))"),
        ("~~gone~~", "\\~\\~gone\\~\\~"),
        ("_em_ log_loss", "\\_em\\_ log_loss"),
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("1. item", "1\\. item"),
        ("12) item", "12\\) item"),
        ("---", "\\---"),
        ("===", "\\==="),
        ("-0.5", "-0.5"),
        ("0.97", "0.97"),
        ("a-b", "a-b"),
        ("", ""),
    ],
)
def test_md_escape_neutralises_what_github_would_act_on(raw: str, escaped: str) -> None:
    assert md_escape(raw) == escaped


def _forged_gate() -> GateVerdict:
    return verdict_record({"accepted": True, "summary": "accepted", "reasons": []})


def test_an_accepted_artifact_from_a_failed_run_is_shown_failed() -> None:
    inputs = replace(full_inputs(), gate=_forged_gate())
    text = render_report(inputs, origin=ReportOrigin(conclusion="failure", fork=False))
    assert "**Accepted**" not in text
    assert "❌ **PR check failed**: the PR workflow run ended in `failure`" in text


@pytest.mark.parametrize("conclusion", ["failure", "cancelled", "timed_out"])
def test_a_failed_run_without_a_verdict_is_shown_failed(conclusion: str) -> None:
    inputs = replace(full_inputs(), gate=None)
    text = render_report(inputs, origin=ReportOrigin(conclusion=conclusion, fork=False))
    assert f"ended in `{md_escape(conclusion)}`" in text and "No gate verdict" in text


def test_a_rejection_stays_a_rejection_even_from_a_successful_run() -> None:
    inputs = replace(full_inputs(), gate=verdict_record({"accepted": False, "summary": "no"}))
    text = render_report(inputs, origin=ReportOrigin(conclusion="success", fork=False))
    assert "❌ **Not accepted**" in text and "**Accepted**" not in text


def test_a_successful_run_shows_the_verdict_and_no_fork_note() -> None:
    text = render_report(full_inputs(), origin=ReportOrigin(conclusion="success", fork=False))
    assert "✅ **Accepted**" in text and "Built by the PR's own code" not in text
    assert text.splitlines()[0] == WATERMARK
    assert "rendered by the default branch" in text


def test_a_fork_report_says_it_was_built_by_the_prs_own_code() -> None:
    origin = ReportOrigin(
        conclusion="success", fork=True, run_url="https://github.com/acme/digits/actions/runs/9"
    )
    lines = render_report(full_inputs(), origin=origin).splitlines()
    assert lines[:2] == [WATERMARK, TITLE]
    assert lines[3:5] == [
        "> [!WARNING]",
        "> **Built by the PR's own code.** This PR comes from a fork, and the model check ran "
        "the fork's code: the figures and the verdict below are what that code reported. A "
        "maintainer re-runs the pipeline on a branch of this repository before trusting them.",
    ]
    assert "[PR run that built this report](https://github.com/acme/digits/actions/runs/9)" in lines


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://github.com/x", "https://a b"])
def test_a_run_link_must_be_a_plain_https_url(url: str) -> None:
    with pytest.raises(ValueError, match="not a plain https"):
        render_report(full_inputs(), origin=ReportOrigin("success", False, run_url=url))


def test_downsample_keeps_last_at_even_stride() -> None:
    picked = downsample(list(range(137)))
    assert len(picked) <= MAX_POINTS and picked[-1] == 136
    assert {b - a for a, b in pairwise(picked)} == {3}
    assert downsample([1, 2, 3]) == [1, 2, 3]


def test_align_curves_equal_lengths_for_different_epochs() -> None:
    steps, base, pr = align_curves(_curve(2, 0.1, 5, 120), _curve(2, 0.1, 5, 30))
    assert len(steps) == len(base) == len(pr) <= MAX_POINTS
    assert steps[-1] == 119
    assert pr[-1] == pytest.approx(_curve(2, 0.1, 5, 30)[-1][1])  # held at its last value


def test_align_curves_skips_non_finite_points() -> None:
    steps, base, pr = align_curves([(0, 1.0), (1, math.nan), (2, 0.5)], None)
    assert steps == [0, 2] and base == [1.0, 0.5] and pr is None


def test_long_even_curves_use_a_numeric_x_axis() -> None:
    inputs = replace(
        full_inputs(),
        curves_base={"eval/loss": [(0, 1.0), (1, 0.5), (5, 0.25)]},
        curves_pr={"eval/loss": [(i, 1 / (i + 1)) for i in range(300)]},
    )
    text = render_report(inputs)
    (block,) = [b for b in mermaid_blocks(text) if "eval/loss" in b]
    assert '    x-axis "step" 5 --> 299' in block.splitlines()
    assert check_xychart(block) == [43, 43]
    assert "300 steps, every 7th shown" in text


def test_uneven_curves_use_category_labels() -> None:
    inputs = replace(
        full_inputs(),
        curves_base={"eval/loss": [(0, 1.0), (1, 0.5), (5, 0.25)]},
        curves_pr={"eval/loss": [(0, 0.9), (2, 0.4), (3, 0.3)]},
    )
    (block,) = [b for b in mermaid_blocks(render_report(inputs)) if "eval/loss" in b]
    assert '    x-axis "step" ["0", "1", "2", "3", "5"]' in block.splitlines()
    assert '    line "base" [1, 0.5, 0.5, 0.5, 0.25]' in block.splitlines()
    assert '    line "PR" [0.9, 0.9, 0.4, 0.3, 0.3]' in block.splitlines()


def test_empty_inputs_render() -> None:
    text = render_report(ReportData())
    assert "No gate verdict" in text
    assert "No metrics found" in text
    assert "No parameter changes." in text
    assert "No training curves" in text
    assert "build/ci/repro.json" in text
    assert "```mermaid" not in text


def test_nan_metrics_are_flagged() -> None:
    text = render_report(nan_metric_inputs())
    log_loss = next(line for line in text.splitlines() if line.startswith("| log_loss "))
    assert "⚠️ NaN" in log_loss and "not a finite number" in log_loss and "❌" in log_loss
    assert "⚠️ +inf" in text
    assert "non-finite points left out" in text


def test_data_sections() -> None:
    assert "Data unchanged: 1797 rows x 65 columns in 1 file." in render_report(full_inputs())
    assert "No baseline data" in render_report(missing_baseline_inputs())
    text = render_report(data_changed_inputs())
    assert "- Files added: extra\\|&lt;b&gt;fives&lt;/b&gt;.csv" in text
    assert "- Files modified: digits.csv" in text
    assert "- Files removed: old.csv" in text
    assert "- Rows: 1797 → 1850 (+53, +2.95%)" in text


def test_images_only_https() -> None:
    images = [("loss", "https://example.org/loss.png"), ("bad", "javascript:alert(1)")]
    text = render_report(full_inputs(), images=images)
    assert "![loss](https://example.org/loss.png)" in text
    assert "javascript" not in text


def test_malformed_inputs_do_not_crash() -> None:
    """The renderer survives values its schema would refuse (defence in depth)."""
    inputs = ReportData.model_construct(
        metrics_diff={"m.json": {"a": 1, "b": {"old": "x", "new": "y"}, "c": {}}, "bad": 3},
        params_diff={"params.yaml": {"p": {"old": {"k": [1]}, "new": None}, "q": 5}},
        gate=verdict_record(
            {"accepted": False, "rules": [{"metric": "a", "direction": "up", "passed": False}]}
        ),
        curves_pr={"eval/loss": [(0, "x"), ("a", 1), (1,)], "train/acc": []},
        f1_pr={"0": None, "1": "x"},
        confusion_pr=[(0, 1)],
    )
    text = render_report(inputs)
    assert "❌ **Not accepted**" in text
    for block in mermaid_blocks(text):
        check_xychart(block)


@pytest.mark.parametrize(
    ("record", "data", "message"),
    [
        (GateVerdict, {"rules": []}, "has no boolean 'accepted' verdict"),
        (GateVerdict, {"accepted": False, "rules": [7]}, "rules.0: Input should be"),
        (DataSummary, {"files": None}, "is not a valid data summary: rows: Field required"),
        (ReproRecord, [], "holds no reproducibility record"),
    ],
)
def test_malformed_records_are_refused_by_their_reader(record, data, message, tmp_path) -> None:
    """The renderer gets typed records: a broken file stops at its reader, with the fix."""
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as caught:
        record.read(path)
    assert message in caught.value.message and caught.value.hint


def test_oversized_report_stays_under_the_comment_limit() -> None:
    params = {f"p{i:05d}": entry(i, i + 1) for i in range(5000)}
    text = render_report(replace(full_inputs(), params_diff={"params.yaml": params}))
    assert len(text) <= 65_536 and text.endswith("_(report cut: too long)_\n")
    assert text.splitlines()[0] == WATERMARK


def test_report_is_deterministic() -> None:
    assert render_report(full_inputs()) == render_report(full_inputs())
