"""`mlops release card`: the model card attached to a release, as markdown.

Everything it states comes from the packaged model's own record (provenance.json inside
artifacts/bento/model.bentomodel: params, metrics, data hash, gate verdict, packaging commit),
from dvc.lock (the hash of every pipeline output: the lineage) and, for the comparison, from the
previous release's metrics (a file, or a git revision such as the previous tag).
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlops_template import contract, metrics_io, paths
from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic
from mlops_template.records import DataSummary, GateVerdict, PackagedModel, Provenance
from mlops_template.serving import store

QUALITY_FILE = str(paths.QUALITY)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _directions(params: dict[str, Any]) -> dict[str, str]:
    rules = ((params.get("gate") or {}).get("rules")) or {}
    return {m: r.get("direction") for m, r in rules.items() if isinstance(r, dict)}


def metric_rows(
    current: dict[str, Any], previous: dict[str, Any] | None, directions: dict[str, str]
) -> list[list[Any]]:
    rows = []
    for name in sorted(set(current) | set(previous or {})):
        now, before = current.get(name), (previous or {}).get(name)
        change = "—"
        if metrics_io.is_finite_number(now) and metrics_io.is_finite_number(before):
            delta = now - before
            change = f"{delta:+.6g}"
            direction = directions.get(name)
            if delta and direction in ("higher", "lower"):
                better = (delta > 0) == (direction == "higher")
                change += " (better)" if better else " (worse)"
        elif previous is not None and before is None:
            change = "new"
        rows.append([f"`{name}`", now, before, change])
    return rows


def lineage_rows(lock: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for stage, entry in (lock.get("stages") or {}).items():
        for out in entry.get("outs") or []:
            rows.append([stage, f"`{out.get('path')}`", f"`{out.get('md5') or out.get('hash')}`"])
    return rows


def column_counts(spec: contract.FeatureSpec) -> str:
    """`3 numeric, 1 categorical`: the feature columns by kind, in a fixed order."""
    kinds = [c.kind for c in spec.columns]
    counts = [f"{kinds.count(k)} {k}" for k in ("numeric", "categorical", "boolean") if k in kinds]
    return ", ".join(counts) or "none"


def description(record: Provenance, spec: contract.FeatureSpec) -> list[str]:
    """What the model is: the project's own words, then what it takes and predicts."""
    model = record.model
    classes = ", ".join(f"`{c}`" for c in spec.classes)
    text = (
        f"A {model.family} model ({model.architecture}) of {len(spec.columns)} feature "
        f"columns ({column_counts(spec)}) that predicts `{spec.target}`, one of the classes "
        f"{classes}."
    )
    own_words = record.project.description.strip()
    return ([own_words, ""] if own_words else []) + [text]


def serving_text(spec: contract.FeatureSpec, packages: list[str] | None = None) -> list[str]:
    """How to call the service, and what the bento runs and installs (`packages`: the bentofile's
    pinned packages, when known)."""
    grid = " x ".join(str(n) for n in spec.shape) if spec.shape else None
    shape = f", or nested lists of shape {grid}" if grid else ""
    installs = ", ".join(f"`{p}`" for p in packages or [])
    return [
        f'`POST /predict` with `{{"instances": [...]}}`: each instance the {len(spec.columns)} '
        f"feature values in the column order above (or an object naming the columns{shape}); "
        "each value must be what the Input table accepts. The answer lists, per instance, the "
        "`label`, its `confidence`, the `probabilities` of every class and the "
        "`model_version`. `POST /metadata` describes the model; `/readyz`, `/livez` and "
        "`/metrics` (Prometheus) are served too.",
        "",
        "The bento runs the model's ONNX export (`model.onnx`, checked against the trained "
        "model on the whole test split when it was packaged) with ONNX Runtime: nothing is "
        "unpickled and no training library is installed"
        + (f"; it installs {installs} and their locked dependencies." if installs else "."),
    ]


def bento_packages(bentofile: Path = paths.BENTOFILE) -> list[str] | None:
    """The packages `mlops release build` pins into the bento (None without a bentofile)."""
    from mlops_template.release.build import pinned, read_bentofile

    if not bentofile.exists():
        return None
    return [
        pinned(p) for p in (read_bentofile(bentofile).get("python") or {}).get("packages") or []
    ]


