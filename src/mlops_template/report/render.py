"""Render the pull-request report: already-parsed inputs in, GitHub-flavoured markdown out.

Pure and deterministic: no I/O, no clock. Every string that a PR author controls (metric,
param, class and file names, values, refs, gate reasons) goes through `md_escape` before it
lands in the markdown, and through `_chart_label` before it lands in a Mermaid chart.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from mlops_template.records import (
    CheckRecord,
    DataSummary,
    GateVerdict,
    ReportData,
    ReproRecord,
    RuleRecord,
)

# The report's first line never changes, so a poster can find (and update) its one comment.
WATERMARK = "<!-- mlops-template:pr-report -->"
TITLE = "## 🔬 Model report"

MAX_POINTS = 50  # per chart series, after downsampling
MAX_CHARS = 60_000  # a GitHub comment holds 65,536 characters
MAX_CELL = 80  # longer cell values are cut with an ellipsis

CHART_HEIGHT = 360  # px; Mermaid's default 500 makes a long comment
BASE_COLOR = "#8c959f"  # grey
PR_COLOR = "#0969da"  # blue

Curve = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class ReportOrigin:
    """Where the data came from, as the trusted comment workflow knows it (never the artifact).

    conclusion: the PR run's `workflow_run.conclusion`; an artifact claiming an accepted model
        from a run that did not succeed is shown as failed.
    fork: the PR's head repository is not this one; the report then says it was built by the
        PR's own code.
    run_url: the PR run's page (this repository's), linked from the report.
    """

    conclusion: str
    fork: bool
    run_url: str = ""


# --------------------------------------------------------------------------- text helpers

_ESCAPES = {
    "\\": "\\\\",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
    "`": "&#96;",
    "[": "\\[",
    "]": "\\]",
    "*": "\\*",
    "~": "\\~",
    "$": "\\$",
    "@": "@&#8203;",  # no @-mentions (a zero-width space after @ ends GitHub's match)
    "#": "#&#8203;",  # no #123 / owner/repo#123 references, no headings
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))
_AUTOLINK_RE = re.compile(r"(?i)(://|\bwww\.|\bgh-(?=\d))")  # bare links, GH-123 references
_LONE_UNDERSCORE_RE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # log_loss stays
# a list marker, a rule or an underline where the text starts (-0.5 and 0.97 stay as they are)
_BLOCK_START_RE = re.compile(r"^(\d{0,9})([-+=.)])(?=\s|$|[-=])")


def md_escape(value: Any, limit: int = MAX_CELL) -> str:
    """Text that stays literal text wherever the report puts it (a table cell, a list item).

    For every string a PR controls: one line, no HTML, no links (bare URLs included), no
    code, emphasis or table breaks, no @-mentions or #-references, nothing that opens a block.
    """
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)
    text = _LONE_UNDERSCORE_RE.sub(r"\\_", text)
    text = _AUTOLINK_RE.sub(lambda m: m.group(0)[:-1] + "&#8203;" + m.group(0)[-1], text)
    return _BLOCK_START_RE.sub(r"\1\\\2", text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _fmt_float(value: float) -> str:
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3e}"
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text


def _fmt_short(value: Any) -> str:
    """Bounds and thresholds: as short as they were written (0.97, 5000000, 0.005)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if _is_finite(value):
        return f"{round(value, 6):f}".rstrip("0").rstrip(".") or "0"
    return md_escape(value)


def human_bytes(size: float) -> str:
    size = float(size)
    if abs(size) < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")


def _is_bytes_metric(name: str) -> bool:
    return name.endswith("bytes")


def _fmt_value(value: Any, name: str = "") -> str:
    """One metric or param value for a table cell."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        if math.isnan(value):
            return "⚠️ NaN"
        if math.isinf(value):
            return "⚠️ +inf" if value > 0 else "⚠️ -inf"
        if _is_bytes_metric(name):
            return human_bytes(value)
        return str(value) if isinstance(value, int) else _fmt_float(value)
    if isinstance(value, str):
        return md_escape(value)
    return md_escape(json.dumps(value, sort_keys=True, default=str))


def _fmt_delta(delta: float, name: str, is_int: bool) -> str:
    if _is_bytes_metric(name):
        return ("+" if delta >= 0 else "-") + human_bytes(abs(delta))
    if is_int:
        return f"{int(delta):+d}"
    text = _fmt_float(delta)
    return text if text.startswith("-") else "+" + text


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    aligns = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in aligns]
    return [_row(*header), _row(*sep), *(_row(*r) for r in rows)]


def _sort_key(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order, then the rest alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# --------------------------------------------------------------------------- metrics


def flatten_diff(diff: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{file: {name: entry}} -> {name: entry}; a name seen in two files gets its file appended."""
    flat: dict[str, dict[str, Any]] = {}
    for path in sorted(diff or {}):
        entries = diff[path]
        if not isinstance(entries, Mapping):
            continue
        for name in sorted(entries):
            entry = entries[name]
            if not isinstance(entry, Mapping):
                entry = {"old": None, "new": entry}
            key = name if name not in flat else f"{name} ({path})"
            flat[key] = {"old": entry.get("old"), "new": entry.get("new")}
    return flat


