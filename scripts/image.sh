#!/usr/bin/env bash
# Builds the container image without a registry or a daemon, as an OCI image layout.
#
#   scripts/image.sh [--binary PATH] [--out DIR] [--tag TAG]
#
# The Dockerfile at the repository's root builds in `rust:…-bookworm` and runs on
# `distroless/cc-debian12`, which need a container registry. This script makes the same
# runtime image from a binary built here (default: target/release/proxy-injector): it stages
# the binary, the shared libraries it links (from `ldd`, so exactly those), the CA bundle and
# the non-root user 65532, then builds packaging/image/Containerfile with buildah (vfs storage,
# chroot isolation: no daemon, no privileges beyond root's files). The output is an OCI layout
# (DIR, default target/image) with the image under TAG (default: the crate's version), and the
# Debian packages the libraries come from are recorded as an image label. Timestamps are
# zeroed, so the same binary and libraries give the same image digest.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
binary="$repo/target/release/proxy-injector"
out="$repo/target/image"
tag=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
for tool in buildah ldd dpkg-query; do
    command -v "$tool" >/dev/null || { echo "image.sh: $tool is not installed (scripts/test.sh installs buildah)" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "image.sh: no binary at $binary (cargo build --release)" >&2; exit 1; }
version="$("$binary" --version | awk '{print $2}')"
tag="${tag:-$version}"

work="$(mktemp -d)"
trap 'buildah "${store[@]}" rmi --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
store=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
ctx="$work/context"
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home" "$ctx/nonroot"
chmod 1777 "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/proxy-injector"

# The libraries the binary links, and the dynamic loader, at the paths ldd resolves them to.
packages=()
while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    owner="$(dpkg-query -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)" || true
    [ -n "$owner" ] && packages+=("$owner=$(dpkg-query -W -f '${Version}' "$owner")")
done < <(ldd "$binary" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}')
# Remote inputs (`inject https://…`) verify against the system's roots, as on distroless.
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
packages+=("ca-certificates=$(dpkg-query -W -f '${Version}' ca-certificates)")
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
cp "$repo/packaging/image/Containerfile" "$ctx/Containerfile"

sorted="$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd ' ')"
buildah "${store[@]}" bud --quiet --isolation chroot --timestamp 0 \
    --label "org.opencontainers.image.title=proxy-injector" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    --label "io.proxy-injector.runtime-packages=$sorted" \
    -f "$ctx/Containerfile" -t "localhost/proxy-injector:$tag" "$ctx" >/dev/null
mkdir -p "$out"
buildah "${store[@]}" push --quiet "localhost/proxy-injector:$tag" "oci:$out:$tag"
echo "$out:$tag"