def release_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def render_card(
    packaged: PackagedModel,
    version: str | None = None,
    previous: dict[str, Any] | None = None,
    previous_source: str | None = None,
    lock: dict[str, Any] | None = None,
    data_summary: DataSummary | None = None,
    commit: str | None = None,
    verdict: GateVerdict | None = None,
    packages: list[str] | None = None,
) -> str:
    """`verdict`: the release's own gate verdict (against the previous release); without it,
    the verdict recorded when the model was packaged. `packages`: what the bento installs."""
    record = packaged.provenance
    model, params = record.model, record.params
    gate = verdict or record.gate
    title = f"# Model card: {model.name}" + (f" {version}" if version else "")
    decision = "accepted" if gate.accepted else "NOT accepted"
    spec = model.feature_spec()
    lines = [
        title,
        "",
        *description(record, spec),
        "",
        *_table(
            ["", ""],
            [
                ["Model tag", f"`{packaged.tag}`"],
                ["Release", f"`{version}`" if version else "—"],
                ["Gate verdict", gate.summary or decision],
                ["Data (data.dvc md5)", f"`{record.data.md5}`"],
                ["Packaged at commit", f"`{record.git_commit}`"],
                ["Release commit", f"`{commit or release_commit()}`"],
            ],
        ),
        "",
        "## Metrics (test split)",
        "",
    ]
    source = f" against the previous release ({previous_source})" if previous_source else ""
    if previous is None:
        lines.append("No previous release to compare with.")
        lines.append("")
    else:
        lines.append(f"Changes{source}; better/worse follows the gate rule's direction.")
        lines.append("")
    flat = metrics_io.flatten(record.metrics)
    lines += _table(
        ["metric", "this release", "previous", "change"],
        metric_rows(flat, previous, _directions(params)),
    )
    lines += ["", "## Gate verdict", "", f"**{decision}** — {gate.summary}", ""]
    for reason in gate.reasons:
        lines.append(f"- {_fmt(reason)}")
    rule_rows = [
        [
            f"`{r.metric}`",
            r.direction,
            r.value,
            r.baseline,
            "; ".join(_fmt(c.reason) for c in r.checks),
            "pass" if r.passed else "FAIL",
        ]
        for r in gate.rules
    ]
    if rule_rows:
        lines += _table(["metric", "better", "value", "baseline", "checks", "result"], rule_rows)
    baseline = gate.baseline.source
    lines += ["", f"Baseline: {baseline or 'none (first model: change bounds skipped)'}.", ""]
    lines += ["## Training parameters", ""]
    train = metrics_io.flatten({"train": params.get("train") or {}})
    family = model.family
    other = [f for f in contract.family_names() if f != family]
    shown = {k: v for k, v in train.items() if not any(k.startswith(f"train.{o}.") for o in other)}
    lines += _table(["param", "value"], [[f"`{k}`", v] for k, v in shown.items()])
    lines += ["", "## Data", ""]
    data_rows = [["data.dvc md5", f"`{record.data.md5}`"]]
    if data_summary:
        data_rows += [["rows", data_summary.rows], ["columns", data_summary.columns]]
        per_class = data_summary.per_class
        data_rows.append(["rows per class", ", ".join(f"{k}: {v}" for k, v in per_class.items())])
    lines += _table(["", ""], data_rows)
    lines += ["", "## Lineage (dvc.lock)", ""]
    if lock:
        lines += _table(["stage", "output", "hash"], lineage_rows(lock))
    else:
        lines.append("dvc.lock not found: lineage unavailable.")
    lines += ["", "## Input", ""]
    lines += _table(
        ["column", "kind", "accepted values", "may be empty"],
        [[f"`{c.name}`", c.kind, c.describe(), c.nullable] for c in spec.columns],
    )
    lines += ["", "## Serving", "", *serving_text(spec, packages), ""]
    return "\n".join(lines)


def load_previous(
    previous_metrics: Path | None, previous_rev: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    if previous_metrics is not None:
        if not previous_metrics.exists():
            raise UserError(
                f"{previous_metrics} not found",
                "pass the previous release's metrics/quality.json, or omit --previous-metrics",
            )
        return metrics_io.parse_metrics(previous_metrics.read_text(), str(previous_metrics)), (
            str(previous_metrics)
        )
    if previous_rev is not None:
        found = metrics_io.load_metrics_at_rev(previous_rev, paths=(QUALITY_FILE,))
        return found, f"git:{previous_rev}"
    return None, None


def write_card(
    out: Path,
    bentomodel: Path = paths.BENTOMODEL_FILE,
    version: str | None = None,
    previous_metrics: Path | None = None,
    previous_rev: str | None = None,
    verdict: Path | None = None,
) -> Path:
    packaged = store.read_bentomodel(bentomodel)
    release_verdict = GateVerdict.read(verdict) if verdict else None
    previous, source = load_previous(previous_metrics, previous_rev)
    # The lineage is the tagged commit's (`mlops release recorded` checked the model matches it).
    committed = metrics_io.git_show("HEAD", str(paths.DVC_LOCK)) if _in_git() else None
    if committed is None and paths.DVC_LOCK.exists():
        committed = paths.DVC_LOCK.read_text()
    lock = yaml.safe_load(committed) if committed else None
    summary = DataSummary.read(paths.DATA_REPORT) if paths.DATA_REPORT.exists() else None
    card = render_card(
        packaged,
        version,
        previous,
        source,
        lock,
        summary,
        verdict=release_verdict,
        packages=bento_packages(),
    )
    write_text_atomic(out, card)
    return out


def _in_git() -> bool:
    import subprocess

    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"], capture_output=True, text=True
    )
    return done.returncode == 0