_LOWER_TOKENS = {"loss", "error", "latency", "ms", "bytes", "size", "mse", "mae", "rmse"}
_HIGHER_TOKENS = {"accuracy", "acc", "precision", "recall", "f1", "auc", "r2"}


def guess_direction(name: str) -> str | None:
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    if tokens & _LOWER_TOKENS:
        return "lower"
    if tokens & _HIGHER_TOKENS:
        return "higher"
    return None


def _change_cell(name: str, old: Any, new: Any, direction: str | None) -> str:
    if old is None and new is None:
        return "❌ missing"
    if old is None:
        return "🆕 new"
    if new is None:
        return "🗑️ removed"
    if _is_number(new) and not math.isfinite(new):
        return "⚠️ not a finite number"
    if _is_number(old) and not math.isfinite(old):
        return "⚠️ base not finite"
    if not (_is_number(old) and _is_number(new)):
        return "=" if old == new else "changed"
    delta = new - old
    if delta == 0:
        return "="
    is_int = isinstance(old, int) and isinstance(new, int)
    arrow = "↑" if delta > 0 else "↓"
    rel = f" ({delta / abs(old) * 100:+.2f}%)" if old != 0 else ""
    mark = ""
    if direction in ("higher", "lower"):
        better = (delta > 0) == (direction == "higher")
        mark = " 🟢" if better else " 🔴"
    return f"{arrow} {_fmt_delta(delta, name, is_int)}{rel}{mark}"


def _check_text(check: CheckRecord, direction: str, name: str) -> str:
    kind, bound = check.kind, check.bound
    if not _is_number(bound):
        return md_escape(kind)
    better_up = direction == "higher"
    if kind == "min":
        return f"≥ {human_bytes(bound) if _is_bytes_metric(name) else _fmt_short(bound)}"
    if kind == "max":
        return f"≤ {human_bytes(bound) if _is_bytes_metric(name) else _fmt_short(bound)}"
    if kind == "max_regression":
        limit = -bound if better_up else bound
        text = _fmt_short(limit)
        if _is_bytes_metric(name):
            text = ("-" if limit < 0 else "") + human_bytes(abs(limit))
        sign = "+" if limit > 0 else ""
        return f"Δ {'≥' if better_up else '≤'} {sign}{text}"
    if kind == "max_relative_regression":
        limit = (-bound if better_up else bound) * 100
        return f"Δ {'≥' if better_up else '≤'} {'+' if limit > 0 else ''}{_fmt_short(limit)}%"
    return md_escape(kind)


def _gate_cell(rule: RuleRecord | None, name: str) -> str:
    if rule is None:
        return ""
    parts = []
    for check in rule.checks:
        text = _check_text(check, rule.direction, name)
        if check.passed is None:
            text += " _(skipped)_"
        elif not check.passed:
            text = f"**{text}**"
        parts.append(text)
    icon = "✅" if rule.passed else "❌"
    return f"{icon} {' · '.join(parts)}".rstrip()


def _gate_rules(gate: GateVerdict | None) -> dict[str, RuleRecord]:
    rules: dict[str, RuleRecord] = {}
    for rule in gate.rules if gate is not None else []:
        rules.setdefault(rule.metric, rule)
    return rules


def _is_serving(name: str) -> bool:
    return "latency" in name or _is_bytes_metric(name)


def _is_per_class(name: str) -> bool:
    return "per_class." in name


