"""Model signatures (model-signing, key mode, offline): a signed model directory verifies; an
edited, added or removed file, another key, a missing or unreadable signature are each refused
with one message naming what is wrong; with no key configured the start-up check does nothing.
The network is closed for every test: key mode must never reach Sigstore."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlops_template import signing
from mlops_template.cli import main
from mlops_template.errors import UserError
from mlops_template.signing import (
    PUBLIC_KEY_ENV,
    SIGNATURE_NAME,
    SIGNER_ENV,
    Verifier,
    configured_verifier,
    requested_verifier,
    sign_model,
    verify_model_signature,
    verify_signature,
    workflow_identity,
)

pytest.importorskip("model_signing", reason="the signing extra (uv sync --extra signing)")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: key mode is offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access in key mode: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv(PUBLIC_KEY_ENV, raising=False)
    monkeypatch.delenv(SIGNER_ENV, raising=False)


def key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """An EC P-256 private key and its public key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    private, public = key_pair(tmp_path, "release")
    _, other = key_pair(tmp_path, "other")
    return {"private": private, "public": public, "other": other}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A stored model directory as the service loads it (files and a subfolder)."""
    directory = tmp_path / "models" / "wine-model" / "abc123"
    (directory / "assets").mkdir(parents=True)
    (directory / "model.onnx").write_bytes(bytes(range(256)) * 4)
    (directory / "model.json").write_text('{"family": "sklearn"}\n')
    (directory / "provenance.json").write_text('{"git_commit": "c0ffee"}\n')
    (directory / "assets" / "vocab.txt").write_text("a\nb\n")
    return directory


@pytest.fixture
def signed(model: Path, keys: dict[str, Path]) -> Path:
    sign_model(model, keys["private"])
    return model


def refusal(model: Path, public: Path) -> str:
    with pytest.raises(UserError) as caught:
        verify_signature(model, Verifier(public_key=public))
    return caught.value.message


def test_a_signed_model_verifies_and_the_signature_is_not_one_of_its_files(
    signed: Path, keys: dict[str, Path]
) -> None:
    assert (signed / SIGNATURE_NAME).is_file()
    assert not list(signed.glob("*.partial"))
    verify_signature(signed, Verifier(public_key=keys["public"]))  # no extra file: model.sig


def test_an_edited_file_is_refused_by_name(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "assets" / "vocab.txt").write_text("a\nc\n")  # same size, other bytes
    message = refusal(signed, keys["public"])
    assert message.endswith("edited: assets/vocab.txt"), message
    assert f"the model at {signed} does not match its signature model.sig" in message


def test_an_added_file_is_refused_by_name(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "payload.py").write_text("import os\n")
    assert refusal(signed, keys["public"]).endswith("added (not signed): payload.py")


def test_a_removed_file_is_refused_by_name(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "provenance.json").unlink()
    assert refusal(signed, keys["public"]).endswith("missing: provenance.json")


def test_several_changes_are_all_named(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "model.onnx").write_bytes(b"\0")
    (signed / "model.json").unlink()
    (signed / "x").write_text("")
    assert refusal(signed, keys["public"]).endswith(
        "edited: model.onnx; added (not signed): x; missing: model.json"
    )


def test_another_key_is_refused(signed: Path, keys: dict[str, Path]) -> None:
    message = refusal(signed, keys["other"])
    assert message.endswith("it was signed with another key")
    assert str(keys["other"]) in message


def test_an_unsigned_or_unreadable_signature_is_refused(model: Path, keys: dict[str, Path]) -> None:
    message = refusal(model, keys["public"])
    assert "has no signature" in message and SIGNATURE_NAME in message
    (model / SIGNATURE_NAME).write_text("not a bundle")
    assert "the signature could not be read or checked" in refusal(model, keys["public"])


def test_a_signature_beside_the_directory_is_found(model: Path, keys: dict[str, Path]) -> None:
    beside = model.with_name(model.name + ".sig")
    sign_model(model, keys["private"], beside)
    assert not (model / SIGNATURE_NAME).exists()
    verify_signature(model, Verifier(public_key=keys["public"]))
    (model / "model.json").write_text("{}")
    assert refusal(model, keys["public"]).endswith("edited: model.json")


def test_bad_keys_and_directories_are_one_message(
    model: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"private key .* not found"):
        sign_model(model, tmp_path / "none.pem")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(UserError, match="is not an unencrypted EC private key in PEM"):
        sign_model(model, tmp_path / "junk.pem")
    assert not (model / SIGNATURE_NAME).exists()  # nothing half-written
    with pytest.raises(UserError, match="is not a model directory"):
        sign_model(model / "model.json", keys["private"])
    sign_model(model, keys["private"])
    assert "public key" in refusal(model, tmp_path / "none.pub")
    assert "not an EC public key" in refusal(model, tmp_path / "junk.pem")


def test_no_key_configured_means_no_check(
    model: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (model / "unsigned.bin").write_bytes(b"x")
    verify_model_signature(model)  # nothing configured: unsigned models are served
    monkeypatch.setenv(PUBLIC_KEY_ENV, "  ")
    verify_model_signature(model)  # blank counts as unset


def test_a_configured_key_is_checked_before_loading(
    signed: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(keys["public"]))
    verify_model_signature(signed)
    (signed / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(UserError, match=r"edited: model\.onnx"):
        verify_model_signature(signed)
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(keys["other"]))
    with pytest.raises(UserError, match="signed with another key"):
        verify_model_signature(signed)


def test_the_environment_names_one_verifier() -> None:
    assert configured_verifier({}) is None
    key = configured_verifier({PUBLIC_KEY_ENV: "/k.pub"})
    assert key == Verifier(public_key=Path("/k.pub"))
    signer = configured_verifier({SIGNER_ENV: "https://id"})
    assert signer == Verifier(identity="https://id", issuer=signing.GITHUB_ISSUER)
    with pytest.raises(UserError, match="both"):
        configured_verifier({PUBLIC_KEY_ENV: "/k.pub", SIGNER_ENV: "https://id"})


def test_the_keyless_identity_is_the_release_workflow_at_the_tag() -> None:
    workflow = Path(__file__).resolve().parents[1] / signing.RELEASE_WORKFLOW
    assert workflow.is_file()  # the identity names the workflow that really signs
    assert "mlops release sign" in workflow.read_text()
    assert workflow_identity("acme/digits", "refs/tags/v1.2.0") == (
        f"https://github.com/acme/digits/{signing.RELEASE_WORKFLOW}@refs/tags/v1.2.0"
    )
    for repo, ref in (("acme", "refs/tags/v1"), ("a/b", "v1.2.0"), ("a/b c", "refs/tags/v1")):
        with pytest.raises(UserError):
            workflow_identity(repo, ref)
    assert requested_verifier(None, "a/b", "refs/tags/v1").identity == workflow_identity(
        "a/b", "refs/tags/v1"
    )
    for key, repo, ref in ((Path("k"), "a/b", None), (None, "a/b", None), (None, None, None)):
        with pytest.raises(UserError):
            requested_verifier(key, repo, ref)


def test_the_cli_signs_and_verifies(
    model: Path, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = tmp_path / "dist" / SIGNATURE_NAME
    argv = ["release", "sign", str(model), "--key", str(keys["private"]), "--copy-to", str(copy)]
    assert main(argv) == 0
    assert copy.read_bytes() == (model / SIGNATURE_NAME).read_bytes()
    assert main(["release", "verify-signature", str(model), "--key", str(keys["public"])]) == 0
    assert "signature OK" in capsys.readouterr().out
    (model / "model.json").write_text("{}")
    assert main(["release", "verify-signature", str(model), "--key", str(keys["public"])]) == 2
    err = capsys.readouterr().err
    assert "edited: model.json" in err and "Traceback" not in err
