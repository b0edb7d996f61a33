#!/usr/bin/env bash
# The local base image the container tests build the release's image from (podman, no Docker,
# no registry): Debian bookworm minbase (debootstrap, from this machine's apt mirror) with
# python3 (3.11), the CA certificates this machine trusts (a TLS-inspecting proxy's too: the
# image's build installs from PyPI) and the project's uv binary (the pinned version, so
# BentoML's Dockerfile skips its unpinned `pip install uv`). Tests refer to it by digest only.
#
# Usage: tools/build-test-base-image.sh [IMAGE]    (as root; prints IMAGE@sha256:...)
# Idempotent: an existing IMAGE is reused. `make test-tools` runs it.
set -euo pipefail

IMAGE="${1:-localhost/mlops-test-base:py3.11}"
SUITE=bookworm
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)

pinned() {
    local digest
    digest="$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$IMAGE")"
    echo "${IMAGE%:*}@${digest}"
}

if "${PODMAN[@]}" image exists "$IMAGE"; then
    pinned
    exit 0
fi
for tool in debootstrap podman uv; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (make test-tools)" >&2; exit 1; }
done

# The Debian mirror apt uses here (deb822 or one-line sources), else Debian's own.
mirror="$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | awk '{print $2}' | grep -m1 '/debian/\?$' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

work="$(mktemp -d /var/tmp/mlops-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
fi
chroot "$work/rootfs" update-ca-certificates >/dev/null
install -m 0755 "$(command -v uv)" "$work/rootfs/usr/local/bin/uv"
chroot "$work/rootfs" apt-get clean
rm -rf "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"${PODMAN[@]}" import \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "built $IMAGE in $((SECONDS - started)) s" >&2
pinned