def _metric_rows(
    names: Sequence[str],
    values: Mapping[str, Mapping[str, Any]],
    rules: Mapping[str, RuleRecord],
    with_gate: bool,
) -> list[list[str]]:
    rows = []
    for name in names:
        old, new = values[name]["old"], values[name]["new"]
        rule = rules.get(name)
        direction = rule.direction if rule is not None else guess_direction(name)
        pr_cell = "❌ missing" if new is None and name in rules else _fmt_value(new, name)
        cells = [
            md_escape(name),
            _fmt_value(old, name),
            pr_cell,
            _change_cell(name, old, new, direction),
        ]
        if with_gate:
            cells.append(_gate_cell(rule, name))
        rows.append(cells)
    return rows


def _ordered(names: Sequence[str], rules: Mapping[str, Any]) -> list[str]:
    """Gate-ruled metrics first (in the gate's order), then the rest sorted."""
    ruled = [n for n in rules if n in names]
    return ruled + sorted(n for n in names if n not in rules)


def _metric_values(inputs: ReportData) -> dict[str, dict[str, Any]]:
    values = flatten_diff(inputs.metrics_diff)
    for name, rule in _gate_rules(inputs.gate).items():
        if name not in values:  # a ruled metric the diff does not know: show it anyway
            values[name] = {"old": rule.baseline, "new": rule.value}
    return values


