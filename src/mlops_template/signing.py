"""Model signatures: the served model's files, signed as one directory, checked before loading.

The release signs the stored model directory (every file the service loads: the model, its
model.json, provenance.json and BentoML's model.yaml) with the `model-signing` package (OpenSSF
model signing: a manifest of every file's SHA-256 in a Sigstore bundle). The signature is the file
`model.sig` inside that directory (left out of what it signs), so it travels with the model into
the bento and the image; a signature beside the directory (`<dir>.sig`) is read too.

Two ways to sign:
- with an elliptic-curve private key (P-256/P-384, PEM): offline, checked with its public key;
- keyless with Sigstore (GitHub's OIDC token in the release job): the certificate names the
  release workflow, checked against that identity (needs the network for Sigstore's roots).

At service start `verify_model_signature` checks the model when the environment names a public
key (MLOPS_MODEL_PUBLIC_KEY) or a Sigstore signer (MLOPS_MODEL_SIGNER, with
MLOPS_MODEL_SIGNER_ISSUER); with neither it does nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_template.errors import UserError

SIGNATURE_NAME = "model.sig"
PUBLIC_KEY_ENV = "MLOPS_MODEL_PUBLIC_KEY"
SIGNER_ENV = "MLOPS_MODEL_SIGNER"
ISSUER_ENV = "MLOPS_MODEL_SIGNER_ISSUER"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
RELEASE_WORKFLOW = ".github/workflows/release.yml"  # the workflow that signs (keyless)
_INSTALL = "install the signing extra: `uv sync --locked --extra signing`"


@dataclass(frozen=True)
class Verifier:
    """How a signature is checked: a public key, or a Sigstore identity and its issuer."""

    public_key: Path | None = None
    identity: str | None = None
    issuer: str = GITHUB_ISSUER

    def describe(self) -> str:
        if self.public_key is not None:
            return f"the public key {self.public_key}"
        return f"the Sigstore identity {self.identity} (issuer {self.issuer})"


def workflow_identity(repository: str, ref: str, workflow: str = RELEASE_WORKFLOW) -> str:
    """The identity GitHub's OIDC certificate gives a workflow run: the workflow file's URL at
    the ref that ran it (Sigstore's certificate SAN)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise UserError(f"{repository!r} is not OWNER/REPO", "e.g. --repo acme/wine")
    if not ref.startswith("refs/"):
        raise UserError(f"{ref!r} is not a full git ref", "e.g. --ref refs/tags/v1.2.0")
    return f"https://github.com/{repository}/{workflow}@{ref}"


def signature_path(model_path: Path) -> Path:
    """The model's signature: `model.sig` inside its directory, else `<dir>.sig` beside it."""
    inside = model_path / SIGNATURE_NAME
    beside = model_path.with_name(model_path.name + ".sig")
    return beside if not inside.exists() and beside.exists() else inside


def _model_signing() -> Any:
    try:
        import model_signing
    except ImportError as exc:
        raise UserError(f"model signing is not installed here ({exc})", _INSTALL) from None
    return model_signing


def _hashing(model_signing: Any, signature: Path) -> Any:
    """Every file of the directory (git metadata aside), except its own signature file."""
    return model_signing.hashing.Config().set_ignored_paths(paths=[signature])


def _check_directory(model_path: Path) -> None:
    if not model_path.is_dir():
        raise UserError(
            f"{model_path} is not a model directory",
            "pass the stored model's directory (`bentoml models get TAG -o path`)",
        )


def sign_model(
    model_path: Path,
    private_key: Path | None = None,
    signature: Path | None = None,
) -> Path:
    """Sign every file of `model_path`; with no key, keyless through Sigstore (GitHub's OIDC
    token: the job needs `id-token: write`). Returns the signature file."""
    model_signing = _model_signing()
    _check_directory(model_path)
    signature = signature or model_path / SIGNATURE_NAME
    config = model_signing.signing.Config().set_hashing_config(_hashing(model_signing, signature))
    if private_key is not None:
        if not private_key.is_file():
            raise UserError(f"private key {private_key} not found", "pass a PEM EC key (P-256)")
        try:
            config.use_elliptic_key_signer(private_key=private_key)
        except (ValueError, TypeError, AttributeError) as exc:
            raise UserError(
                f"{private_key} is not an unencrypted EC private key in PEM ({exc})",
                "make one: `openssl ecparam -name prime256v1 -genkey -noout -out key.pem`",
            ) from None
    else:
        config.use_sigstore_signer(use_ambient_credentials=True)
    partial = signature.with_name(signature.name + ".partial")
    try:
        config.sign(model_path, partial)
        partial.replace(signature)
    except Exception as exc:  # the library raises bare exceptions (network, OIDC)
        partial.unlink(missing_ok=True)
        if private_key is not None:
            raise
        raise UserError(
            f"keyless signing failed: {exc}",
            "run it in GitHub Actions with `id-token: write`, or sign with --key",
        ) from None
    return signature


def verify_signature(model_path: Path, verifier: Verifier, signature: Path | None = None) -> None:
    """Raise UserError unless `signature` signs exactly the files in `model_path` (none edited,
    added or removed) and was made with the verifier's key or identity."""
    model_signing = _model_signing()
    _check_directory(model_path)
    signature = signature or signature_path(model_path)
    if not signature.is_file():
        raise UserError(
            f"the model at {model_path} has no signature ({signature} not found) but "
            f"{verifier.describe()} is required",
            "serve a signed release (its bento carries model.sig), or unset "
            f"{PUBLIC_KEY_ENV}/{SIGNER_ENV} to serve unsigned models",
        )
    config = model_signing.verifying.Config().set_hashing_config(_hashing(model_signing, signature))
    if verifier.public_key is not None:
        if not verifier.public_key.is_file():
            raise UserError(
                f"public key {verifier.public_key} not found",
                f"set {PUBLIC_KEY_ENV} to the PEM public key of the release's signing key",
            )
        try:
            config.use_elliptic_key_verifier(public_key=verifier.public_key)
        except (ValueError, TypeError, AttributeError) as exc:
            raise UserError(
                f"{verifier.public_key} is not an EC public key in PEM ({exc})",
                "export it: `openssl ec -in key.pem -pubout -out key.pub`",
            ) from None
    else:
        config.use_sigstore_verifier(identity=verifier.identity, oidc_issuer=verifier.issuer)
    try:
        config.verify(model_path, signature)
    except Exception as exc:  # ValueError for a mismatch; others for an unreadable bundle
        raise UserError(
            f"the model at {model_path} does not match its signature {signature.name} "
            f"checked with {verifier.describe()}: {_reason(exc)}",
            "do not serve it: re-import the release's bento (`bentoml import`) and check that "
            "the key or identity is the release's",
        ) from None


def _reason(exc: Exception) -> str:
    """The library's finding in a few words: which files were edited, added or removed, or
    that the key is not the signer's (its mismatch text is a list's repr with raw digests)."""
    text = str(exc) or type(exc).__name__
    if text.startswith("Key mismatch"):
        return "it was signed with another key"
    if text.startswith("Signature mismatch"):
        found = []
        for pattern, what in (
            (r"Hash mismatch for \\?'([^'\\]+)", "edited"),
            (r"Extra files found in model \\?'[^']*\\?': ([^\"'\]]+)", "added (not signed)"),
            (r"Missing files in model \\?'[^']*\\?': ([^\"'\]]+)", "missing"),
        ):
            names = ", ".join(re.findall(pattern, text))
            if names:
                found.append(f"{what}: {names}")
        if found:
            return "; ".join(found)
    short = text if len(text) <= 300 else text[:300] + " ..."
    return f"the signature could not be read or checked ({short})"


def configured_verifier(environ: dict[str, str] | None = None) -> Verifier | None:
    """The verifier the environment asks for (None: signatures are not checked)."""
    env = os.environ if environ is None else environ
    key = env.get(PUBLIC_KEY_ENV, "").strip()
    identity = env.get(SIGNER_ENV, "").strip()
    if key and identity:
        raise UserError(
            f"both {PUBLIC_KEY_ENV} and {SIGNER_ENV} are set", "set the one the release used"
        )
    if key:
        return Verifier(public_key=Path(key))
    if identity:
        return Verifier(identity=identity, issuer=env.get(ISSUER_ENV, "").strip() or GITHUB_ISSUER)
    return None


def requested_verifier(key: Path | None, repo: str | None, ref: str | None) -> Verifier:
    """The verifier a user asks for: a public key, or the release workflow of REPO at REF
    (keyless); with none given, the environment's."""
    if key is not None and (repo or ref):
        raise UserError("use --key or --repo/--ref, not both", "--key for a key-signed model")
    if repo or ref:
        if not (repo and ref):
            raise UserError(
                "a keyless check needs both --repo and --ref",
                "e.g. --repo OWNER/REPO --ref refs/tags/v1.2.0",
            )
        return Verifier(identity=workflow_identity(repo, ref))
    verifier = Verifier(public_key=key) if key is not None else configured_verifier()
    if verifier is None:
        raise UserError(
            "no key or signer to check the signature against",
            f"pass --key key.pub, or --repo OWNER/REPO --ref refs/tags/vX.Y.Z (or set "
            f"{PUBLIC_KEY_ENV})",
        )
    return verifier


def verify_model_signature(model_path: Path) -> None:
    """Before the service loads the model: check its signature when the environment names a
    public key or signer; nothing to do when it names neither."""
    verifier = configured_verifier()
    if verifier is not None:
        verify_signature(Path(model_path), verifier)
