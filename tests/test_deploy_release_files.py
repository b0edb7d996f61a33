"""What a deployment runs is verified first: the release's files against SHA256SUMS and their
attestations, the image resolved to its attested digest. `gh` is the test stand-in
(tests/act/bin/gh: GitHub's API cannot exist here), which records every call."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from act_harness import STUB_BIN
from deploy_fixtures import attest, image_digest, write_release

from mlops_template.deploy.release_files import (
    attested_image,
    fetch_release,
    model_tag_of,
    verify_checksums,
)
from mlops_template.errors import UserError
from mlops_template.release.checksums import write_checksums

REPO = "acme/shop"
IMAGE = "ghcr.io/acme/shop/shop"
TAG = "shop-model:0123abcd"


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stub_dir = tmp_path / "stub"
    stub_dir.mkdir()
    monkeypatch.setenv("ACT_STUB_DIR", str(stub_dir))
    monkeypatch.setenv("PATH", f"{STUB_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GH_TOKEN", "ghs_not_real")
    return stub_dir


def calls(stub_dir: Path) -> list[list[str]]:
    lines = (stub_dir / "calls.jsonl").read_text().splitlines()
    return [json.loads(line)["argv"] for line in lines]


def test_a_published_release_is_downloaded_verified_and_its_image_pinned(
    stub: Path, tmp_path: Path
) -> None:
    release = write_release(stub / "releases", "shop", "v1.2.0", TAG)
    digest = image_digest(IMAGE, "v1.2.0")
    attest(stub, [release], {f"{IMAGE}:v1.2.0": digest})
    out = tmp_path / "out"
    out.mkdir()
    (out / "leftover.bento").write_text("from another release")

    verified = fetch_release("shop@v1.2.0", "v1.2.0", IMAGE, REPO, out)

    assert verified.model_tag == TAG
    assert verified.image == f"{IMAGE}@{digest}"
    names = sorted(p.name for p in release.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names  # the leftover is gone
    assert calls(stub) == [
        ["release", "download", "shop@v1.2.0", "--repo", REPO, "--dir", str(out), "--clobber"],
        *(
            ["attestation", "verify", str(out / name), "--repo", REPO]
            for name in ["SHA256SUMS", *(n for n in names if n != "SHA256SUMS")]
        ),
        ["attestation", "verify", f"oci://{IMAGE}:v1.2.0", "--repo", REPO, "--format", "json"],
    ]


def test_a_release_that_does_not_exist_says_how_to_make_it(stub: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        fetch_release("shop@v9.0.0", "v9.0.0", IMAGE, REPO, tmp_path / "out")
    assert "no GitHub Release shop@v9.0.0 in acme/shop" in caught.value.message
    assert "push the tag shop@v9.0.0" in caught.value.hint


def test_an_unattested_file_stops_the_deploy(stub: Path, tmp_path: Path) -> None:
    release = write_release(stub / "releases", "shop", "v1.2.0", TAG)
    attest(stub, [], {f"{IMAGE}:v1.2.0": image_digest(IMAGE, "v1.2.0")})
    with pytest.raises(UserError, match="SHA256SUMS has no valid provenance attestation"):
        fetch_release("shop@v1.2.0", "v1.2.0", IMAGE, REPO, tmp_path / "out")
    assert release.is_dir()


def test_an_unattested_image_stops_the_deploy(stub: Path) -> None:
    attest(stub, [], {f"{IMAGE}:v1.0.0": image_digest(IMAGE, "v1.0.0")})
    with pytest.raises(UserError) as caught:
        attested_image(IMAGE, "v1.2.0", REPO)
    assert "has no valid attestation of acme/shop" in caught.value.message
    assert "packages: read" in caught.value.hint


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "releases", "shop", "v1.2.0", TAG)


def test_checksums_pass_for_the_published_files(release: Path) -> None:
    files = verify_checksums(release)
    assert [p.name for p in files] == ["SHA256SUMS", *sorted(
        p.name for p in release.iterdir() if p.name != "SHA256SUMS"
    )]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: (d / "MODEL_CARD.md").write_text("edited"), "MODEL_CARD.md does not match"),
        (lambda d: (d / "extra.txt").write_text("x"), "extra.txt is not in SHA256SUMS"),
        (lambda d: (d / "gate-verdict.json").unlink(), "gate-verdict.json is missing"),
    ],
)
def test_a_changed_added_or_missing_file_fails_the_checksums(release, change, problem) -> None:
    change(release)
    with pytest.raises(UserError, match=problem):
        verify_checksums(release)


@pytest.mark.parametrize(
    "line",
    ["deadbeef  MODEL_CARD.md", "a" * 64 + "  ../etc/passwd", "a" * 64 + " MODEL_CARD.md"],
)
def test_a_malformed_sums_line_is_refused(release: Path, line: str) -> None:
    (release / "SHA256SUMS").write_text(line + "\n")
    with pytest.raises(UserError, match="malformed line"):
        verify_checksums(release)


def test_no_sums_file_is_refused(release: Path) -> None:
    (release / "SHA256SUMS").unlink()
    with pytest.raises(UserError, match="the release has no SHA256SUMS"):
        verify_checksums(release)


def test_the_model_tag_comes_from_the_one_bento(release: Path) -> None:
    files = list(release.iterdir())
    assert model_tag_of(files) == TAG
    with pytest.raises(UserError, match=r"holds 0 \.bento files, not one"):
        model_tag_of([p for p in files if p.suffix != ".bento"])
    with pytest.raises(UserError, match=r"holds 2 \.bento files, not one"):
        model_tag_of([*files, release / "second.bento"])


@pytest.mark.parametrize("matches", [True, False])
def test_an_image_file_in_the_release_must_name_the_attested_image(
    stub: Path, tmp_path: Path, matches: bool
) -> None:
    release = write_release(stub / "releases", "shop", "v1.2.0", TAG)
    digest = image_digest(IMAGE, "v1.2.0")
    named = digest if matches else image_digest(IMAGE, "v1.1.0")
    (release / "IMAGE").write_text(f"{IMAGE}@{named}\n")
    write_checksums(release)
    attest(stub, [release], {f"{IMAGE}:v1.2.0": digest})
    if matches:
        verified = fetch_release("shop@v1.2.0", "v1.2.0", IMAGE, REPO, tmp_path / "out")
        assert verified.image == f"{IMAGE}@{digest}"
        return
    with pytest.raises(UserError, match="but the attested image is"):
        fetch_release("shop@v1.2.0", "v1.2.0", IMAGE, REPO, tmp_path / "out")
