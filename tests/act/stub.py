"""Stand-ins for what cannot run on this machine: GitHub's remote actions and API, CML, npm,
Docker (buildx) and the release actions (attest, docker login, setup-buildx).

Used by tests/act_harness.py: the stub actions in tests/act/actions/ and the executables in
tests/act/bin/ call `python3 stub.py <kind> [args...]`. Every call is appended to
$ACT_STUB_DIR/calls.jsonl (kind, argv, inputs, which secrets were present, files handed over),
so a test asserts on exactly what would have been sent. The artifact and cache stubs keep
their files under $ACT_STUB_DIR, a folder the test owns.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

STUB_DIR = Path(os.environ.get("ACT_STUB_DIR") or ".")


def log(kind: str, **fields: object) -> None:
    with (STUB_DIR / "calls.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"kind": kind, **fields}, sort_keys=True) + "\n")


def inputs() -> dict[str, str]:
    """The action inputs, which the stub action.yml passes as STUB_IN_<NAME> variables."""
    return {
        key[len("STUB_IN_") :].lower().replace("_", "-"): value
        for key, value in os.environ.items()
        if key.startswith("STUB_IN_")
    }


def output(name: str, value: str) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as handle:
        handle.write(f"{name}={value}\n")


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.name)


def setup_python() -> int:
    args = inputs()
    log("setup-python", inputs=args)
    output("python-version", args.get("python-version", ""))
    output("python-path", shutil.which("python3") or "")
    return 0


def setup_uv() -> int:
    log("setup-uv", inputs=inputs())
    return 0


def cache_restore(kind: str) -> int:
    """Restore `path` from $ACT_STUB_DIR/cache/<key> (exact), else the newest prefix match."""
    args = inputs()
    store = STUB_DIR / "cache"
    key = args["key"]
    prefixes = [p.strip() for p in args.get("restore-keys", "").splitlines() if p.strip()]
    hit, source = "false", None
    if (store / key).is_dir():
        hit, source = "true", store / key
    else:
        for prefix in prefixes:
            found = sorted(p for p in store.glob("*") if p.name.startswith(prefix))
            if found:
                source = found[-1]
                break
    if source is not None:
        _copy(source, Path(args["path"]))
    log(kind, inputs=args, restored=source.name if source else None)
    output("cache-hit", hit)
    return 0


def upload_artifact() -> int:
    args = inputs()
    src = Path(args["path"])
    dest = STUB_DIR / "artifacts" / args.get("name", "artifact")
    if not src.exists():
        log("upload-artifact", inputs=args, uploaded=False)
        if args.get("if-no-files-found") == "error":
            print(f"::error::No files were found with the provided path: {src}")
            return 1
        return 0
    _copy(src, dest)
    log("upload-artifact", inputs=args, uploaded=True)
    output("artifact-id", "1")
    return 0


def download_artifact() -> int:
    args = inputs()
    token = args.pop("github-token", "")
    src = STUB_DIR / "artifacts" / args.get("name", "artifact")
    log("download-artifact", inputs=args, token_given=bool(token), found=src.is_dir())
    if not src.is_dir():
        print(f"::error::Unable to download artifact(s): Artifact not found for name: {src.name}")
        return 1
    _copy(src, Path(args["path"]))
    return 0


def cml(argv: list[str]) -> int:
    """`cml comment update ... FILE` / `cml asset publish FILE`: record, answer like CML."""
    env = {
        "repo_token": bool(os.environ.get("REPO_TOKEN")),
        "do_not_track": os.environ.get("ITERATIVE_DO_NOT_TRACK"),
    }
    if argv[:2] == ["comment", "update"]:
        report = Path(argv[-1])
        log("cml", argv=argv, env=env, report=report.read_text(encoding="utf-8"))
        target = next((a for a in argv if a.startswith("--target=pr/")), "--target=pr/0")
        print(f"https://github.com/acme/digits/pull/{target.rsplit('/', 1)[1]}#issuecomment-1")
        return 0
    if argv[:2] == ["asset", "publish"]:
        log("cml", argv=argv, env=env)
        print(f"https://asset.cml.dev/stub-{Path(argv[-1]).name}")
        return 0
    log("cml", argv=argv, env=env)
    print(f"cml stub: unsupported command {argv}", file=sys.stderr)
    return 1


def gh(argv: list[str]) -> int:
    """`gh api repos/O/R/pulls/N`: answers from $ACT_STUB_DIR/gh/<path with / as _>.json."""
    if argv[:1] in (["issue"], ["label"]):
        return gh_issue(argv)
    log("gh", argv=argv, token=bool(os.environ.get("GH_TOKEN")))
    if os.environ.get("ACT_STUB_FAIL") == "gh":
        print("HTTP 401: Bad credentials (https://api.github.com/graphql)", file=sys.stderr)
        return 1
    if argv[:2] == ["release", "create"]:
        return gh_release_create(argv[2:])
    if argv[:2] == ["release", "view"]:
        return gh_release_view(argv[2:])
    if argv[:1] == ["api"] and len(argv) >= 2:
        answer = STUB_DIR / "gh" / (argv[1].replace("/", "_") + ".json")
        if answer.is_file():
            print(answer.read_text(encoding="utf-8"))
            return 0
    print("gh: Not Found (HTTP 404)", file=sys.stderr)
    return 1


# `gh release create` flags that take a value; the other flags are switches.
_GH_RELEASE_VALUE_FLAGS = {
    "--repo",
    "-R",
    "--title",
    "-t",
    "--notes",
    "-n",
    "--notes-file",
    "-F",
    "--target",
    "--discussion-category",
    "--notes-start-tag",
}


def _flag(argv: list[str], name: str) -> str | None:
    values = _flag_values(argv, name)
    return values[-1] if values else None


def gh_issue(argv: list[str]) -> int:
    """`gh issue list|create|edit|comment|close` and `gh label create` on a small issue store,
    $ACT_STUB_DIR/gh/issues.json (seeded by the test: `gh_answers={"issues": [...]}`), kept as
    GitHub keeps issues: numbered from 1, created by the token's bot, listed newest first. The
    call is recorded with the text of its --body-file."""
    store = STUB_DIR / "gh" / "issues.json"
    issues = json.loads(store.read_text(encoding="utf-8")) if store.is_file() else []
    body_file = _flag(argv, "--body-file")
    body = Path(body_file).read_text(encoding="utf-8") if body_file else None
    log("gh", argv=argv, token=bool(os.environ.get("GH_TOKEN")), body=body)
    verb = argv[:2]
    by_number = {str(issue["number"]): issue for issue in issues}
    if verb == ["label", "create"]:
        return 0
    if verb == ["issue", "list"]:
        label, state = _flag(argv, "--label"), _flag(argv, "--state") or "open"
        fields = (_flag(argv, "--json") or "number").split(",")
        found = [
            {key: issue.get(key) for key in fields}
            for issue in sorted(issues, key=lambda i: -i["number"])
            if label in issue["labels"] and state in ("all", issue["state"].lower())
        ]
        print(json.dumps(found[: int(_flag(argv, "--limit") or 30)]))
        return 0
    if verb == ["issue", "create"]:
        number = max((i["number"] for i in issues), default=0) + 1
        issues.append(
            {
                "number": number,
                "state": "OPEN",
                "author": {"login": "app/github-actions", "is_bot": True},
                "title": _flag(argv, "--title"),
                "labels": _flag_values(argv, "--label"),
                "body": body,
                "comments": [],
            }
        )
        print(f"https://github.com/acme/digits/issues/{number}")
    elif verb[0] == "issue" and len(argv) > 2 and argv[2] in by_number:
        issue = by_number[argv[2]]
        if verb[1] == "edit":
            issue["body"] = body if body is not None else issue["body"]
        elif verb[1] == "comment":
            issue["comments"].append(body)
        elif verb[1] == "close":
            issue["state"] = "CLOSED"
            if _flag(argv, "--comment"):
                issue["comments"].append(_flag(argv, "--comment"))
        else:
            print(f"gh stub: unsupported command {argv}", file=sys.stderr)
            return 1
    else:
        print("gh: Could not resolve to an issue (HTTP 404)", file=sys.stderr)
        return 1
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(issues, indent=2), encoding="utf-8")
    return 0


def gh_release_create(args: list[str]) -> int:
    """`gh release create TAG FILES... [flags]`: keeps a copy of the files the release would get
    in $ACT_STUB_DIR/releases/<TAG>/ (the call itself is already recorded)."""
    positional, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _GH_RELEASE_VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            positional.append(arg)
    tag, files = positional[0], positional[1:]
    dest = STUB_DIR / "releases" / tag
    dest.mkdir(parents=True)  # a second release of the same tag fails, as on GitHub
    for name in files:
        shutil.copy2(name, dest / Path(name).name)
    print(f"https://github.com/acme/digits/releases/tag/{tag}")
    return 0


def gh_release_view(args: list[str]) -> int:
    """`gh release view TAG --repo O/R [--json ...]`: a release exists when the test answered
    the REST path gh reads (repos/O/R/releases/tags/TAG) or this run created it."""
    tag = args[0]
    repo = _flag_values(args, "--repo")[0] if "--repo" in args else "acme/digits"
    answer = STUB_DIR / "gh" / f"repos_{repo.replace('/', '_')}_releases_tags_{tag}.json"
    if answer.is_file():
        print(answer.read_text(encoding="utf-8"))
        return 0
    if (STUB_DIR / "releases" / tag).is_dir():
        url = f"https://github.com/{repo}/releases/tag/{tag}"
        print(json.dumps({"tagName": tag, "url": url, "isDraft": False}))
        return 0
    print("release not found", file=sys.stderr)
    return 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def attest() -> int:
    """actions/attest: records the subjects, with each file's SHA256 for subject-path."""
    args = inputs()
    token = args.pop("github-token", "")
    files = {}
    for pattern in re.split(r"[,\n]", args.get("subject-path", "")):
        for match in sorted(glob.glob(pattern.strip())) if pattern.strip() else []:
            if Path(match).is_file():
                files[match] = _sha256(Path(match))
    log("attest", inputs=args, token_given=bool(token), files=files)
    output("attestation-id", "1")
    return 0


