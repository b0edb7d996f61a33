"""`mlops release image`: the labels (with the pinned base), the exact `bentoml containerize`
command for Docker and podman (loaded, never pushed by the build), the base pinned by digest
(resolved once; a committed pin kept; an unpinned bento refused), the container run on loopback,
the smoke test's judgement of the container and the digest the push reports. The full runs: with
the stand-in `docker` in tests/test_act_release.py, with real podman and buildah in
tests/test_release_container.py."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.release.image import (
    ENGINES,
    Engine,
    base_image_of,
    check_pinned_base,
    check_reference,
    containerize_command,
    oci_labels,
    pin_base,
    pinned_base,
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


def test_labels_name_the_pinned_base() -> None:
    pinned = {**INFO, "image": {"base_image": f"python:3.11-slim@{DIGEST}"}}
    labels = oci_labels(pinned, "v1.2.0", "c", "https://x")
    assert labels["org.opencontainers.image.base.name"] == "python:3.11-slim"
    assert labels["org.opencontainers.image.base.digest"] == DIGEST
    unpinned = {**INFO, "docker": {"base_image": "python:3.11-slim"}}
    assert not any("base" in key for key in oci_labels(unpinned, "v1", "c", "https://x"))


def test_a_bento_on_an_unpinned_base_is_refused(tmp_path: Path) -> None:
    check_pinned_base({"image": {"base_image": f"python:3.11-slim@{DIGEST}"}}, tmp_path)
    check_pinned_base({"docker": {"base_image": f"localhost/base@{DIGEST}"}}, tmp_path)
    for info in (
        {},
        {"image": {"base_image": "python:3.11-slim"}},
        {"image": {"base_image": f"python:3.11-slim@{DIGEST[:-1]}"}},  # one digit short
        {"docker": {"base_image": f"python@{DIGEST}:latest"}},
    ):
        with pytest.raises(UserError, match="not on a base pinned by digest"):
            check_pinned_base(info, tmp_path / "b.bento")
    assert base_image_of({"image": {"base_image": "a"}, "docker": {"base_image": "b"}}) == "a"


def fake_engine(tmp_path: Path, name: str, answer: str, status: int = 0) -> Engine:
    """An engine whose tool prints `answer` and records its arguments."""
    script = tmp_path / f"fake-{name}"
    script.write_text(
        "import sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'argv')!r}).write_text(' '.join(sys.argv[1:]))\n"
        f"print({answer!r}); sys.exit({status})\n"
    )
    return Engine(name, (sys.executable, str(script)), "x", ())


def test_a_tag_is_resolved_once_and_a_pin_is_kept(tmp_path: Path) -> None:
    registry = fake_engine(tmp_path, "docker", json.dumps({"mediaType": "x", "digest": DIGEST}))
    assert pinned_base("python:3.11-slim", registry) == f"python:3.11-slim@{DIGEST}"
    argv = (tmp_path / "argv").read_text()
    assert argv == "buildx imagetools inspect python:3.11-slim --format {{json .Manifest}}"
    (tmp_path / "argv").unlink()
    kept = f"python:3.11-slim@{'cd' * 32}"
    assert pinned_base(f"python:3.11-slim@sha256:{'cd' * 32}", registry) == kept.replace(
        "@", "@sha256:"
    )
    assert not (tmp_path / "argv").exists()  # a committed digest is not asked again
    local = fake_engine(tmp_path, "podman", DIGEST)
    assert pinned_base("localhost/base:py3.11", local) == f"localhost/base:py3.11@{DIGEST}"
    assert (
        tmp_path / "argv"
    ).read_text() == "image inspect --format {{.Digest}} localhost/base:py3.11"


def test_no_digest_or_a_failed_lookup_is_one_message(tmp_path: Path) -> None:
    for answer in ("{}", "not json", '{"digest": "sha256:short"}'):
        with pytest.raises(UserError, match=r"no digest found for python:3\.11-slim"):
            pinned_base("python:3.11-slim", fake_engine(tmp_path, "docker", answer))
    failing = fake_engine(tmp_path, "docker", "ERROR: not found", status=1)
    with pytest.raises(UserError, match=r"resolving python:3\.11-slim in its registry failed"):
        pinned_base("python:3.11-slim", failing)


def test_the_pinned_bentofile_is_a_copy_with_only_the_base_changed(tmp_path: Path) -> None:
    source = tmp_path / "bentofile.yaml"
    original = {"service": "a:B", "python": {"packages": ["x"]}, "docker": {"env": {"A": "1"}}}
    source.write_text(yaml.safe_dump(original))
    out = tmp_path / "build" / "bentofile.yaml"
    engine = fake_engine(tmp_path, "podman", DIGEST)
    assert pin_base(source, out, engine, "localhost/base:1") == f"localhost/base:1@{DIGEST}"
    written = yaml.safe_load(out.read_text())
    assert written == {
        **original,
        "docker": {"env": {"A": "1"}, "base_image": f"localhost/base:1@{DIGEST}"},
    }
    assert yaml.safe_load(source.read_text()) == original  # the committed recipe is untouched
    pin_base(source, out, engine)  # no base named: BentoML's own for this Python
    default = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim@{DIGEST}"
    assert yaml.safe_load(out.read_text())["docker"]["base_image"] == default


def test_podman_runs_the_image_on_loopback_with_the_working_recipe() -> None:
    podman = ENGINES["podman"]
    assert podman.command[1:] == (
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    )
    args = [*podman.run_args("img", 4321), *podman.serve_args(4321)]
    assert args == [
        "run",
        "--detach",
        "--network",
        "host",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        "img",
        "--host",
        "127.0.0.1",
        "--port",
        "4321",
    ]
    docker = ENGINES["docker"]
    assert [*docker.run_args("img", 4321), *docker.serve_args(4321)] == [
        "run",
        "--detach",
        "--publish",
        "127.0.0.1:4321:3000",
        "img",
    ]
    command = containerize_command("b:v1", "localhost/x/y:v1", {}, Path("/m.json"), podman)
    assert command[3:] == [
        "containerize",
        "b:v1",
        "--backend",
        "buildah",
        "--image-tag",
        "localhost/x/y:v1",
        "--opt",
        "isolation=chroot",
        "--opt",
        "network=host",
    ]


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


def test_the_cli_refuses_an_unpinned_bento_and_a_podman_push(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bento = make_bento(tmp_path / "b.bento", {**INFO, "image": {"base_image": "python:3.11"}}, "")
    argv = ["release", "image", str(bento), "--image", "ghcr.io/a/b", "--version", "v1.0.0"]
    argv += ["--revision", "c" * 40, "--source", "s"]
    assert main(argv) == 2
    assert (
        "builds its image on python:3.11, not on a base pinned by digest" in capsys.readouterr().err
    )
    assert main([*argv, "--engine", "podman", "--push"]) == 2
    assert "--push needs docker, not podman" in capsys.readouterr().err


def test_the_cli_refuses_a_missing_bento(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["release", "image", str(tmp_path / "none.bento"), "--image", "ghcr.io/a/b"]
    assert main([*argv, "--version", "v1.0.0", "--revision", "c" * 40, "--source", "s"]) == 2
    err = capsys.readouterr().err
    assert "none.bento not found" in err and "fix: build it with `mlops release build`" in err
