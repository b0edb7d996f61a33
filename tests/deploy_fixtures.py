"""What the deploy tests share: a GitHub Release's files as the release workflow publishes them
(a .bento whose bento.yaml names the model, the model card, the verdict, SHA256SUMS), and a git
repo holding GTO release tags, with a bare `origin` to push to."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import yaml
from act_harness import GIT_IDENTITY, clean_env

from mlops_template.release.checksums import write_checksums


def write_bento(path: Path, name: str, version: str, model_tag: str) -> Path:
    """A .bento archive with the bento.yaml and README.md `bentoml export` writes."""
    info = {"name": name, "version": version, "labels": {"model-tag": model_tag}}
    with tarfile.open(path, "w:gz") as archive:
        for member, text in (("bento.yaml", yaml.safe_dump(info)), ("README.md", "a model\n")):
            data = text.encode()
            entry = tarfile.TarInfo(f"./{member}")
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return path


def write_release(folder: Path, project: str, version: str, model_tag: str) -> Path:
    """folder/<project>@<version>/ with the release's files and SHA256SUMS."""
    target = folder / f"{project}@{version}"
    target.mkdir(parents=True)
    write_bento(
        target / f"{project}-service-{version}.bento", f"{project}-service", version, model_tag
    )
    (target / "MODEL_CARD.md").write_text(f"# Model card: {project} {version}\n")
    (target / "gate-verdict.json").write_text(json.dumps({"accepted": True}))
    write_checksums(target)
    return target


def image_digest(image: str, version: str) -> str:
    """A stand-in registry digest for IMAGE:VERSION (stable, distinct per version)."""
    return "sha256:" + hashlib.sha256(f"{image}:{version}".encode()).hexdigest()


def attest(stub_dir: Path, releases: list[Path], images: dict[str, str]) -> None:
    """What GitHub holds attestations for: every release file, and the images (ref -> digest)."""
    files = [
        hashlib.sha256(p.read_bytes()).hexdigest() for r in releases for p in sorted(r.iterdir())
    ]
    (stub_dir / "attested.json").write_text(json.dumps({"files": files, "images": images}))


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=clean_env({**GIT_IDENTITY, **(env or {})}),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def registry_repo(root: Path, project: str, versions: list[str]) -> Path:
    """A git repo with one commit and one annotated GTO release tag (<project>@V) per version,
    and a bare `origin` holding main and the tags."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for version in versions:
        git(repo, "commit", "-q", "--allow-empty", "-m", f"work for {version}")
        git(repo, "tag", "-a", f"{project}@{version}", "-m", f"Release {version}")
    git(root, "init", "-q", "--bare", "origin.git")
    git(repo, "remote", "add", "origin", str(root / "origin.git"))
    git(repo, "push", "-q", "origin", "main", "--tags")
    return repo
