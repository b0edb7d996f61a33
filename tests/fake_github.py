"""A fake GitHub REST API on 127.0.0.1 for the comment tests: a real HTTP server, in a thread.

GitHub's API cannot exist here, so this stands in for the few endpoints the comment workflow
calls, behaving as GitHub does where it matters: comments are listed oldest first, in pages
(`page_size` caps `per_page`, so a few comments already span several pages) linked by
absolute `Link: <...>; rel="next"` URLs; a comment created with the token is authored by
`github-actions[bot]` (type Bot); a missing token is a 401. Every request is recorded (method,
path with query, whether the token came, JSON body) so a test asserts on exactly what was sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT = {"login": "github-actions[bot]", "type": "Bot"}
TOKEN = "ghs_test_token_not_real"


def user(login: str) -> dict[str, str]:
    return {"login": login, "type": "User"}


@dataclass
class FakeGitHub:
    """The state behind the server: PR heads, comments, and the requests seen."""

    repo: str = "acme/digits"
    token: str = TOKEN
    page_size: int = 2
    heads: dict[int, str] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _next_id: int = 1000

    def add_comment(self, pr: int, body: str, author: dict[str, str]) -> dict[str, Any]:
        self._next_id += 1
        comment = {
            "id": self._next_id,
            "user": dict(author),
            "body": body,
            "html_url": f"https://github.com/{self.repo}/pull/{pr}#issuecomment-{self._next_id}",
        }
        self.comments.setdefault(pr, []).append(comment)
        return comment

    def calls(self) -> list[tuple[str, str]]:
        """(method, path with query) of every request, in order."""
        return [(r["method"], r["path"]) for r in self.requests]

    # ----------------------------------------------------------------------- routing

    def answer(self, method: str, target: str, authed: bool, body: Any) -> tuple[int, Any, dict]:
        parts = urlsplit(target)
        prefix = f"/repos/{self.repo}/"
        if not authed:
            return 401, {"message": "Bad credentials"}, {}
        if not parts.path.startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        rest = parts.path[len(prefix) :]
        if method == "GET" and (m := re.fullmatch(r"pulls/(\d+)", rest)):
            number = int(m.group(1))
            if number not in self.heads:
                return 404, {"message": "Not Found"}, {}
            return 200, {"number": number, "head": {"sha": self.heads[number]}}, {}
        if (m := re.fullmatch(r"issues/(\d+)/comments", rest)) and method == "GET":
            return self._list(int(m.group(1)), parse_qs(parts.query), parts.path)
        if m and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "Validation Failed"}, {}
            return 201, self.add_comment(int(m.group(1)), body["body"], BOT), {}
        if (m := re.fullmatch(r"issues/comments/(\d+)", rest)) and method == "PATCH":
            for comment in (c for cs in self.comments.values() for c in cs):
                if comment["id"] == int(m.group(1)):
                    if comment["user"] != BOT:  # GitHub: a token edits only its own
                        return 403, {"message": "Resource not accessible by integration"}, {}
                    comment["body"] = body["body"]
                    return 200, comment, {}
            return 404, {"message": "Not Found"}, {}
        return 404, {"message": "Not Found"}, {}

    def _list(self, pr: int, query: dict[str, list[str]], path: str) -> tuple[int, Any, dict]:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        items = self.comments.get(pr, [])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return 200, chunk, headers


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            authed = self.headers.get("Authorization") == f"Bearer {state.token}"
            state.requests.append(
                {"method": self.command, "path": self.path, "authed": authed, "body": body}
            )
            status, answer, headers = state.answer(self.command, self.path, authed, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(state: FakeGitHub | None = None) -> Iterator[FakeGitHub]:
    """Run the fake API on a free port of 127.0.0.1; `state.url` is its root."""
    state = state or FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
