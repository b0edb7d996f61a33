"""The PR report artifact: what the PR workflow bundles, and what the comment workflow accepts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_template.ci import artifact
from mlops_template.ci.artifact import NoArtifact, bundle, validate_bundle
from mlops_template.errors import UserError

HEAD = "a" * 40
BASE = "b" * 40
PNG = artifact.PNG_MAGIC + b"\x00" * 64


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.md"
    path.write_text("## Model report\n\n✅ **Accepted**\n", encoding="utf-8")
    return path


@pytest.fixture
def bundled(tmp_path: Path, report: Path) -> Path:
    bundle(report, "7", HEAD, tmp_path / "pr-report", base_sha=BASE)
    return tmp_path / "pr-report"


def test_bundle_round_trip_keeps_report_and_pr(bundled: Path, report: Path) -> None:
    found = validate_bundle(bundled, expected_head_sha=HEAD)
    assert (found.pr_number, found.head_sha, found.base_sha) == (7, HEAD, BASE)
    assert found.report.read_text(encoding="utf-8") == report.read_text(encoding="utf-8")
    assert sorted(p.name for p in bundled.iterdir()) == ["pr.json", "report.md"]


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


def test_oversize_report_is_refused(bundled: Path) -> None:
    (bundled / "report.md").write_text("x" * (artifact.MAX_REPORT_BYTES + 1))
    with pytest.raises(UserError, match="too big"):
        validate_bundle(bundled)


def test_report_over_the_comment_limit_is_refused(bundled: Path) -> None:
    (bundled / "report.md").write_text("é" * (artifact.MAX_REPORT_CHARS + 1))
    with pytest.raises(UserError, match="longer than"):
        validate_bundle(bundled)


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