def docker_login() -> int:
    args = inputs()
    password = args.pop("password", "")
    log("docker-login", inputs=args, password_given=bool(password))
    return 0


def setup_buildx() -> int:
    log("setup-buildx", inputs=inputs())
    return 0


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def docker(argv: list[str]) -> int:
    """`docker` as `bentoml containerize --backend buildx` calls it: the version checks, then
    `buildx build`, whose argv, Dockerfile and build context are recorded; a pushed build gets
    a fake digest (of the Dockerfile and tags) in its --metadata-file, as buildx writes it."""
    if argv[:2] == ["version", "--format"]:
        print('"29.1.0"')
        return 0
    if argv == ["buildx", "--help"]:
        print("Usage:  docker buildx [OPTIONS] COMMAND\n  --builder string   Override the builder")
        return 0
    if argv == ["buildx", "version"]:
        print("github.com/docker/buildx v0.30.1 stub")
        return 0
    if argv[:3] == ["buildx", "imagetools", "inspect"]:
        return docker_inspect_remote(argv)
    handlers = {"image": docker_image, "run": docker_run, "rm": docker_rm, "logs": docker_logs}
    if argv[0] in handlers or argv[0] == "push":
        return docker_push(argv) if argv[0] == "push" else handlers[argv[0]](argv)
    if argv[:2] != ["buildx", "build"]:
        log("docker", argv=argv)
        print(f"docker stub: unsupported command {argv}", file=sys.stderr)
        return 1
    context = Path(argv[-1])
    dockerfile = Path(_flag_values(argv, "--file")[0])
    text = dockerfile.read_text(encoding="utf-8")
    files = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
    tags = _flag_values(argv, "--tag")
    digest = "sha256:" + hashlib.sha256((text + "\n".join(tags)).encode()).hexdigest()
    for metadata in _flag_values(argv, "--metadata-file"):
        Path(metadata).write_text(
            json.dumps({"containerimage.digest": digest, "image.name": ",".join(tags)})
        )
    pushed = "--push" in argv
    image_id = None
    if "--load" in argv:  # into the local store: its context is what `docker run` serves
        image_id = "sha256:" + hashlib.sha256((text + "\n".join(files)).encode()).hexdigest()
        shutil.copytree(context, _images() / image_id.split(":")[1], dirs_exist_ok=True)
        _save_tags({**_tags(), **dict.fromkeys(tags, image_id)})
    log(
        "docker",
        argv=argv,
        context=str(context),
        dockerfile=text,
        files=files,
        digest=digest if pushed else None,
        image_id=image_id,
    )
    return 0


