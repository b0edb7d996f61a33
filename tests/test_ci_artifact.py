"""The PR report artifact: what the PR workflow bundles, and what the comment workflow accepts."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from mlops_template.ci import artifact
from mlops_template.ci.artifact import NoArtifact, bundle, validate_bundle
from mlops_template.errors import UserError
from mlops_template.files import write_json
from mlops_template.records import GateVerdict, ReportData

HEAD = "a" * 40
BASE = "b" * 40
PNG = artifact.PNG_MAGIC + b"\x00" * 64


DATA = ReportData(
    metrics_diff={"metrics/quality.json": {"accuracy": {"old": 0.97, "new": 0.98}}},
    gate=GateVerdict(accepted=True, summary="accepted: 1 rule passed"),
    head_sha=HEAD[:7],
)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(DATA.to_json()), encoding="utf-8")
    return path


@pytest.fixture
def bundled(tmp_path: Path, report: Path) -> Path:
    bundle(report, "7", HEAD, tmp_path / "pr-report", base_sha=BASE)
    return tmp_path / "pr-report"


def test_bundle_round_trip_keeps_report_and_pr(bundled: Path, report: Path) -> None:
    found = validate_bundle(bundled, expected_head_sha=HEAD)
    assert (found.pr_number, found.head_sha, found.base_sha) == (7, HEAD, BASE)
    assert found.report == DATA
    assert sorted(p.name for p in bundled.iterdir()) == ["pr.json", "report.json"]


def test_bundle_refuses_report_data_the_comment_side_would_refuse(
    tmp_path: Path, report: Path
) -> None:
    report.write_text(json.dumps({"gate": {"accepted": "yes"}}))
    with pytest.raises(UserError, match=r"gate\.accepted"):
        bundle(report, 7, HEAD, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bundle_refuses_a_markdown_report(tmp_path: Path) -> None:
    markdown = tmp_path / "report.md"
    markdown.write_text("## Model report\n")
    with pytest.raises(UserError, match="not valid JSON"):
        bundle(markdown, 7, HEAD, tmp_path / "out")


def test_bundle_takes_png_images_and_leaves_out_impostors(tmp_path: Path, report: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "loss curve.png").write_bytes(PNG)
    (plots / "fake.png").write_bytes(b"<svg/>")
    found = bundle(report, 3, HEAD, tmp_path / "out", images_from=plots)
    assert [p.name for p in found.images] == ["loss_curve.png"]


def test_bundle_refuses_a_bad_pr_number(tmp_path: Path, report: Path) -> None:
    with pytest.raises(UserError, match="not a positive integer"):
        bundle(report, "7; rm -rf /", HEAD, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _meta(directory: Path, **changes: object) -> None:
    meta = json.loads((directory / "pr.json").read_text())
    meta.update(changes)
    (directory / "pr.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("7", "not a positive integer"),
        (7.0, "not a positive integer"),
        (True, "positive"),
        (-1, "positive integer"),
        (0, "positive integer"),
        (None, "positive integer"),
    ],
)
def test_pr_number_must_be_a_json_integer(bundled: Path, number: object, message: str) -> None:
    _meta(bundled, pr_number=number)
    with pytest.raises(UserError, match=message):
        validate_bundle(bundled)


def test_unexpected_file_is_refused(bundled: Path) -> None:
    (bundled / "run.sh").write_text("echo pwned\n")
    with pytest.raises(UserError, match=r"unexpected file 'run\.sh'"):
        validate_bundle(bundled)


def test_unexpected_folder_is_refused(bundled: Path) -> None:
    (bundled / ".github").mkdir()
    with pytest.raises(UserError, match=r"unexpected folder '\.github'"):
        validate_bundle(bundled)


def test_symlink_is_refused(bundled: Path) -> None:
    (bundled / "images").mkdir()
    os.symlink("/etc/passwd", bundled / "images" / "x.png")
    with pytest.raises(UserError, match="not a regular file"):
        validate_bundle(bundled)


def _sized(size: int) -> str:
    """Valid report data of exactly `size` bytes (a padded head_ref)."""
    text = json.dumps({"head_ref": ""})
    return json.dumps({"head_ref": "x" * (size - len(text))})


@pytest.mark.parametrize(
    ("size", "ok"), [(artifact.MAX_REPORT_BYTES, True), (artifact.MAX_REPORT_BYTES + 1, False)]
)
def test_report_data_size_limit(bundled: Path, size: int, ok: bool) -> None:
    (bundled / "report.json").write_text(_sized(size))
    assert (bundled / "report.json").stat().st_size == size
    if ok:
        assert validate_bundle(bundled).report.head_ref.startswith("x")
    else:
        with pytest.raises(UserError, match="too big"):
            validate_bundle(bundled)


def test_empty_report_data_is_refused(bundled: Path) -> None:
    (bundled / "report.json").write_text("")
    with pytest.raises(UserError, match="not valid JSON"):
        validate_bundle(bundled)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "holds no PR report data"),
        ({"gate": {"accepted": "yes"}}, "gate.accepted"),
        ({"curves_pr": {"loss": [[0, "x"]]}}, "curves_pr.loss.0.1"),
        ({"metrics_diff": {"m.json": {"acc": 0.9}}}, "metrics_diff.m.json.acc"),
        ({"confusion_pr": [["1"]]}, "confusion_pr.0"),
    ],
)
def test_report_data_against_the_schema(bundled: Path, data: object, message: str) -> None:
    (bundled / "report.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=re.escape(message)):
        validate_bundle(bundled)


def test_report_data_not_utf8_is_refused(bundled: Path) -> None:
    (bundled / "report.json").write_bytes(b'{"head_ref": "\xff"}')
    with pytest.raises(UserError, match="not UTF-8"):
        validate_bundle(bundled)


def test_a_forged_key_cannot_become_a_workflow_command(bundled: Path) -> None:
    """A key with a newline and `::warning::` comes out escaped, on one line."""
    _meta(bundled, **{"x\n::warning::forged": 1})
    with pytest.raises(UserError) as caught:
        validate_bundle(bundled)
    assert "unexpected keys: x%0A:%3Awarning:%3Aforged" in caught.value.message
    assert "\n" not in caught.value.message and "::" not in caught.value.message


def test_a_forged_report_key_cannot_become_a_workflow_command(bundled: Path) -> None:
    forged = {"metrics_diff": {"m.json": {"acc\n::error::pwned": "not an object"}}}
    (bundled / "report.json").write_text(json.dumps(forged))
    with pytest.raises(UserError) as caught:
        validate_bundle(bundled)
    assert "acc%0A:%3Aerror:%3Apwned" in caught.value.message
    assert "\n" not in caught.value.message and "::" not in caught.value.message


def test_image_that_is_not_png_is_refused(bundled: Path) -> None:
    (bundled / "images").mkdir()
    (bundled / "images" / "plot.png").write_bytes(b"GIF89a")
    with pytest.raises(UserError, match="not a PNG"):
        validate_bundle(bundled)


def test_unknown_meta_keys_are_refused(bundled: Path) -> None:
    _meta(bundled, comment_on="12")
    with pytest.raises(UserError, match="unexpected keys: comment_on"):
        validate_bundle(bundled)


def test_report_for_another_commit_is_refused(bundled: Path) -> None:
    with pytest.raises(UserError, match=f"for commit {HEAD}"):
        validate_bundle(bundled, expected_head_sha="c" * 40)


def test_missing_artifact_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(NoArtifact, match="no report artifact"):
        validate_bundle(tmp_path / "absent")


def test_non_finite_values_survive_the_artifact(tmp_path: Path) -> None:
    """NaN and infinite metrics and curve points reach the comment side as such, not as null."""
    data = ReportData(
        metrics_diff={
            "m.json": {"loss": {"old": 0.5, "new": float("nan")}, "x": {"new": -math.inf}}
        },
        curves_pr={"eval/loss": [(0.0, 1.0), (1.0, float("nan"))]},
    )
    path = tmp_path / "report.json"
    write_json(path, data.to_json())
    found = bundle(path, 7, HEAD, tmp_path / "out").report
    assert math.isnan(found.metrics_diff["m.json"]["loss"]["new"])
    assert found.metrics_diff["m.json"]["x"]["new"] == -math.inf
    assert math.isnan(found.curves_pr["eval/loss"][1][1])
