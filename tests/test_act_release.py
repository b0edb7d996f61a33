"""The real release workflow, run by act on a throwaway fork of the template, for two tags.

main: the template (scikit-learn family), reproduced and committed; a maintainer's clone tags it.
(a) `v1.0.0`, the first release: a plain git step checks the tag is on main before any of the
    tagged commit's code runs; GitHub and the registry are asked whether v1.0.0 exists; CI
    reproduces the pipeline with no cache, gates on the value bounds only, packages afresh,
    builds and smoke-tests the bento; the image job containerizes that bento for
    ghcr.io/acme/digits:v1.0.0 with its labels, runs the image and smoke-tests it, pushes exactly
    the tested image and attests the digest the push reported; then the release gets exactly
    the bento, the model card, the gate verdict, the model's signature and SHA256SUMS (which
    `sha256sum -c` verifies), attested. The image's base is resolved to a digest once, recorded
    in the bento and built on; the model files are signed (with a key here: Sigstore's keyless
    signing needs GitHub's OIDC and the network) and the signature checks the bento's model.
(b) `v1.1.0` on a later commit of main that tightened the gate (accuracy min 0.999) without
    changing the model: CI reproduces the committed metrics, the gate against v1.0.0 rejects
    them and names the rule, and nothing is released or pushed.
(c) `v1.0.0` again, re-pointed at a later commit of main after its release: refused before
    anything is built, nothing published.
(d) a tag on a commit that is not on main: the git step stops the run before the environment
    is even set up (no setup action, no `mlops`, nothing pulled or built).
Remote actions, `gh` and `docker` are stand-ins (tests/act_harness.py, tests/act/stub.py);
git, DVC, the pipeline, BentoML (build, serve, containerize), model signing and the workflow
file are real.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from act_harness import (
    STUB_ACTIONS,
    ActRun,
    clone,
    event_payload,
    git,
    run_workflow,
    template_repo,
)
from project import EXAMPLE_ONLY, SKLEARN_FAST, holds_bundled_example, set_params
from test_release_signing import key_pair

from mlops_template import paths
from mlops_template.errors import UserError
from mlops_template.release.verify import model_hash
from mlops_template.serving import store
from mlops_template.signing import SIGNATURE_NAME, Verifier, verify_signature

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not holds_bundled_example(), reason=EXAMPLE_ONLY),
]

RELEASE_STUBS = {
    "actions/attest": STUB_ACTIONS / "attest",
    "docker/login-action": STUB_ACTIONS / "docker-login",
    "docker/setup-buildx-action": STUB_ACTIONS / "setup-buildx",
}
PROJECT = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())[
    "project"
]
BENTO_NAME = store.bento_name(PROJECT["name"])  # named by params.yaml `project`
BENTO = f"{BENTO_NAME}-v1.0.0.bento"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("act-release")


@pytest.fixture(scope="module")
def signing_key(work: Path) -> dict[str, Path]:
    """The release's EC P-256 key pair (PEM files), outside the repository."""
    private, public = key_pair(work, "signing")
    return {"private": private, "public": public}


@pytest.fixture(scope="module")
def main_repo(work: Path) -> Path:
    return template_repo(work / "main", params=SKLEARN_FAST)


@pytest.fixture(scope="module")
def maintainer(work: Path, main_repo: Path) -> Path:
    """The maintainer's clone (origin/main is main), with no DVC cache and no data."""
    return clone(main_repo, work / "maintainer")


def release(
    repo: Path, tag: str, work: Path, key: Path | None = None, **options: Any
) -> tuple[ActRun, str]:
    """Tag origin/main, check the tag out as actions/checkout would, run release.yml for it
    (the model signed with `key`: keyless signing cannot run here)."""
    git(repo, "tag", "-a", tag, "-m", f"Release {tag}", "origin/main")
    git(repo, "checkout", "-q", tag)
    sha = git(repo, "rev-parse", "HEAD")
    payload = event_payload("push_tag", ref=f"refs/tags/{tag}", sha=sha)
    act_env = {"MLOPS_MODEL_SIGNING_KEY": str(key)} if key else None
    run = run_workflow(
        repo, "release.yml", "push", payload, work, stubs=RELEASE_STUBS, act_env=act_env, **options
    )
    return run, sha


@pytest.fixture(scope="module")
def first(work: Path, maintainer: Path, signing_key: dict[str, Path]) -> dict[str, Any]:
    run, sha = release(maintainer, "v1.0.0", work / "run-v1.0.0", signing_key["private"])
    return {"run": run, "sha": sha}