# The local image store and the registry of the docker stand-in: a built image is its build
# context (a bento), `docker run` serves that bento with the host's `bentoml serve` on the
# published port, and `docker push` writes the tag into $ACT_STUB_DIR/registry/.


def _images() -> Path:
    (STUB_DIR / "images").mkdir(parents=True, exist_ok=True)
    return STUB_DIR / "images"


def _tags() -> dict[str, str]:
    path = _images() / "tags.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_tags(tags: dict[str, str]) -> None:
    (_images() / "tags.json").write_text(json.dumps(tags))


def _registry_entry(ref: str) -> Path:
    return STUB_DIR / "registry" / ref.replace("/", "_").replace(":", "_")


def _resolve(image: str) -> str | None:
    return image if image.startswith("sha256:") else _tags().get(image)


def docker_inspect_remote(argv: list[str]) -> int:
    log("docker", argv=argv)
    if os.environ.get("ACT_STUB_FAIL") == "docker":
        print("ERROR: failed to authorize: 401 Unauthorized", file=sys.stderr)
        return 1
    ref = argv[3]
    if _is_public(ref):  # a Docker Hub image (the release's base): its digest, as a manifest
        digest = "sha256:" + hashlib.sha256(f"public {ref}".encode()).hexdigest()
        manifest = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest}
        print(json.dumps(manifest) if "--format" in argv else f"Name: {ref}\nDigest: {digest}")
        return 0
    entry = _registry_entry(ref)
    if not entry.is_file():
        print(f"ERROR: {ref}: not found", file=sys.stderr)
        return 1
    print(f"Name:      {ref}\nDigest:    {entry.read_text().strip()}")
    return 0


