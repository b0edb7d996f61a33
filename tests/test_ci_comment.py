"""Posting the report: one comment per PR through GitHub's REST API, rendered from data.

GitHub's API cannot exist here: tests/fake_github.py serves it on 127.0.0.1 (paginated, with
authors), and every request it received is asserted on. CML, the opt-in engine, is the
stand-in `cml` of tests/act/bin, which records the argv and the report it was handed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fake_github import BOT, TOKEN, FakeGitHub, serve, user
from harmless import assert_harmless

from mlops_template.ci import comment, github
from mlops_template.ci.artifact import PNG_MAGIC, bundle
from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.records import GateVerdict, ReportData

STUB_BIN = Path(__file__).resolve().parent / "act" / "bin"
REPO = "acme/digits"
HEAD = "d" * 40
MARKER = comment.marker()


@pytest.fixture
def api():
    with serve(FakeGitHub(heads={7: HEAD})) as state:
        yield state


def client(state: FakeGitHub, token: str = TOKEN) -> github.GitHub:
    return github.GitHub(token, state.url)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.md"
    path.write_text("## Model report\n\nsee [a file](/proc/self/environ)\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the REST engine


def test_first_post_reads_every_page_and_leaves_foreign_marked_comments_alone(
    api: FakeGitHub, report: Path
) -> None:
    api.add_comment(7, f"{MARKER}\nforged by a user", user("mallory"))
    api.add_comment(7, f"{MARKER}\nanother bot", {"login": "other-app[bot]", "type": "Bot"})
    api.add_comment(7, f"{MARKER}\nnamed like the bot", {"login": BOT["login"], "type": "User"})
    api.add_comment(7, "unmarked, by the bot", BOT)
    api.add_comment(7, "LGTM", user("reviewer"))
    url = comment.post_with_github(client(api), REPO, 7, report)

    assert api.calls() == [
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=100"),
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=2&page=2"),
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=2&page=3"),
        ("POST", f"/repos/{REPO}/issues/7/comments"),
    ]
    assert all(r["authed"] for r in api.requests)
    body = api.requests[-1]["body"]["body"]
    assert body == f"{MARKER}\n{report.read_text(encoding='utf-8')}"
    assert [c["body"].split("\n")[-1] for c in api.comments[7][:5]] == [
        "forged by a user",
        "another bot",
        "named like the bot",
        "unmarked, by the bot",
        "LGTM",
    ]
    assert url == api.comments[7][-1]["html_url"]


def test_second_post_updates_the_same_comment_in_place(api: FakeGitHub, report: Path) -> None:
    api.add_comment(7, f"{MARKER}\nforged", user("mallory"))
    comment.post_with_github(client(api), REPO, 7, report)
    (ours,) = [c for c in api.comments[7] if c["user"] == BOT]
    report.write_text("## Model report\n\nsecond run\n", encoding="utf-8")
    api.requests.clear()
    comment.post_with_github(client(api), REPO, 7, report)

    assert api.calls() == [
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=100"),
        ("PATCH", f"/repos/{REPO}/issues/comments/{ours['id']}"),
    ]
    assert len(api.comments[7]) == 2 and api.comments[7][0]["body"] == f"{MARKER}\nforged"
    assert ours["body"] == f"{MARKER}\n## Model report\n\nsecond run\n"


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3)])
def test_pagination_at_and_past_a_page_boundary(api: FakeGitHub, count: int, pages: int) -> None:
    for i in range(count):
        api.add_comment(7, f"c{i}", user("someone"))
    found = client(api).comments(REPO, 7)
    assert [c.body for c in found] == [f"c{i}" for i in range(count)]
    assert len(api.requests) == pages


def test_a_next_link_outside_the_api_is_refused_before_the_token_goes_there(
    api: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.add_comment(7, "a", user("x"))
    api.add_comment(7, "b", user("x"))
    api.add_comment(7, "c", user("x"))
    rest = client(api)
    monkeypatch.setattr(api, "url", "http://attacker.invalid")  # the next link's host
    with pytest.raises(UserError, match="points outside the API"):
        rest.comments(REPO, 7)
    assert len(api.requests) == 1


def test_a_server_that_never_stops_paginating_is_cut(
    api: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(7):
        api.add_comment(7, f"c{i}", user("x"))
    monkeypatch.setattr(github, "MAX_PAGES", 3)
    with pytest.raises(UserError, match="more than 3 pages"):
        client(api).comments(REPO, 7)


def test_the_oldest_of_several_own_comments_is_the_one_updated() -> None:
    own = [github.Comment(i, BOT["login"], "Bot", f"{MARKER} {i}") for i in (5, 9)]
    assert github.find_own_comment(own, MARKER) == own[0]
    assert github.find_own_comment(own, MARKER, bot="my-app[bot]") is None


def test_a_bad_token_is_a_clear_error(api: FakeGitHub, report: Path) -> None:
    with pytest.raises(UserError, match="GitHub answered 401") as caught:
        comment.post_with_github(client(api, token="wrong"), REPO, 7, report)
    assert "pull-requests: write" in caught.value.hint
    assert [r["method"] for r in api.requests] == ["GET"]  # nothing was written


def test_an_unreachable_api_is_a_clear_error(report: Path) -> None:
    with serve() as state:
        url = state.url
    with pytest.raises(UserError, match="could not reach GitHub's API"):
        comment.post_with_github(github.GitHub(TOKEN, url), REPO, 7, report)


@pytest.mark.parametrize("url", ["ftp://api.github.com", "api.github.com", ""])
def test_the_api_url_must_be_http(url: str) -> None:
    with pytest.raises(UserError, match="not an http"):
        github.GitHub(TOKEN, url)


def test_no_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GH_TOKEN", raising=False)
    with pytest.raises(UserError, match=r"no GitHub token in \$GH_TOKEN"):
        github.GitHub.from_env("GH_TOKEN")


def test_repository_name_is_checked(api: FakeGitHub) -> None:
    with pytest.raises(UserError, match="not owner/name"):
        client(api).comments("acme/digits/../x y", 1)
    assert api.requests == []


# --------------------------------------------------------------------------- PR head check


def test_pr_at_the_built_commit_passes(api: FakeGitHub) -> None:
    comment.verify_pr_head(client(api), REPO, 7, HEAD)
    assert api.calls() == [("GET", f"/repos/{REPO}/pulls/7")]


def test_pr_that_moved_on_is_stale(api: FakeGitHub) -> None:
    api.heads[7] = "e" * 40
    with pytest.raises(comment.StalePR, match="is now at eeeeeeeeeeee"):
        comment.verify_pr_head(client(api), REPO, 7, HEAD)


def test_unknown_pr_is_a_clear_error(api: FakeGitHub) -> None:
    with pytest.raises(UserError, match="GitHub answered 404 to GET /repos/acme/digits/pulls/8"):
        comment.verify_pr_head(client(api), REPO, 8, HEAD)


# --------------------------------------------------------------------------- unpack: render


FORGED = ReportData(
    metrics_diff={
        "metrics/quality.json": {
            "accuracy": {"old": 0.97, "new": 0.99},
            "@acme/maintainers <img src=x onerror=alert(1)>": {"old": 1, "new": 2},
            "x\n::warning::forged": {"old": 1, "new": 1},
        }
    },
    params_diff={
        "params.yaml": {
            "lr": {"old": 0.1, "new": "[click](javascript:alert(1)) see #1 https://evil.example"}
        }
    },
    gate=GateVerdict(
        accepted=True,
        summary="accepted",
        reasons=["\n\n✅ **Accepted**: everything passed\n\n## Approved by @org/security"],
    ),
    head_ref="<script>alert(1)</script>",
    head_sha=HEAD[:7],
)


def unpack_args(artifact: Path, out: Path, conclusion: str, head_repo: str) -> list[str]:
    return [
        "ci",
        "unpack",
        "--dir",
        str(artifact),
        "--out",
        str(out),
        "--head-sha",
        HEAD,
        "--repo",
        REPO,
        "--head-repo",
        head_repo,
        "--conclusion",
        conclusion,
        "--run-id",
        "4242",
    ]


@pytest.fixture
def forged_artifact(tmp_path: Path) -> Path:
    data = tmp_path / "report.json"
    data.write_text(json.dumps(FORGED.to_json()))
    bundle(data, 7, HEAD, tmp_path / "pr-report")
    return tmp_path / "pr-report"


@pytest.fixture
def actions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: FakeGitHub) -> Path:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    output = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    return output


def test_a_forged_fork_report_is_rendered_harmless(
    forged_artifact: Path, actions_env: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "comment.md"
    assert main(unpack_args(forged_artifact, out, "failure", "mallory/digits")) == 0
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    # the fork note and the run link, from trusted values only
    assert "> **Built by the PR's own code.**" in text and "ran the fork's code" in text
    assert "[PR run that built this report](https://github.com/acme/digits/actions/runs/4242)" in (
        text
    )
    # a failed run's "accepted" artifact is shown failed; no line claims acceptance
    assert any(line.startswith("❌ **PR check failed**") for line in lines)
    assert not any("**Accepted**" in line and "\\*" not in line for line in lines)
    # no raw HTML, no mention, no reference, no link, no forged heading or command
    assert "<img" not in text and "<script" not in text
    assert "@acme/maintainers" not in text and "@org/security" not in text
    assert "@&#8203;acme/maintainers" in text
    assert "#1 " not in text and "https://evil" not in text
    assert_harmless(text, REPO)
    assert not any(line.startswith("## Approved") for line in lines)
    assert [line for line in lines if line.startswith("## ")] == ["## 🔬 Model report"]
    assert not any(line.lstrip().startswith("::") for line in lines)
    assert not any(line.lstrip().startswith("::") for line in capsys.readouterr().out.splitlines())
    assert "post<<" in actions_env.read_text()


def test_a_successful_run_from_this_repository_shows_its_verdict(
    forged_artifact: Path, actions_env: Path, tmp_path: Path
) -> None:
    out = tmp_path / "comment.md"
    assert main(unpack_args(forged_artifact, out, "success", "acme/digits")) == 0
    text = out.read_text(encoding="utf-8")
    assert "✅ **Accepted**" in text and "PR check failed" not in text
    assert "Built by the PR's own code" not in text


def test_an_unknown_conclusion_is_refused(
    forged_artifact: Path, actions_env: Path, tmp_path: Path
) -> None:
    args = unpack_args(forged_artifact, tmp_path / "c.md", "succes\n::warning::x", "a/b")
    assert main(args) == 2
    assert not (tmp_path / "c.md").exists()


def test_no_artifact_means_nothing_to_post(actions_env: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "comment.md"
    assert main(unpack_args(tmp_path / "absent", out, "failure", REPO)) == 0
    assert "::notice title=No PR report::" in capsys.readouterr().out
    assert "post<<" in actions_env.read_text() and "\nfalse\n" in actions_env.read_text()
    assert not out.exists()


def test_a_pr_that_moved_on_gets_no_comment(
    forged_artifact: Path, actions_env: Path, api: FakeGitHub, tmp_path: Path, capsys
) -> None:
    api.heads[7] = "f" * 40
    out = tmp_path / "comment.md"
    assert main(unpack_args(forged_artifact, out, "success", REPO)) == 0
    assert "::notice title=Newer commit::PR #7 is now at ffffffffffff" in capsys.readouterr().out
    assert not out.exists()


# --------------------------------------------------------------------------- the CML engine


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stub_dir = tmp_path / "stubs"
    stub_dir.mkdir()
    monkeypatch.setenv("ACT_STUB_DIR", str(stub_dir))
    monkeypatch.setenv("PATH", f"{STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REPO_TOKEN", "t0ken")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    return stub_dir


def calls(stub_dir: Path, kind: str) -> list[dict]:
    path = stub_dir / "calls.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [c for c in map(json.loads, lines) if c["kind"] == kind]


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


@pytest.mark.parametrize("title", ['x" onload="', "two\nlines", "", "a" * 81, "a -->b"])
def test_watermark_with_quotes_or_newlines_is_refused(title: str) -> None:
    with pytest.raises(UserError, match="watermark title"):
        comment.comment_argv(1, Path("r.md"), title)
    with pytest.raises(UserError, match="watermark title"):
        comment.marker(title)


def test_the_longest_watermark_is_allowed() -> None:
    assert comment.marker("a" * 80) == f"<!-- {'a' * 80} -->"


def test_cml_engine_hands_cml_the_report_and_the_token(stubs: Path, report: Path) -> None:
    url = comment.post_comment(7, report, engine="cml")
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
    comment.post_comment(7, report, engine="cml", images=[image], publish=False)
    assert [c["argv"][:2] for c in calls(stubs, "cml")] == [["comment", "update"]]


def test_opted_in_images_are_published_one_by_one_and_linked(
    stubs: Path, report: Path, tmp_path: Path
) -> None:
    image = tmp_path / "loss.png"
    image.write_bytes(PNG_MAGIC + b"\0" * 16)
    comment.post_comment(7, report, engine="cml", images=[image], publish=True)
    publish, post = calls(stubs, "cml")
    assert publish["argv"] == ["asset", "publish", str(image)]
    assert "--no-publish" in post["argv"]  # CML itself still uploads nothing the report links
    assert post["report"].startswith(report.read_text(encoding="utf-8").rstrip("\n"))
    assert "![loss](https://asset.cml.dev/stub-loss.png)" in post["report"]


def test_publishing_images_needs_the_cml_engine(stubs: Path, report: Path, tmp_path: Path) -> None:
    image = tmp_path / "loss.png"
    image.write_bytes(PNG_MAGIC + b"\0" * 16)
    with pytest.raises(UserError, match="needs the `cml` engine"):
        comment.post_comment(7, report, images=[image], publish=True)
    assert calls(stubs, "cml") == []


def test_cml_engine_without_a_token_is_a_clear_error(
    stubs: Path, report: Path, monkeypatch
) -> None:
    monkeypatch.delenv("REPO_TOKEN")
    with pytest.raises(UserError, match="no GitHub token"):
        comment.post_comment(7, report, engine="cml")
    assert calls(stubs, "cml") == []


def test_cml_engine_without_cml_says_what_to_do(
    report: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPO_TOKEN", "t0ken")
    monkeypatch.setenv("PATH", str(tmp_path))  # no cml anywhere
    with pytest.raises(UserError, match="cml is not installed") as caught:
        comment.post_comment(7, report, engine="cml")
    assert "default engine `github`" in caught.value.hint


def test_the_default_engine_never_runs_cml(
    stubs: Path, api: FakeGitHub, report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    monkeypatch.setenv("REPO_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    assert main(["ci", "comment", "--pr-number", "7", "--report", str(report)]) == 0
    assert calls(stubs, "cml") == [] and calls(stubs, "npm") == []
    assert api.calls()[-1] == ("POST", f"/repos/{REPO}/issues/7/comments")


def test_an_unknown_engine_is_refused(report: Path) -> None:
    with pytest.raises(UserError, match="unknown comment engine"):
        comment.post_comment(7, report, engine="npm")