def _section_metrics(inputs: ReportData, values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rules = _gate_rules(inputs.gate)
    with_gate = inputs.gate is not None
    header = ["Metric", "Base", "PR", "Change"] + (["Gate"] if with_gate else [])
    names = [n for n in values if not _is_serving(n) and not _is_per_class(n)]
    out = ["### Metrics", ""]
    if not values:
        return [*out, "_No metrics found: did the evaluate stage run?_"]
    if values and all(v["old"] is None for v in values.values()):
        out += ["_No baseline metrics at the base revision: every metric is new._", ""]
    if names:
        out += _table(
            header,
            _metric_rows(_ordered(names, rules), values, rules, with_gate),
            "lrrrl"[: len(header)],
        )
    per_class = [n for n in values if _is_per_class(n)]
    if per_class:
        per_class.sort(key=lambda n: (n.rsplit(".", 1)[0], _sort_key(n.rsplit(".", 1)[-1])))
        out += ["", f"<details><summary>{_per_class_summary(per_class, values)}</summary>", ""]
        out += _table(
            header, _metric_rows(per_class, values, rules, with_gate), "lrrrl"[: len(header)]
        )
        out += ["", "</details>"]
    return out


def _per_class_summary(names: Sequence[str], values: Mapping[str, Mapping[str, Any]]) -> str:
    text = f"Per-class metrics ({_count(len(names), 'row')})"
    finite = [(values[n]["new"], n) for n in names if _is_finite(values[n]["new"])]
    if finite:
        worst_value, worst = min(finite, key=lambda vn: (vn[0], vn[1]))
        text += f": lowest in PR {md_escape(worst)} = {_fmt_float(worst_value)}"
    drops = [
        (values[n]["new"] - values[n]["old"], n)
        for n in names
        if _is_finite(values[n]["new"]) and _is_finite(values[n]["old"])
    ]
    if drops:
        drop, name = min(drops, key=lambda dn: (dn[0], dn[1]))
        if drop < 0:
            text += f"; largest drop {md_escape(name)} {_fmt_float(drop)}"
    return text


def _section_serving(inputs: ReportData, values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names = [n for n in values if _is_serving(n)]
    out = ["### Serving cost", ""]
    if not names:
        return [*out, "_No model size or latency metrics._"]
    rules = _gate_rules(inputs.gate)
    with_gate = inputs.gate is not None
    header = ["Metric", "Base", "PR", "Change"] + (["Gate"] if with_gate else [])
    # The base's latency was measured on another machine (whoever committed it): comparing it
    # with this runner's measurement would show machine differences as model changes.
    shown = {
        n: ({"old": None, "new": v.get("new")} if "latency" in n else v) for n, v in values.items()
    }
    rows = _metric_rows(_ordered(names, rules), shown, rules, with_gate)
    for row, name in zip(rows, _ordered(names, rules), strict=True):
        if "latency" in name:
            row[1], row[3] = "n/a", "not compared"
    out += _table(header, rows, "lrrrl"[: len(header)])
    if any("latency" in n for n in names):
        out += [
            "",
            "<sub>Latency is measured on the CI runner for the PR only: the base's figure comes "
            "from another machine, so it is not compared. Model size is exact.</sub>",
        ]
    return out


# --------------------------------------------------------------------------- verdict


def _section_verdict(gate: GateVerdict | None, origin: ReportOrigin | None) -> list[str]:
    failed_run = origin is not None and origin.conclusion != "success"
    if gate is None:
        line = (
            "⚪ **No gate verdict**: `reports/gate.json` is missing (the gate stage did not run)."
        )
        return [_failed_run_line(origin), "", line] if failed_run else [line]
    summary = re.sub(r"^\s*(not )?accepted\s*:?\s*", "", gate.summary)
    summary = md_escape(summary, limit=300)
    if gate.accepted and failed_run:
        out = [_failed_run_line(origin)]
    else:
        line = "✅ **Accepted**" if gate.accepted else "❌ **Not accepted**"
        out = [f"{line}: {summary}" if summary else line]
    if gate.reasons:
        out += ["", *(f"- {md_escape(r, limit=300)}" for r in gate.reasons)]
    return out


def _failed_run_line(origin: ReportOrigin | None) -> str:
    """The verdict when the PR run did not succeed, whatever its artifact claims."""
    conclusion = md_escape(origin.conclusion if origin else "unknown", limit=30)
    return (
        f"❌ **PR check failed**: the PR workflow run ended in `{conclusion}`, so this PR is not "
        "accepted, whatever the data below says; its log says why."
    )


def _section_origin(origin: ReportOrigin | None) -> list[str]:
    """The fork note and the link to the run that built the data (both from trusted values)."""
    if origin is None:
        return []
    out = []
    if origin.fork:
        out += [
            "> [!WARNING]",
            "> **Built by the PR's own code.** This PR comes from a fork, and the model check "
            "ran the fork's code: the figures and the verdict below are what that code reported. "
            "A maintainer re-runs the pipeline on a branch of this repository before trusting "
            "them.",
        ]
    if origin.run_url:
        out += (["", ""] if out else []) + [f"[PR run that built this report]({origin.run_url})"]
    return out


# --------------------------------------------------------------------------- params


def _param_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return md_escape(value)
    if isinstance(value, float):
        return md_escape(_fmt_short(value)) if math.isfinite(value) else _fmt_value(value)
    return _fmt_value(value)


def _same(old: Any, new: Any) -> bool:
    return json.dumps(old, sort_keys=True, default=str) == json.dumps(
        new, sort_keys=True, default=str
    )


def _section_params(inputs: ReportData) -> list[str]:
    out = ["### Params changed", ""]
    diff = inputs.params_diff or {}
    files = [f for f in sorted(diff) if isinstance(diff[f], Mapping)]
    rows = []
    for path in files:
        for name in sorted(diff[path]):
            entry = diff[path][name]
            if not isinstance(entry, Mapping):
                continue
            old, new = entry.get("old"), entry.get("new")
            if _same(old, new):
                continue
            label = name if len(files) == 1 else f"{path}:{name}"
            rows.append([md_escape(label), _param_value(old), _param_value(new)])
    if not rows:
        return [*out, "No parameter changes."]
    table = _table(["Param", "Base", "PR"], rows, align="lll")
    if all(row[1] == "—" for row in rows):  # first run: every param is new
        summary = f"No params at the base revision: all {len(rows)} are new"
        return [*out, f"<details><summary>{summary}</summary>", "", *table, "", "</details>"]
    return out + table


# --------------------------------------------------------------------------- data


def _section_data(base: DataSummary | None, pr: DataSummary | None) -> list[str]:
    out = ["### Data", ""]
    if pr is None:
        return [*out, "_No data summary in this PR (`reports/data.json` is missing)._"]
    pr_files = pr.files
    if base is None:
        return [
            *out,
            f"No baseline data (the base has no `reports/data.json`). "
            f"This PR: {_shape(pr)} in {_count(len(pr_files), 'file')}.",
        ]
    if base == pr:
        return [*out, f"Data unchanged: {_shape(pr)} in {_count(len(pr_files), 'file')}."]
    base_files = base.files
    added = sorted(set(pr_files) - set(base_files))
    removed = sorted(set(base_files) - set(pr_files))
    modified = sorted(f for f in set(pr_files) & set(base_files) if pr_files[f] != base_files[f])
    items = []
    for label, names in (("added", added), ("modified", modified), ("removed", removed)):
        if names:
            items.append(f"- Files {label}: {', '.join(md_escape(n) for n in names)}")
    if not (added or removed or modified):
        items.append("- Files: unchanged")
    items.append(f"- Rows: {_from_to(base.rows, pr.rows)}")
    if base.columns != pr.columns:
        items.append(f"- Columns: {_from_to(base.columns, pr.columns)}")
    out += items
    base_pc, pr_pc = base.per_class, pr.per_class
    changed = sorted(
        (c for c in set(base_pc) | set(pr_pc) if base_pc.get(c) != pr_pc.get(c)), key=_sort_key
    )
    if changed:
        rows = [
            [
                md_escape(c),
                _fmt_value(base_pc.get(c)),
                _fmt_value(pr_pc.get(c)),
                _change_cell("", base_pc.get(c), pr_pc.get(c), None),
            ]
            for c in changed
        ]
        out += ["", "Per-class counts that changed:", ""]
        out += _table(["Class", "Base", "PR", "Change"], rows)
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _shape(summary: DataSummary) -> str:
    return f"{_fmt_value(summary.rows)} rows x {_fmt_value(summary.columns)} columns"


def _from_to(old: Any, new: Any) -> str:
    if old == new:
        return f"{_fmt_value(new)} (unchanged)"
    text = f"{_fmt_value(old)} → {_fmt_value(new)}"
    if _is_finite(old) and _is_finite(new):
        delta = new - old
        text += f" ({_fmt_delta(delta, '', isinstance(delta, int))}"
        text += f", {delta / abs(old) * 100:+.2f}%)" if old else ")"
    return text


# --------------------------------------------------------------------------- charts

_LABEL_RE = re.compile(r"[^A-Za-z0-9 ._/:+()-]")


def _chart_label(text: Any, limit: int = 40) -> str:
    """Text for a quoted Mermaid string: a safe whitelist, never a quote or a fence."""
    return _LABEL_RE.sub("_", str(text))[:limit] or "_"


def _chart_number(value: float) -> str:
    """Plain decimal (Mermaid's lexer knows no exponent), 4 decimals at most."""
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _clean_curve(curve: Curve | None) -> tuple[list[tuple[float, float]], int]:
    """Finite points sorted by step (last value wins per step), and how many were dropped."""
    points: dict[float, float] = {}
    dropped = 0
    for point in curve or ():
        try:
            step, value = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError):
            dropped += 1
            continue
        if math.isfinite(step) and math.isfinite(value):
            points[step] = value
        else:
            dropped += 1
    return sorted(points.items()), dropped


def downsample(steps: Sequence[float], limit: int = MAX_POINTS) -> list[float]:
    """At most `limit` steps at an even stride, counted back from the last (always kept)."""
    if len(steps) <= limit:
        return list(steps)
    stride = math.ceil((len(steps) - 1) / (limit - 1))
    return list(steps[::-1][::stride][::-1])


def _value_at(points: Sequence[tuple[float, float]], step: float) -> float:
    """The value at the latest step <= `step` (the first value before the curve starts)."""
    value = points[0][1]
    for s, v in points:
        if s > step:
            break
        value = v
    return value


def align_curves(
    base: Curve | None, pr: Curve | None
) -> tuple[list[float], list[float] | None, list[float] | None]:
    """Common steps (<= MAX_POINTS) and each series sampled on them (None if it has none)."""
    clean_base, _ = _clean_curve(base)
    clean_pr, _ = _clean_curve(pr)
    steps = downsample(sorted({s for s, _ in clean_base} | {s for s, _ in clean_pr}))
    base_vals = [_value_at(clean_base, s) for s in steps] if clean_base else None
    pr_vals = [_value_at(clean_pr, s) for s in steps] if clean_pr else None
    return steps, base_vals, pr_vals


def _even_integer_steps(steps: Sequence[float]) -> bool:
    """Integer steps at one stride: a numeric x-axis then places every point exactly."""
    if len(steps) < 3 or any(s != int(s) for s in steps):
        return False
    stride = steps[1] - steps[0]
    return stride > 0 and all(b - a == stride for a, b in pairwise(steps))


def xychart(
    title: str,
    x_title: str,
    labels: Sequence[str] | tuple[float, float],
    y_title: str,
    series: Sequence[tuple[str, str, Sequence[float], str]],
    y_range: tuple[float, float] | None = None,
) -> list[str]:
    """A ```mermaid xychart-beta block. series: (kind "line"|"bar", name, values, colour).

    `labels`: category labels, or a (min, max) tuple for a numeric x-axis (the points are
    then spread evenly over it). Axis titles are always given (older Mermaid requires them);
    every text is quoted; numbers are plain decimals (the lexer knows no exponent).
    """
    palette = ", ".join(colour for _, _, _, colour in series)
    init = {
        "xyChart": {"height": CHART_HEIGHT},
        "themeVariables": {"xyChart": {"plotColorPalette": palette}},
    }
    if isinstance(labels, tuple):
        x_data = f"{_chart_number(labels[0])} --> {_chart_number(labels[1])}"
    else:
        x_data = "[" + ", ".join(f'"{_chart_label(label, limit=20)}"' for label in labels) + "]"
    y_axis = f'    y-axis "{_chart_label(y_title)}"'
    if y_range is not None:
        y_axis += f" {_chart_number(y_range[0])} --> {_chart_number(y_range[1])}"
    lines = [
        "```mermaid",
        f"%%{{init: {json.dumps(init)}}}%%",
        "xychart-beta",
        f'    title "{_chart_label(title, limit=60)}"',
        f'    x-axis "{_chart_label(x_title)}" {x_data}',
        y_axis,
    ]
    for kind, name, values, _ in series:
        numbers = ", ".join(_chart_number(v) for v in values)
        lines.append(f'    {kind} "{_chart_label(name)}" [{numbers}]')
    lines.append("```")
    return lines


_SPLIT_PREFERENCE = ("eval", "val", "validation", "test", "train")


def _families(names: Sequence[str]) -> dict[str, list[str]]:
    """{"loss": ["eval/loss", "train/loss"], ...}: curves grouped by their last path part."""
    families: dict[str, list[str]] = {}
    for name in sorted(names):
        families.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    return families


def _preferred(names: Sequence[str]) -> str:
    def rank(name: str) -> tuple[int, str]:
        split = name.rsplit("/", 1)[0] if "/" in name else ""
        order = _SPLIT_PREFERENCE.index(split) if split in _SPLIT_PREFERENCE else 99
        return (order, name)

    return min(names, key=rank)


def _series_legend(base: bool, pr: bool, inputs: ReportData) -> str:
    parts = []
    if base:
        parts.append(f"grey = base ({md_escape(inputs.base_sha or inputs.base_ref or 'base')})")
    if pr:
        parts.append(f"blue = PR ({md_escape(inputs.head_sha or inputs.head_ref or 'head')})")
    return " · ".join(parts)


def _best(name: str, points: Sequence[tuple[float, float]]) -> str:
    """The best value of a curve and its (first) step, when the metric has a known direction."""
    direction = guess_direction(name.rsplit("/", 1)[-1])
    if not points or direction is None:
        return "—"
    sign = 1 if direction == "lower" else -1
    step, value = min(points, key=lambda sv: (sign * sv[1], sv[0]))
    return f"{_fmt_float(value)} @ {_chart_number(step)}"


def _section_curves(inputs: ReportData) -> list[str]:
    names = sorted(set(inputs.curves_base) | set(inputs.curves_pr))
    names = [n for n in names if inputs.curves_base.get(n) or inputs.curves_pr.get(n)]
    out = ["#### Training curves", ""]
    if not names:
        return [*out, "_No training curves: this model family logs none._"]
    for family, members in _families(names).items():
        name = _preferred(members)
        steps, base_vals, pr_vals = align_curves(
            inputs.curves_base.get(name), inputs.curves_pr.get(name)
        )
        if not steps:
            continue
        x_axis = (
            (steps[0], steps[-1])
            if _even_integer_steps(steps)
            else [_chart_number(step) for step in steps]
        )
        series = []
        if base_vals is not None:
            series.append(("line", "base", base_vals, BASE_COLOR))
        if pr_vals is not None:
            series.append(("line", "PR", pr_vals, PR_COLOR))
        legend = _series_legend(base_vals is not None, pr_vals is not None, inputs)
        caption = f"**{md_escape(name)}**: {legend}"
        notes = _curve_notes(inputs.curves_base.get(name), inputs.curves_pr.get(name), steps)
        out += [caption + (f" ({notes})" if notes else ""), ""]
        out += xychart(f"{name}: base vs PR", "step", x_axis, family, series)
        out.append("")
    rows = []
    for name in names:
        base_pts, _ = _clean_curve(inputs.curves_base.get(name))
        pr_pts, _ = _clean_curve(inputs.curves_pr.get(name))
        rows.append(
            [
                md_escape(name),
                _fmt_float(base_pts[-1][1]) if base_pts else "—",
                _fmt_float(pr_pts[-1][1]) if pr_pts else "—",
                _best(name, pr_pts),
            ]
        )
    out += _table(["Curve", "Base (last)", "PR (last)", "PR best @ step"], rows)
    return out


def _curve_notes(base: Curve | None, pr: Curve | None, steps: Sequence[float]) -> str:
    clean_base, dropped_base = _clean_curve(base)
    clean_pr, dropped_pr = _clean_curve(pr)
    notes = []
    if clean_base and clean_pr and clean_base[-1][0] != clean_pr[-1][0]:
        notes.append(
            f"base has {len(clean_base)} steps, PR {len(clean_pr)}; "
            "a shorter curve is held at its last value"
        )
    if dropped_base + dropped_pr:
        notes.append(f"{dropped_base + dropped_pr} non-finite points left out")
    total = len({s for s, _ in clean_base} | {s for s, _ in clean_pr})
    if total > len(steps):
        notes.append(f"{total} steps, every {_chart_number(steps[1] - steps[0])}th shown")
    return "; ".join(notes)


def _section_f1_chart(inputs: ReportData) -> list[str]:
    base = {str(k): v for k, v in (inputs.f1_base or {}).items() if _is_finite(v)}
    pr = {str(k): v for k, v in (inputs.f1_pr or {}).items() if _is_finite(v)}
    classes = sorted(set(base) | set(pr), key=_sort_key)
    if not classes:
        return []
    series = []
    # a class absent on one side is drawn at 0 so every series spans every class
    if base:
        series.append(("bar", "base", [base.get(c, 0.0) for c in classes], BASE_COLOR))
    if pr:
        series.append(("line", "PR", [pr.get(c, 0.0) for c in classes], PR_COLOR))
    low = min(v for _, _, values, _ in series for v in values)
    y_min = max(0.0, math.floor((low - 0.02) * 20) / 20)
    legend = _series_legend(bool(base), bool(pr), inputs).replace("grey", "grey bars")
    legend = legend.replace("blue", "blue line")
    out = ["#### Per-class F1", "", legend, ""]
    out += xychart("F1 per class: base vs PR", "class", classes, "F1", series, (y_min, 1.0))
    missing = sorted(set(base) ^ set(pr), key=_sort_key) if base and pr else []
    if missing:
        names = md_escape(", ".join(missing))
        out += ["", f"<sub>No finite F1 on one side for class {names} (drawn at 0).</sub>"]
    return out


def _section_confusion(pairs: Sequence[tuple[str, str]]) -> list[str]:
    if not pairs:
        return []
    counts = Counter((str(a), str(p)) for a, p in pairs)
    labels = sorted({a for a, _ in counts} | {p for _, p in counts}, key=_sort_key)
    total = sum(counts.values())
    errors = sum(n for (a, p), n in counts.items() if a != p)
    confusions = sorted(
        ((n, a, p) for (a, p), n in counts.items() if a != p),
        key=lambda nap: (-nap[0], _sort_key(nap[1]), _sort_key(nap[2])),
    )[:3]
    summary = f"Confusion matrix (PR): {total} predictions, {errors} wrong"
    if confusions:
        top = ", ".join(f"{md_escape(a)}→{md_escape(p)} ({n})" for n, a, p in confusions)
        summary += f"; most frequent: {top}"
    rows = []
    for actual in labels:
        cells = [f"**{md_escape(actual)}**"]
        for predicted in labels:
            n = counts.get((actual, predicted), 0)
            cells.append(f"**{n}**" if actual == predicted else (str(n) if n else "·"))
        rows.append(cells)
    header = ["actual ↓ / predicted →", *(md_escape(label) for label in labels)]
    out = ["", f"<details><summary>{summary}</summary>", ""]
    out += _table(header, rows)
    return [*out, "", "</details>"]


_URL_RE = re.compile(r"^https://[^\s()<>\"'`]+$")


def _section_images(images: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for alt, url in images:
        if _URL_RE.match(str(url)):
            out.append(f"![{md_escape(alt)}]({url})")
    return ["", *out] if out else []


def _section_plots(inputs: ReportData, images: Sequence[tuple[str, str]]) -> list[str]:
    out = ["### Plots", ""]
    out += _section_curves(inputs)
    f1 = _section_f1_chart(inputs)
    if f1:
        out += ["", *f1]
    out += _section_confusion(inputs.confusion_pr)
    out += _section_images(images)
    return out


# --------------------------------------------------------------------------- reproducibility

_DATA_SOURCES = {
    "cache": "DVC cache restored in CI",
    "remote": "pulled from the DVC remote",
    "bootstrap": "rebuilt from the example data source (no DVC remote with the data)",
}


def _section_repro(repro: ReproRecord | None) -> list[str]:
    out = ["### Reproducibility", ""]
    if repro is None:
        return [*out, "_Not checked (`build/ci/repro.json` is missing)._"]
    source = repro.data_source
    items = [f"- Data: {_DATA_SOURCES.get(source, 'unknown source')} ({md_escape(source)})"]
    mark = "❌" if repro.on_stale == "fail" else "⚠️"
    if repro.lock_up_to_date:
        items.append("- ✅ `dvc.lock` is up to date with the code, params and data")
    else:
        items.append(
            f"- {mark} `dvc.lock` is out of date: run `dvc repro` and commit `dvc.lock` "
            "and the metrics it changes"
        )
        items += [f"  - {md_escape(problem, limit=300)}" for problem in repro.stale]
    reproduced = repro.metrics_reproduced
    if reproduced is True:
        items.append("- ✅ Committed metrics reproduced in CI (every metric as declared)")
    elif reproduced is False:
        items.append(
            f"- {mark} Committed metrics not reproduced in CI: commit the metrics your "
            "`dvc repro` produced"
        )
        items += [
            f"  - {md_escape(m.metric, limit=80)}: committed "
            f"{md_escape(str(m.committed), limit=40)}, CI {md_escape(str(m.reproduced), limit=40)}"
            f" (allowed: {md_escape(m.allowed, limit=80)})"
            for m in repro.mismatches
        ]
    else:
        items.append("- ⏭️ Committed metrics were not compared (nothing to compare against)")
    if repro.stale_problems():
        items.append(
            "- This check fails the PR (params.yaml `ci.on_stale: fail`)"
            if repro.on_stale == "fail"
            else "- Reported only (params.yaml `ci.on_stale: warn`)"
        )
    items += [f"- {md_escape(note, limit=300)}" for note in repro.notes]
    return out + items


# --------------------------------------------------------------------------- report


def _footer(inputs: ReportData, origin: ReportOrigin | None) -> list[str]:
    def side(ref: str, sha: str) -> str:
        ref_text, sha_text = md_escape(ref, limit=60), md_escape(sha, limit=12)
        if ref_text and sha_text and ref_text != sha_text:
            return f"{ref_text} @ {sha_text}"
        return ref_text or sha_text or "?"

    return [
        f"<sub>base {side(inputs.base_ref, inputs.base_sha)} → "
        f"head {side(inputs.head_ref, inputs.head_sha)} · "
        + (
            "rendered by the default branch from the PR run's data</sub>"
            if origin is not None
            else "written by `mlops report`</sub>"
        )
    ]


def render_report(
    inputs: ReportData,
    images: Sequence[tuple[str, str]] = (),
    origin: ReportOrigin | None = None,
) -> str:
    """The whole report as markdown (ends with a newline).

    `images`: [(alt, https url)] published images to show. `origin`: given by the comment
    workflow, which renders a PR run's data: the verdict is checked against the run's
    conclusion, and a fork's report says it was built by the PR's own code.
    """
    if origin is not None and origin.run_url and not _URL_RE.match(origin.run_url):
        raise ValueError(f"run URL {origin.run_url!r} is not a plain https:// URL")
    text = _render(inputs, images, origin, with_plots=True)
    if len(text) > MAX_CHARS:
        text = _render(inputs, images, origin, with_plots=False)
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 100].rsplit("\n", 1)[0] + "\n\n_(report cut: too long)_\n"
    return text


def _render(
    inputs: ReportData,
    images: Sequence[tuple[str, str]],
    origin: ReportOrigin | None,
    with_plots: bool,
) -> str:
    values = _metric_values(inputs)
    plots = ["### Plots", "", "_Left out: too long._"]
    sections = [
        [WATERMARK, TITLE],
        _section_origin(origin),
        _section_verdict(inputs.gate, origin),
        _section_metrics(inputs, values),
        _section_serving(inputs, values),
        _section_params(inputs),
        _section_data(inputs.data_base, inputs.data_pr),
        _section_plots(inputs, images) if with_plots else plots,
        _section_repro(inputs.repro),
        _footer(inputs, origin),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
