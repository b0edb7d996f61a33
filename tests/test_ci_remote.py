"""The main workflow's DVC remote access: a notice without a remote, OIDC for an S3 remote."""

from __future__ import annotations

import json
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from mlops_template.ci import remote
from mlops_template.cli import main
from mlops_template.errors import UserError


class _TokenEndpoint(BaseHTTPRequestHandler):
    """The Actions runtime's OIDC endpoint, on 127.0.0.1: records the request, returns a JWT."""

    requests: ClassVar[list[dict]] = []

    def do_GET(self) -> None:
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
        body = json.dumps({"value": "header.payload.signature"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def oidc(monkeypatch: pytest.MonkeyPatch):
    server = HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    _TokenEndpoint.requests = []
    url = f"http://127.0.0.1:{server.server_port}/token?api-version=2.0"
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", url)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-bearer")
    yield _TokenEndpoint.requests
    server.shutdown()


@pytest.fixture
def dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    return tmp_path


def test_request_asks_for_the_sts_audience_with_the_runtime_token(oidc) -> None:
    assert remote.request_oidc_token() == "header.payload.signature"
    assert oidc == [
        {
            "path": "/token?api-version=2.0&audience=sts.amazonaws.com",
            "auth": "bearer runtime-bearer",
        }
    ]


def test_no_id_token_permission_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    with pytest.raises(UserError, match="no OIDC token") as caught:
        remote.request_oidc_token()
    assert "id-token: write" in caught.value.hint


@pytest.mark.slow  # real `dvc` subprocesses: seconds each
def test_no_remote_is_a_notice_and_nothing_else(dvc_repo: Path, capsys) -> None:
    assert main(["ci", "credentials", "--token-dir", "x"]) == 0
    assert main(["ci", "push"]) == 0
    out = capsys.readouterr().out
    assert out.count("::notice title=DVC remote::") == 2
    assert "Skipping dvc push" in out
    assert not (dvc_repo / "x").exists()


@pytest.mark.slow
def test_s3_remote_with_a_role_gets_a_private_token_file(
    dvc_repo: Path, oidc, monkeypatch, tmp_path: Path
) -> None:
    subprocess.run(["dvc", "remote", "add", "-d", "store", "s3://bucket/dvc"], check=True)
    env_file = tmp_path / "github_env"
    monkeypatch.setenv("GITHUB_ENV", str(env_file))
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "runner"))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/dvc")
    assert main(["ci", "credentials", "--token-dir", "unused"]) == 0
    token = tmp_path / "runner" / remote.TOKEN_FILE_NAME
    assert token.read_text() == "header.payload.signature"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    exported = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert exported["AWS_WEB_IDENTITY_TOKEN_FILE"] == str(token)
    assert exported["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/dvc"
    assert len(oidc) == 1
