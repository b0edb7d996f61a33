"""`mlops release checksums DIR`: a SHA256SUMS file for the release assets.

The format is GNU coreutils' (`<sha256>  <path>`, paths relative to DIR, sorted), so anyone can
verify a download with `sha256sum -c SHA256SUMS` inside that directory. Dotfiles (temp files of
an interrupted write) and the sums file itself are left out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlops_template.errors import UserError
from mlops_template.files import write_text_atomic

SUMS_FILE = "SHA256SUMS"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def release_files(directory: Path, sums_name: str = SUMS_FILE) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.name != sums_name
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def write_checksums(directory: Path, sums_name: str = SUMS_FILE) -> Path:
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory", "pass the release assets directory")
    files = release_files(directory, sums_name)
    if not files:
        raise UserError(f"{directory} holds no files to checksum", "build the release first")
    lines = [f"{sha256_file(p)}  {p.relative_to(directory).as_posix()}" for p in files]
    target = directory / sums_name
    write_text_atomic(target, "\n".join(lines) + "\n")
    return target