def _is_public(ref: str) -> bool:
    """A Docker Hub reference (`python:3.11-slim`, `docker.io/...`): no registry host first."""
    first = ref.split("/")[0]
    return first == "docker.io" or "/" not in ref or not ("." in first or ":" in first)


def docker_image(argv: list[str]) -> int:
    """`docker image inspect --format {{.Id}} REF`."""
    log("docker", argv=argv)
    found = _resolve(argv[-1])
    if argv[1] != "inspect" or found is None:
        print(f"Error: No such image: {argv[-1]}", file=sys.stderr)
        return 1
    print(found)
    return 0


def docker_run(argv: list[str]) -> int:
    """`docker run --detach --publish 127.0.0.1:PORT:3000 IMAGE`: serve the image's bento."""
    log("docker", argv=argv)
    image_id = _resolve(argv[-1])
    if image_id is None:
        print(f"Unable to find image '{argv[-1]}' locally", file=sys.stderr)
        return 125
    host, port, _ = _flag_values(argv, "--publish")[0].split(":")
    containers = STUB_DIR / "containers"
    containers.mkdir(exist_ok=True)
    cid = hashlib.sha256(f"{image_id}{port}{os.getpid()}".encode()).hexdigest()
    bento = _images() / image_id.split(":")[1]
    with (containers / f"{cid}.log").open("wb") as out:
        serve = [shutil.which("bentoml") or "bentoml", "serve", str(bento)]
        process = subprocess.Popen(
            [*serve, "--host", host, "--port", port],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "true"},
            start_new_session=True,
        )
    (containers / f"{cid}.pid").write_text(str(process.pid))
    print(cid)
    return 0


def docker_rm(argv: list[str]) -> int:
    log("docker", argv=argv)
    pid_file = STUB_DIR / "containers" / f"{argv[-1]}.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()
    print(argv[-1])
    return 0


def docker_logs(argv: list[str]) -> int:
    log("docker", argv=argv)
    path = STUB_DIR / "containers" / f"{argv[-1]}.log"
    print(path.read_text(errors="replace") if path.exists() else "")
    return 0


