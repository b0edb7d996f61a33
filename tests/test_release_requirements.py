"""The bento installs exactly the locked, hashed packages its service needs, from a base image
pinned by digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from mlops_template.errors import UserError
from mlops_template.release.build import base_image_problem, with_locked_requirements
from mlops_template.release.requirements import (
    keep_packages,
    lock_closure,
    locked_requirements,
    normalize,
    requirement_name,
)

ROOT = Path(__file__).resolve().parents[1]
LOCK = {
    "package": [
        {
            "name": "service-lib",
            "dependencies": [{"name": "Numpy"}, {"name": "web", "extra": ["io"]}],
        },
        {"name": "numpy"},
        {
            "name": "web",
            "dependencies": [{"name": "h11"}],
            "optional-dependencies": {"io": [{"name": "anyio"}], "cli": [{"name": "rich"}]},
        },
        {"name": "h11"},
        {"name": "anyio", "dependencies": [{"name": "idna"}]},
        {"name": "idna"},
        {"name": "rich"},
        {"name": "pipeline-tool", "dependencies": [{"name": "numpy"}, {"name": "gitpython"}]},
        {"name": "gitpython"},
    ]
}
EXPORT = """\
anyio==4.0 \\
    --hash=sha256:aaaa
h11==0.14 \\
    --hash=sha256:bbbb
    # via web
gitpython==3.1 \\
    --hash=sha256:cccc
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:dddd \\
    --hash=sha256:eeee
Numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:ffff
"""


def test_names_are_normalized_and_extras_read() -> None:
    assert normalize("Scikit_Learn") == "scikit-learn"
    assert normalize("ruamel.yaml") == "ruamel-yaml"
    assert requirement_name("bentoml[io, grpc]==1.4.39") == ("bentoml", ["io", "grpc"])
    assert requirement_name("numpy==2.4.6 ; python_version < '3.12' \\") == ("numpy", [])
    with pytest.raises(UserError, match="is not a package requirement"):
        requirement_name("--hash=sha256:aaaa")


def test_the_closure_follows_dependencies_and_only_the_requested_extras() -> None:
    assert lock_closure(LOCK, ["service-lib"]) == {
        "service-lib",
        "numpy",
        "web",
        "h11",
        "anyio",
        "idna",
    }
    assert "rich" not in lock_closure(LOCK, ["service-lib"])  # web's other extra
    assert lock_closure(LOCK, ["web[cli]"]) == {"web", "h11", "rich"}
    assert lock_closure(LOCK, []) == set()


def test_a_package_the_lock_lacks_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        lock_closure(LOCK, ["service-lib", "torch"])
    assert "'torch', which uv.lock does not hold" in caught.value.message
    assert "uv lock" in caught.value.hint


def test_only_the_needed_blocks_are_kept_with_all_their_hashes() -> None:
    kept = keep_packages(EXPORT, {"numpy", "h11"})
    assert kept == (
        "h11==0.14 \\\n    --hash=sha256:bbbb\n"
        "numpy==2.4.6 ; python_full_version < '3.12' \\\n"
        "    --hash=sha256:dddd \\\n    --hash=sha256:eeee\n"
        "Numpy==2.5.5 ; python_full_version >= '3.12' \\\n    --hash=sha256:ffff\n"
    )
    assert keep_packages(EXPORT, set()) == "\n"


def test_the_real_lock_gives_a_hashed_service_environment_without_the_pipeline() -> None:
    text = locked_requirements(["bentoml", "numpy", "pandas", "pydantic", "scikit-learn"], ROOT)
    blocks = re.split(r"\n(?=\S)", text.strip())
    names = {normalize(b.split("==")[0]) for b in blocks}
    assert {"bentoml", "numpy", "pandas", "pydantic", "scikit-learn", "scipy"} <= names
    assert not {"dvc", "dvclive", "tensorflow-cpu", "lightgbm", "evidently"} & names
    assert all("==" in b.splitlines()[0] and "--hash=sha256:" in b for b in blocks)
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {normalize(p["name"]): p["version"] for p in lock["package"]}
    bentoml_line = next(b for b in blocks if b.startswith("bentoml=="))
    assert bentoml_line.startswith(f"bentoml=={locked['bentoml']} ")


def test_a_project_without_a_lock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"uv\.lock not found"):
        locked_requirements(["numpy"], tmp_path)


def test_the_bentofile_installs_the_export_instead_of_the_package_list(tmp_path: Path) -> None:
    config = {"service": "s:S", "python": {"packages": ["numpy==2.4.6"], "lock_packages": False}}
    locked = with_locked_requirements(config, tmp_path / "requirements.txt")
    assert locked["python"] == {
        "lock_packages": False,
        "requirements_txt": str(tmp_path / "requirements.txt"),
    }
    assert config["python"]["packages"] == ["numpy==2.4.6"]  # the input is left alone


@pytest.mark.parametrize(
    ("docker", "problem"),
    [
        ({"base_image": "python:3.11-slim@sha256:" + "0" * 64}, None),
        ({"base_image": "ghcr.io/a/b:1@sha256:" + "a1" * 32}, None),
        ({"base_image": "python:3.11-slim@sha256:" + "0" * 63}, "not pinned by digest"),
        ({"base_image": "python:3.11-slim@sha256:" + "0" * 65}, "not pinned by digest"),
        ({"base_image": "python:3.11-slim"}, "not pinned by digest"),
        ({}, "sets no docker.base_image"),
        (None, "sets no docker.base_image"),
    ],
)
def test_the_base_image_must_be_pinned_by_a_full_digest(
    docker: dict | None, problem: str | None
) -> None:
    found = base_image_problem({"docker": docker})
    assert (found is None) if problem is None else (problem in found)
