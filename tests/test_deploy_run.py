"""`mlops deploy kubeconfig`: the environment's cluster credentials become a private file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlops_template.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KUBE_CONFIG", "EKS_CLUSTER", "DEPLOY_ROLE_ARN", "GITHUB_ACTIONS", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    env_file = tmp_path / "github_env"
    env_file.write_text("")
    monkeypatch.setenv("GITHUB_ENV", str(env_file))
    return tmp_path


def test_the_secret_becomes_a_file_only_the_runner_reads(runner: Path, monkeypatch) -> None:
    monkeypatch.setenv("KUBE_CONFIG", "apiVersion: v1\nkind: Config\n")
    assert main(["deploy", "kubeconfig"]) == 0
    target = runner / "kubeconfig"
    assert target.read_text() == "apiVersion: v1\nkind: Config\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (runner / "github_env").read_text() == f"KUBECONFIG={target}\n"


@pytest.mark.parametrize("env", [{}, {"KUBE_CONFIG": "  \n"}, {"EKS_CLUSTER": "prod-cluster"}])
def test_no_credentials_is_one_message_naming_both_ways(runner, monkeypatch, capsys, env) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["deploy", "kubeconfig"]) == 2
    err = capsys.readouterr().err
    assert "error: no Kubernetes credentials in this environment" in err
    assert "KUBE_CONFIG" in err and "EKS_CLUSTER and DEPLOY_ROLE_ARN" in err
    assert not (runner / "kubeconfig").exists()
    assert (runner / "github_env").read_text() == ""
