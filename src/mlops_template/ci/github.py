"""A small client for the few GitHub REST calls the comment workflow makes (stdlib HTTP only).

The comment job holds a write token, so it runs only the project's locked code: no CML, no
npm. It reads the PR (to check its head commit), reads every page of the PR's comments, and
creates or updates the one report comment. Only a comment that the workflow's own bot wrote
AND that carries the marker is ever updated: anyone can paste the marker into a comment, and
that comment is left alone.

The API root comes from $GITHUB_API_URL (set by GitHub; GitHub Enterprise has its own), and
the token is only ever sent to that root: a `Link: next` URL pointing elsewhere is refused.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlops_template.ci import gha
from mlops_template.errors import UserError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_BOT = "github-actions[bot]"  # who GITHUB_TOKEN writes as
PER_PAGE = 100
MAX_PAGES = 100  # 10,000 comments: far beyond any PR, a guard against a looping server
TIMEOUT_S = 30
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_TOKEN_FIX = "pass the workflow's token (the action's github-token input, default github.token)"


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    author_type: str
    body: str


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str


def check_repo(repo: str) -> str:
    if not isinstance(repo, str) or not _REPO.match(repo):
        raise UserError(f"repository {repo!r} is not owner/name", "pass $GITHUB_REPOSITORY")
    return repo


class GitHub:
    """GitHub's REST API at `api_url` with `token`; errors become UserErrors with a fix."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        if not token:
            raise UserError("no GitHub token given", _TOKEN_FIX)
        parsed = urllib.parse.urlsplit(api_url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise UserError(
                f"GitHub API URL {api_url!r} is not an http(s) URL",
                "leave $GITHUB_API_URL as GitHub sets it",
            )
        self.api_url = api_url.rstrip("/")
        self._token = token

    @classmethod
    def from_env(cls, token_var: str = "GH_TOKEN") -> GitHub:
        token = os.environ.get(token_var, "")
        if not token:
            raise UserError(f"no GitHub token in ${token_var}", _TOKEN_FIX)
        return cls(token, os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL)

    # ----------------------------------------------------------------------- transport

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            if not path_or_url.startswith(self.api_url + "/"):
                raise UserError(
                    f"GitHub's answer points outside the API ({path_or_url[:100]})",
                    "rerun the workflow; the token is only sent to $GITHUB_API_URL",
                )
            return path_or_url
        return f"{self.api_url}/{path_or_url.lstrip('/')}"

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """(parsed JSON answer, response headers); any HTTP or network failure -> UserError."""
        url = self._url(path)
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "mlops-template")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as answer:
                raw = answer.read()
                headers = {k.lower(): v for k, v in answer.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = gha.escape(_message(exc.read()))
            raise UserError(
                f"GitHub answered {exc.code} to {method} {_path_of(url)}: {detail}",
                "the comment job needs `pull-requests: write` and the PR must exist"
                if exc.code in (401, 403, 404)
                else "rerun the workflow (GitHub may be having trouble)",
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(
                f"could not reach GitHub's API at {self.api_url}: {reason}",
                "rerun the workflow; check $GITHUB_API_URL",
            ) from None
        try:
            return (json.loads(raw) if raw else None), headers
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(
                f"GitHub's answer to {method} {_path_of(url)} is not JSON", "rerun the workflow"
            ) from None

    def pages(self, path: str) -> Iterator[Any]:
        """Every item of a paginated list, following `Link: <...>; rel="next"`."""
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            answer, headers = self.request("GET", url)
            if not isinstance(answer, list):
                raise UserError(
                    f"GitHub's answer to GET {_path_of(self._url(url))} is not a list",
                    "rerun the workflow",
                )
            yield from answer
            found = _NEXT.search(headers.get("link", ""))
            url = found.group(1) if found else None
        raise UserError(f"more than {MAX_PAGES} pages at {path}", "rerun the workflow")

    # ----------------------------------------------------------------------- calls

    def pr_head_sha(self, repo: str, pr_number: int) -> str:
        answer, _ = self.request("GET", f"repos/{check_repo(repo)}/pulls/{pr_number}")
        try:
            sha = answer["head"]["sha"]
        except (KeyError, TypeError):
            sha = None
        if not isinstance(sha, str):
            raise UserError(
                f"GitHub's answer about PR #{pr_number} has no head sha", "rerun the workflow"
            )
        return sha

    def comments(self, repo: str, pr_number: int) -> list[Comment]:
        found = []
        path = f"repos/{check_repo(repo)}/issues/{pr_number}/comments?per_page={PER_PAGE}"
        for item in self.pages(path):
            user = item.get("user") if isinstance(item, dict) else None
            if not isinstance(user, dict) or not isinstance(item.get("id"), int):
                continue  # a deleted author ("ghost") or a malformed entry: never ours
            found.append(
                Comment(
                    id=item["id"],
                    author=str(user.get("login", "")),
                    author_type=str(user.get("type", "")),
                    body=str(item.get("body") or ""),
                )
            )
        return found

    def upsert_comment(
        self, repo: str, pr_number: int, body: str, marker: str, bot: str = DEFAULT_BOT
    ) -> Posted:
        """Update the bot's own marked comment on the PR, or create it; never anyone else's."""
        if marker not in body:
            raise ValueError("the comment body must carry the marker")
        own = find_own_comment(self.comments(repo, pr_number), marker, bot)
        if own is None:
            answer, _ = self.request(
                "POST", f"repos/{repo}/issues/{pr_number}/comments", {"body": body}
            )
            return Posted("created", _html_url(answer))
        answer, _ = self.request("PATCH", f"repos/{repo}/issues/comments/{own.id}", {"body": body})
        return Posted("updated", _html_url(answer))


def find_own_comment(
    comments: list[Comment], marker: str, bot: str = DEFAULT_BOT
) -> Comment | None:
    """The oldest comment written by `bot` (a Bot account) that carries `marker`, if any."""
    for found in comments:
        if found.author == bot and found.author_type == "Bot" and marker in found.body:
            return found
    return None


def _html_url(answer: Any) -> str:
    url = answer.get("html_url") if isinstance(answer, dict) else None
    return url if isinstance(url, str) else ""


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _message(raw: bytes) -> str:
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "no details"
    message = answer.get("message") if isinstance(answer, dict) else None
    return str(message)[:200] if message else "no details"