def released_files(run: ActRun, tag: str) -> Path:
    return run.stub_dir / "releases" / tag


def test_a_first_release_publishes_the_bento_card_verdict_and_checksums(
    first: dict[str, Any], main_repo: Path
) -> None:
    run: ActRun = first["run"]
    assert run.returncode == 0, run.log[-6000:]
    assert "previous release: none (first release)" in run.log
    on_main = "Require the tagged commit on the default branch"
    assert run.step_succeeded(on_main), run.log[-6000:]
    assert f"the tagged commit {first['sha']} is on main" in run.log
    assert main_step_index(run, on_main) < main_step_index(run, "Set up the environment")
    assert "release v1.0.0: not published yet in acme/digits" in run.log
    assert "Running stage 'package'" in run.log  # packaged afresh from the clean checkout
    assert "reproducible: committed metrics reproduced in CI" in run.log
    assert "smoke test passed" in run.log
    assert re.search(r"(\d+) test rows, \1/\1 labels agree", run.log), run.log[-6000:]
    # No cache anywhere: uv's is off, the DVC cache is never restored, the model is retrained.
    assert run.calls_of("cache") == [] and run.calls_of("cache-restore") == []
    assert {c["inputs"]["enable-cache"] for c in run.calls_of("setup-uv")} == {"false"}
    assert "Running stage 'train'" in run.log

    view, gh = run.calls_of("gh")  # asked first whether v1.0.0 exists, then created it
    assert view["argv"][:5] == ["release", "view", "v1.0.0", "--repo", "acme/digits"]
    assert gh["token"] is True
    assert gh["argv"][:3] == ["release", "create", "v1.0.0"]
    assert gh["argv"][-7:] == [
        "--repo",
        "acme/digits",
        "--verify-tag",
        "--title",
        "v1.0.0",
        "--notes-file",
        "dist/MODEL_CARD.md",
    ]
    assets = released_files(run, "v1.0.0")
    names = {p.name for p in assets.iterdir()}
    assert names == {BENTO, "MODEL_CARD.md", "gate-verdict.json", SIGNATURE_NAME, "SHA256SUMS"}
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=assets, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(check.stdout.split("\n")[:-1]) == sorted(
        f"{name}: OK" for name in names - {"SHA256SUMS"}
    )

    card = (assets / "MODEL_CARD.md").read_text()
    data_md5 = yaml.safe_load((main_repo / "data.dvc").read_text())["outs"][0]["md5"]
    assert f"# Model card: {store.model_name(PROJECT['name'])} v1.0.0" in card
    assert PROJECT["description"] in card
    assert f"`{data_md5}`" in card
    assert f"`{first['sha']}`" in card  # the release commit
    assert "No previous release to compare with." in card
    # Exactly the recorded model: retrained to the same bytes, and the card's lineage is the
    # tagged commit's dvc.lock.
    assert "the model is the one HEAD's dvc.lock records" in run.log
    committed = (main_repo / "dvc.lock").read_text()
    model_md5 = model_hash(committed)
    assert model_md5 and f"`{model_md5}`" in card
    verdict = yaml.safe_load((assets / "gate-verdict.json").read_text())
    assert verdict["accepted"] is True and verdict["baseline"]["source"] is None

    assert sorted(gh["argv"][3:-7]) == sorted(f"dist/{name}" for name in names)

    _, attest_files = run.calls_of("attest")  # after the image's (below)
    hashes = {f"dist/{p.name}": sha256(p) for p in assets.iterdir()}
    assert attest_files["files"] == hashes  # exactly the released bytes
    assert attest_files["token_given"] is True


def test_a_the_released_signature_checks_the_bentos_model(
    first: dict[str, Any], main_repo: Path, signing_key: dict[str, Path], tmp_path: Path
) -> None:
    run: ActRun = first["run"]
    assert run.returncode == 0, run.log[-6000:]
    assets = released_files(run, "v1.0.0")
    with tarfile.open(assets / BENTO) as archive:
        archive.extractall(tmp_path / "bento", filter="data")
    tag = store.read_bentomodel(main_repo / paths.BENTOMODEL_FILE).tag
    model_dir = tmp_path / "bento" / "models" / Path(*tag.split(":"))
    inside = model_dir / SIGNATURE_NAME
    assert inside.read_bytes() == (assets / SIGNATURE_NAME).read_bytes()  # travels with it
    verify_signature(model_dir, Verifier(public_key=signing_key["public"]))
    (model_dir / "extra.py").write_text("")
    with pytest.raises(UserError, match=r"added \(not signed\): extra\.py"):
        verify_signature(model_dir, Verifier(public_key=signing_key["public"]))


