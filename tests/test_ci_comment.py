"""Posting the report: the exact CML command, images only on opt-in, stale runs skipped.

CML and GitHub's API cannot run here: tests/act/bin puts stand-in `cml` and `gh` first on PATH;
they record the argv and the report they were handed (tests/act/stub.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_template.ci import comment
from mlops_template.ci.artifact import PNG_MAGIC
from mlops_template.errors import UserError

STUB_BIN = Path(__file__).resolve().parent / "act" / "bin"
HEAD = "d" * 40


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stub_dir = tmp_path / "stubs"
    stub_dir.mkdir()
    monkeypatch.setenv("ACT_STUB_DIR", str(stub_dir))
    monkeypatch.setenv("PATH", f"{STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REPO_TOKEN", "t0ken")
    monkeypatch.setenv("GH_TOKEN", "t0ken")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    return stub_dir


def calls(stub_dir: Path, kind: str) -> list[dict]:
    path = stub_dir / "calls.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [c for c in map(json.loads, lines) if c["kind"] == kind]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.md"
    path.write_text("## Model report\n\nsee [a file](/proc/self/environ)\n", encoding="utf-8")
    return path


def test_comment_argv_updates_one_watermarked_comment_without_publishing() -> None:
    assert comment.comment_argv(12, Path("r.md")) == [
        "cml",
        "comment",
        "update",
        "--target=pr/12",
        "--watermark-title=mlops-template report",
        "--no-publish",
        "r.md",
    ]


@pytest.mark.parametrize("title", ['x" onload="', "two\nlines", "", "a" * 81])
def test_watermark_with_quotes_or_newlines_is_refused(title: str) -> None:
    with pytest.raises(UserError, match="watermark title"):
        comment.comment_argv(1, Path("r.md"), title)


def test_post_comment_hands_cml_the_report_and_the_token(stubs: Path, report: Path) -> None:
    url = comment.post_comment(7, report)
    (call,) = calls(stubs, "cml")
    assert call["argv"] == comment.comment_argv(7, report)[1:]
    assert call["report"] == report.read_text(encoding="utf-8")
    assert call["env"] == {"repo_token": True, "do_not_track": "1"}
    assert url.endswith("/pull/7#issuecomment-1")


def test_images_are_not_published_unless_opted_in(
    stubs: Path, report: Path, tmp_path: Path
) -> None:
    image = tmp_path / "loss.png"
    image.write_bytes(PNG_MAGIC + b"\0" * 16)
    comment.post_comment(7, report, images=[image], publish=False)
    assert [c["argv"][:2] for c in calls(stubs, "cml")] == [["comment", "update"]]


def test_opted_in_images_are_published_one_by_one_and_linked(
    stubs: Path, report: Path, tmp_path: Path
) -> None:
    image = tmp_path / "loss.png"
    image.write_bytes(PNG_MAGIC + b"\0" * 16)
    comment.post_comment(7, report, images=[image], publish=True)
    publish, post = calls(stubs, "cml")
    assert publish["argv"] == ["asset", "publish", str(image)]
    assert "--no-publish" in post["argv"]  # CML itself still uploads nothing the report links
    assert post["report"].startswith(report.read_text(encoding="utf-8").rstrip("\n"))
    assert "![loss](https://asset.cml.dev/stub-loss.png)" in post["report"]


def test_no_token_is_a_clear_error(stubs: Path, report: Path, monkeypatch) -> None:
    monkeypatch.delenv("REPO_TOKEN")
    with pytest.raises(UserError, match="no GitHub token"):
        comment.post_comment(7, report)
    assert calls(stubs, "cml") == []


def _answer(stub_dir: Path, pr: int, sha: str) -> None:
    (stub_dir / "gh").mkdir(exist_ok=True)
    path = stub_dir / "gh" / f"repos_acme_digits_pulls_{pr}.json"
    path.write_text(json.dumps({"number": pr, "head": {"sha": sha}}))


def test_pr_at_the_built_commit_passes(stubs: Path) -> None:
    _answer(stubs, 7, HEAD)
    comment.verify_pr_head("acme/digits", 7, HEAD)
    assert calls(stubs, "gh") == [
        {"kind": "gh", "argv": ["api", "repos/acme/digits/pulls/7"], "token": True}
    ]


def test_pr_that_moved_on_is_stale(stubs: Path) -> None:
    _answer(stubs, 7, "e" * 40)
    with pytest.raises(comment.StalePR, match="is now at eeeeeeeeeeee"):
        comment.verify_pr_head("acme/digits", 7, HEAD)


def test_unknown_pr_is_a_clear_error(stubs: Path) -> None:
    with pytest.raises(UserError, match="could not read PR #8"):
        comment.verify_pr_head("acme/digits", 8, HEAD)


def test_repository_name_is_checked() -> None:
    with pytest.raises(UserError, match="not owner/name"):
        comment.gh_pr_argv("acme/digits/../x y", 1)
