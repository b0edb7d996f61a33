"""`mlops release image`: the labels, the exact `bentoml containerize` command (loaded, never
pushed by the build), the smoke test's judgement of the container and the digest the push
reports. The full run (a real bento, containerized with the stand-in `docker`) is in
tests/test_act_release.py."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.release.image import (
    check_reference,
    containerize_command,
    oci_labels,
    pushed_digest,
    read_bento_info,
    served_problems,
)

INFO = {
    "name": "wine-service",
    "version": "v1.2.0",
    "labels": {"model-tag": "wine-model:abc123", "model-family": "sklearn", "project": "x"},
}
DIGEST = "sha256:" + "ab" * 32


def make_bento(path: Path, info: dict, readme: str | None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        members = {"./bento.yaml": yaml.safe_dump(info)}
        if readme is not None:
            members["./README.md"] = readme
        for name, text in members.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def test_the_bento_info_includes_its_description(tmp_path: Path) -> None:
    bento = make_bento(tmp_path / "b.bento", INFO, "Wine.\n\nMore text.\n")
    info = read_bento_info(bento)
    assert (info["name"], info["version"], info["description"]) == (
        "wine-service",
        "v1.2.0",
        "Wine.\n\nMore text.",
    )
    assert read_bento_info(make_bento(tmp_path / "c.bento", INFO, None))["description"] == ""


def test_a_file_that_is_no_bento_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.bento").write_text("not a tar")
    with pytest.raises(UserError, match="not a readable bento archive"):
        read_bento_info(tmp_path / "x.bento")
    with pytest.raises(UserError, match=r"no bento\.yaml with a name and version"):
        read_bento_info(make_bento(tmp_path / "y.bento", {"name": "only"}, None))


def test_labels_say_what_the_image_is_and_where_it_came_from() -> None:
    info = {**INFO, "description": "Wine classifier.\nSecond line."}
    labels = oci_labels(info, "v1.2.0", "f" * 40, "https://github.com/acme/wine")
    assert labels == {
        "org.opencontainers.image.title": "wine-service",
        "org.opencontainers.image.description": "Wine classifier.",
        "org.opencontainers.image.version": "v1.2.0",
        "org.opencontainers.image.revision": "f" * 40,
        "org.opencontainers.image.source": "https://github.com/acme/wine",
        "mlops-template.bento": "wine-service:v1.2.0",
        "mlops-template.model-tag": "wine-model:abc123",
        "mlops-template.model-family": "sklearn",
    }
    bare = oci_labels({"name": "b", "version": "1"}, "v1", "c", "https://x")
    assert "org.opencontainers.image.description" not in bare  # no empty labels
    assert "mlops-template.model-tag" not in bare


def test_image_references_are_checked() -> None:
    assert check_reference("ghcr.io/acme/wine", "v1.2.0") == "ghcr.io/acme/wine:v1.2.0"
    assert check_reference("localhost:5000/a/b-c", "v1") == "localhost:5000/a/b-c:v1"
    for image in ("ghcr.io/Acme/wine", "wine", "ghcr.io/acme/wine:v1", "ghcr.io//x"):
        with pytest.raises(UserError, match="is not a valid registry/path name"):
            check_reference(image, "v1.2.0")
    with pytest.raises(UserError, match="is not a valid image tag"):
        check_reference("ghcr.io/acme/wine", "wine@v1.2.0")


def test_the_containerize_command_loads_with_labels_and_a_metadata_file() -> None:
    labels = {"org.opencontainers.image.version": "v1.2.0", "a.b": "x=y, z"}
    command = containerize_command(
        "wine-service:v1.2.0", "ghcr.io/acme/wine:v1.2.0", labels, Path("/t/m.json")
    )
    assert command == [
        sys.executable,
        "-m",
        "bentoml",
        "containerize",
        "wine-service:v1.2.0",
        "--backend",
        "buildx",
        "--image-tag",
        "ghcr.io/acme/wine:v1.2.0",
        "--opt",
        "label=org.opencontainers.image.version=v1.2.0",
        "--opt",
        "label=a.b=x=y, z",
        "--opt",
        "load",
        "--opt",
        "metadata-file=/t/m.json",
    ]
    assert "push" not in command  # the push comes after the smoke test


def test_the_digest_comes_from_the_push_output() -> None:
    output = f"The push refers to repository [ghcr.io/acme/wine]\nv1.2.0: digest: {DIGEST} size: 9"
    assert pushed_digest(output) == DIGEST
    for text in ("", "v1.2.0: digest: sha256:short size: 9", f"v1.2.0: {DIGEST}"):
        with pytest.raises(UserError, match="reported no digest"):
            pushed_digest(text)


def test_the_container_must_serve_the_bentos_model_accepted() -> None:
    tag = "wine-model:abc123"
    assert served_problems({"tag": tag, "gate": {"accepted": True}}, tag) == []
    other = served_problems({"tag": "wine-model:old", "gate": {"accepted": True}}, tag)
    assert other == [f"it serves model wine-model:old, the bento holds {tag}"]
    rejected = served_problems({"tag": tag, "gate": {"accepted": False}}, tag)
    assert rejected == ["its /metadata does not say the gate accepted the model"]
    assert len(served_problems({}, tag)) == 2


def test_the_cli_refuses_a_missing_bento(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["release", "image", str(tmp_path / "none.bento"), "--image", "ghcr.io/a/b"]
    assert main([*argv, "--version", "v1.0.0", "--revision", "c" * 40, "--source", "s"]) == 2
    err = capsys.readouterr().err
    assert "none.bento not found" in err and "fix: build it with `mlops release build`" in err
