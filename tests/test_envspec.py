"""Which extras `make env` / the setup action install: read from the params file given (never
the repository's params.yaml, which a fork edits), decided before anything is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from project import REPO

from mlops_template import envspec

SCRIPT = Path(envspec.__file__)


def params_file(tmp_path: Path, family: str, comment: str = "") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(
        "project:\n  name: x\n"
        "ci:\n  family: decoy            # not the train block\n"
        f"train:{comment}\n  seed: 1\n  family: {family}   # a comment\n  {family}: {{}}\n"
        "gate:\n  family: decoy\n"
    )
    return path


def families_with_extras() -> list[str]:
    return sorted(set(envspec.family_names()) & envspec.extras())


def test_the_extras_are_named_after_families() -> None:
    """Every family module is listed; the heavy ones have an extra of their own."""
    assert set(envspec.family_names()) >= {"sklearn"}
    assert families_with_extras(), "at least one family needs packages of its own"
    assert "s3" not in envspec.family_names()


@pytest.mark.parametrize("family", envspec.family_names())
def test_each_family_installs_its_own_extra_only(tmp_path: Path, family: str) -> None:
    flags = envspec.sync_flags(params_file(tmp_path, family))
    expected = f"--extra {family}" if family in envspec.extras() else ""
    assert flags == expected


def test_the_family_is_read_from_the_train_block_only(tmp_path: Path) -> None:
    path = params_file(tmp_path, "sklearn", comment="   # the model")
    assert envspec.family(path.read_text()) == "sklearn"
    quoted = path.read_text().replace("family: sklearn", 'family: "sklearn"')
    assert envspec.family(quoted) == "sklearn"


def test_no_train_family_is_a_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no train\.family"):
        envspec.family("train:\n  seed: 1\nci:\n  family: x\n")


def test_an_unknown_family_is_a_message_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        envspec.sync_flags(params_file(tmp_path, "torch"))
    message = str(exited.value.code)
    assert message.startswith("error: train.family 'torch'")
    assert "known: " + ", ".join(envspec.family_names()) in message
    assert "fix: " in message and "custom/families/torch.py" in message


def test_all_lists_every_family_with_an_extra() -> None:
    flags = envspec.sync_flags(all_families=True).split()
    assert flags[1::2] == [*families_with_extras(), *envspec.TOOL_EXTRAS]
    assert set(flags[::2]) == {"--extra"}


def test_runs_as_a_plain_file_with_the_standard_library_only(tmp_path: Path) -> None:
    params = params_file(tmp_path, "sklearn")
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(params)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == envspec.sync_flags(params)
    everything = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), "--all"], capture_output=True, text=True
    )
    assert everything.stdout.split()[1::2] == [*families_with_extras(), *envspec.TOOL_EXTRAS]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_env_with_an_unknown_family_installs_nothing(tmp_path: Path) -> None:
    """`make run` starts with `make env`: a typo in train.family must stop it before uv runs."""
    for rel in ("Makefile", "pyproject.toml", "src/mlops_template/envspec.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tmp_path / rel)
    shutil.copytree(
        REPO / "src/mlops_template/custom/families",
        tmp_path / "src/mlops_template/custom/families",
    )
    params_file(tmp_path, "torch")
    calls = tmp_path / "uv-calls"
    fake_uv = tmp_path / "bin/uv"
    fake_uv.parent.mkdir()
    fake_uv.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake_uv.chmod(0o755)
    done = subprocess.run(
        ["make", "env", f"UV={fake_uv}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{fake_uv.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert "train.family 'torch'" in done.stderr
    assert done.returncode != 0
    assert not calls.exists(), f"uv ran: {calls.read_text()}"


@pytest.mark.parametrize(
    ("train_lines", "expected"),
    [
        ("  compute: ray\n", True),
        ("  compute: 'ray'   # the cluster\n", True),
        ("  compute: {backend: ray, num_workers: 2}\n", True),
        ("  compute:\n    backend: ray\n    num_workers: 2\n", True),
        ("  compute: local\n", False),
        ("  compute: raylet\n", False),
        ("", False),
    ],
)
def test_training_on_ray_adds_the_ray_extra(tmp_path: Path, train_lines: str, expected: bool):
    path = params_file(tmp_path, "sklearn")
    text = path.read_text().replace("  seed: 1\n", "  seed: 1\n" + train_lines)
    path.write_text(text + "sweep:\n  compute: ray   # another block: not train's\n")
    assert envspec.trains_on_ray(path.read_text()) is expected
    flags = envspec.sync_flags(path).split()
    assert ("ray" in flags) is (expected and "ray" in envspec.extras())