def test_a_image_job_containerizes_that_bento_pushes_and_attests_it(
    first: dict[str, Any], main_repo: Path
) -> None:
    run: ActRun = first["run"]
    assert run.returncode == 0, run.log[-6000:]
    (login,) = run.calls_of("docker-login")
    assert login["inputs"]["registry"] == "ghcr.io" and login["password_given"] is True
    assert len(run.calls_of("setup-buildx")) == 1

    docker = run.calls_of("docker")
    verbs = [" ".join(c["argv"][:2]) for c in docker]
    # The build job resolved the base's digest; the image job asked the registry whether the
    # version exists, built into the local store, ran the image by its ID and smoke-tested it,
    # then pushed the same image: never pushed untested.
    assert verbs == [
        "buildx imagetools",
        "buildx imagetools",
        "buildx build",
        "image inspect",
        "run --detach",
        "rm --force",
        "image inspect",
        "push ghcr.io/acme/digits:v1.0.0",
    ], verbs
    base_query = ["buildx", "imagetools", "inspect", "python:3.11-slim"]
    assert docker[0]["argv"] == [*base_query, "--format", "{{json .Manifest}}"]
    assert docker[1]["argv"] == ["buildx", "imagetools", "inspect", "ghcr.io/acme/digits:v1.0.0"]
    build, run_call, push = docker[2], docker[4], docker[7]
    base_digest = re.search(r"base image pinned: python:3\.11-slim@(sha256:[0-9a-f]{64})", run.log)
    assert base_digest, run.log[-6000:]
    from_line = next(line for line in build["dockerfile"].splitlines() if line.startswith("FROM"))
    assert from_line.split()[1] == f"python:3.11-slim@{base_digest.group(1)}"
    argv = build["argv"]
    assert argv[:3] == ["buildx", "build", "--load"]
    assert "--push" not in argv
    assert run_call["argv"][-1] == build["image_id"] == push["image_id"]
    assert run_call["argv"][2] == "--publish"
    assert re.fullmatch(r"127\.0\.0\.1:\d+:3000", run_call["argv"][3])  # loopback only
    assert "image smoke test passed" in run.log
    assert run.log.index("image smoke test passed") < run.log.index("pushed ghcr.io/acme/digits")
    assert values(argv, "--tag") == ["ghcr.io/acme/digits:v1.0.0"]
    packaged = store.read_bentomodel(main_repo / paths.BENTOMODEL_FILE).to_json()
    labels = dict(label.split("=", 1) for label in values(argv, "--label"))
    assert labels == {
        "org.opencontainers.image.title": BENTO_NAME,
        "org.opencontainers.image.description": PROJECT["description"].splitlines()[0],
        "org.opencontainers.image.version": "v1.0.0",
        "org.opencontainers.image.revision": first["sha"],
        "org.opencontainers.image.source": "https://github.com/acme/digits",
        "mlops-template.bento": f"{BENTO_NAME}:v1.0.0",
        "mlops-template.model-tag": packaged["tag"],
        "mlops-template.model-family": "sklearn",
        "org.opencontainers.image.base.name": "python:3.11-slim",
        "org.opencontainers.image.base.digest": base_digest.group(1),
    }
    model_name, model_version = packaged["tag"].split(":")
    with tarfile.open(main_repo / paths.BENTOMODEL_FILE) as archive:
        packaged_files = {n.removeprefix("./") for n in archive.getnames() if n not in {".", "./"}}
    in_image = {
        f.split("/", 3)[3]
        for f in build["files"]
        if f.startswith(f"models/{model_name}/{model_version}/")
    }
    assert in_image == packaged_files | {SIGNATURE_NAME}  # exactly the packaged model, signed
    assert "bento.yaml" in build["files"]
    assert "tensorflow" not in build["dockerfile"].lower()

    attest_image, _ = run.calls_of("attest")
    assert attest_image["inputs"]["subject-name"] == "ghcr.io/acme/digits"
    assert attest_image["inputs"]["subject-digest"] == push["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", push["digest"])
    assert attest_image["inputs"]["push-to-registry"] == "true"
    assert attest_image["inputs"]["create-storage-record"] == "false"
    assert attest_image["files"] == {}