def docker_push(argv: list[str]) -> int:
    """`docker push REF`: the registry gets the tag; answers like docker, with a digest."""
    ref = argv[-1]
    image_id = _resolve(ref)
    if image_id is None:
        log("docker", argv=argv, image_id=None, digest=None)
        print(f"An image does not exist locally with the tag: {ref}", file=sys.stderr)
        return 1
    digest = "sha256:" + hashlib.sha256(f"{image_id}{ref}".encode()).hexdigest()
    entry = _registry_entry(ref)
    entry.parent.mkdir(exist_ok=True)
    entry.write_text(digest)
    log("docker", argv=argv, image_id=image_id, digest=digest)
    name, _, tag = ref.rpartition(":")
    print(f"The push refers to repository [{name}]\n{tag}: digest: {digest} size: 1234")
    return 0


def npm(argv: list[str]) -> int:
    log("npm", argv=argv)
    return 0


# --------------------------------------------------------------------------- deploy (deploy.yml)


def gh_deploy(argv: list[str]) -> int:
    """`gh release download TAG --dir D` copies $ACT_STUB_DIR/releases/TAG/ (seeded by the test or
    made by `gh release create`); `gh attestation verify FILE|oci://IMAGE:TAG` succeeds for the
    file hashes and images listed in $ACT_STUB_DIR/attested.json ({"files": [sha256, ...],
    "images": {"IMAGE:TAG": "sha256:..."}}), answering an image as gh's JSON does."""
    log("gh", argv=argv, token=bool(os.environ.get("GH_TOKEN")))
    if argv[:2] == ["release", "download"]:
        source = STUB_DIR / "releases" / argv[2]
        if not source.is_dir():
            print("release not found", file=sys.stderr)
            return 1
        dest = Path(_flag_values(argv, "--dir")[0])
        dest.mkdir(parents=True, exist_ok=True)
        for path in source.iterdir():
            shutil.copy2(path, dest / path.name)
        return 0
    attested = STUB_DIR / "attested.json"
    known = json.loads(attested.read_text()) if attested.is_file() else {}
    subject = argv[2]
    if subject.startswith("oci://"):
        digest = (known.get("images") or {}).get(subject[len("oci://") :])
        if digest is None:
            print(f"Error: no attestations found for {subject}", file=sys.stderr)
            return 1
        name = subject[len("oci://") :].rsplit(":", 1)[0]
        statement = {"subject": [{"name": name, "digest": {"sha256": digest.split(":", 1)[1]}}]}
        print(json.dumps([{"verificationResult": {"statement": statement}}]))
        return 0
    if _sha256(Path(subject)) not in (known.get("files") or []):
        print(f"Error: no attestations found for {subject}", file=sys.stderr)
        return 1
    print("Verification succeeded!")
    return 0


def kubectl(argv: list[str]) -> int:
    """`kubectl apply -f DIR` records every manifest's text (the cluster that is not here);
    `kubectl rollout status` succeeds."""
    if argv[:1] == ["apply"]:
        folder = Path(_flag_values(argv, "-f")[0])
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
        log("kubectl", argv=argv, files=files, kubeconfig=os.environ.get("KUBECONFIG"))
        return 0
    log("kubectl", argv=argv, kubeconfig=os.environ.get("KUBECONFIG"))
    if argv[:2] == ["rollout", "status"]:
        print(f"{argv[2]} successfully rolled out")
        return 0
    print(f"kubectl stub: unsupported command {argv}", file=sys.stderr)
    return 1


def main() -> int:
    kind, argv = sys.argv[1], sys.argv[2:]
    if kind in ("cache", "cache-restore"):
        return cache_restore(kind)
    handlers = {
        "setup-python": setup_python,
        "setup-uv": setup_uv,
        "upload-artifact": upload_artifact,
        "download-artifact": download_artifact,
        "attest": attest,
        "docker-login": docker_login,
        "setup-buildx": setup_buildx,
    }
    if kind in handlers:
        return handlers[kind]()
    if kind == "gh" and argv[:2] in (["release", "download"], ["attestation", "verify"]):
        return gh_deploy(argv)
    if kind == "kubectl":
        return kubectl(argv)
    return {"cml": cml, "gh": gh, "npm": npm, "docker": docker}[kind](argv)


if __name__ == "__main__":
    sys.exit(main())