def test_b_a_tag_whose_model_fails_the_gate_is_not_released(
    work: Path, main_repo: Path, maintainer: Path, first: dict[str, Any]
) -> None:
    assert first["run"].returncode == 0  # v1.0.0 exists: the baseline
    set_params(main_repo, {"gate": {"rules": {"accuracy": {"min": 0.999}}}})
    git(main_repo, "commit", "-q", "-am", "Demand 99.9% accuracy (no dvc repro)")
    git(maintainer, "fetch", "-q", str(main_repo), "+refs/heads/main:refs/remotes/origin/main")

    run, _ = release(maintainer, "v1.1.0", work / "run-v1.1.0")

    assert run.returncode != 0
    assert "previous release: v1.0.0" in run.log
    assert run.step_succeeded("Require that CI reproduced the committed results"), run.log[-6000:]
    assert run.step_failed("Gate against the previous release"), run.log[-6000:]
    assert "(baseline: git:v1.0.0)" in run.log
    failed_rule = r"::error title=Acceptance gate::accuracy \S+ is below the minimum 0\.999"
    assert re.search(failed_rule, run.log), run.log[-6000:]
    # GitHub was only asked whether v1.1.0 exists; nothing was created, pushed or attested.
    assert [c["argv"][:3] for c in run.calls_of("gh")] == [["release", "view", "v1.1.0"]]
    assert not (run.stub_dir / "releases").exists()
    assert run.calls_of("attest") == [] and run.calls_of("docker") == []
    assert run.calls_of("upload-artifact") == []


def test_c_a_version_that_was_released_is_refused_before_anything_is_built(
    work: Path, main_repo: Path, maintainer: Path, first: dict[str, Any]
) -> None:
    """v1.0.0 re-pointed at a later commit of main (its release exists): stopped at once."""
    assert first["run"].returncode == 0
    git(maintainer, "fetch", "-q", str(main_repo), "+refs/heads/main:refs/remotes/origin/main")
    git(maintainer, "tag", "-d", "v1.0.0")
    released = {"tagName": "v1.0.0", "url": "https://github.com/acme/digits/releases/tag/v1.0.0"}
    run, sha = release(
        maintainer,
        "v1.0.0",
        work / "run-v1.0.0-again",
        gh_answers={"repos/acme/digits/releases/tags/v1.0.0": released},
    )
    assert sha != first["sha"]
    assert run.returncode != 0
    assert run.step_failed("Refuse a version that has a GitHub Release already"), run.log[-6000:]
    assert "acme/digits already has a release v1.0.0" in run.log
    assert [c["argv"][:3] for c in run.calls_of("gh")] == [["release", "view", "v1.0.0"]]
    assert "Running stage" not in run.log  # nothing trained, packaged or built
    assert run.calls_of("docker") == [] and run.calls_of("attest") == []
    assert run.calls_of("upload-artifact") == []
    assert not (run.stub_dir / "releases").exists()


def test_d_a_tag_off_main_stops_before_any_project_code(
    work: Path, maintainer: Path, first: dict[str, Any]
) -> None:
    assert first["run"].returncode == 0
    git(maintainer, "checkout", "-q", "-B", "unreviewed", "origin/main")
    (maintainer / "params.yaml").write_text(
        (maintainer / "params.yaml").read_text() + "\n# an unreviewed change\n"
    )
    git(maintainer, "commit", "-q", "-am", "Unreviewed change")
    sha = git(maintainer, "rev-parse", "HEAD")
    git(maintainer, "tag", "-a", "v9.0.0", "-m", "Release v9.0.0")
    git(maintainer, "checkout", "-q", "v9.0.0")
    payload = event_payload("push_tag", ref="refs/tags/v9.0.0", sha=sha)
    run = run_workflow(
        maintainer, "release.yml", "push", payload, work / "run-off-main", stubs=RELEASE_STUBS
    )
    assert run.returncode != 0
    assert run.step_failed("Require the tagged commit on the default branch"), run.log[-6000:]
    assert f"the tagged commit {sha} is not on main" in run.log
    # The tagged commit's own code never ran: no setup action, no `mlops`, no tool stand-in.
    assert run.calls == []
    assert "Set up the environment" not in run.log
    assert "mlops release" not in run.log


def main_step_index(run: ActRun, name: str) -> int:
    """Position in the log where the step `name` started (act prints `⭐ Run Main <name>`)."""
    lines = run.log.splitlines()
    return next(i for i, line in enumerate(lines) if "Run Main" in line and name in line)


def values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
