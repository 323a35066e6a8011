#!/usr/bin/env bash
# Pins the base images of a Dockerfile by digest, or checks that they are pinned.
#
#   scripts/pin-base-images.sh [--check] [--insecure] [DOCKERFILE]   (default: ./Dockerfile)
#
# Each `FROM image:tag` (not `scratch`, not an earlier stage) becomes
# `FROM image:tag@sha256:<digest>`, the digest of the manifest (or multi-platform index) the
# registry serves for the tag now, read with skopeo; a line pinned already is re-resolved, so
# running it again updates the pins. The tag stays for the reader; the digest is what pulls.
# --check changes nothing and fails when a base is not pinned. --insecure talks to the
# registry without TLS verification (a local test registry).
#
# It needs the registries: the development machines of this project reach none (the lookup of
# gcr.io and registry-1.docker.io fails), so the Dockerfile's bases are pinned where this runs
# with network; tests/image.rs runs it against a local registry.
set -euo pipefail
check=false
tls=()
file=Dockerfile
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check=true; shift ;;
        --insecure) tls=(--tls-verify=false); shift ;;
        -*) echo "pin-base-images.sh: unknown flag $1" >&2; exit 2 ;;
        *) file="$1"; shift ;;
    esac
done
[ -f "$file" ] || { echo "pin-base-images.sh: no $file" >&2; exit 2; }

stages=()
unpinned=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
    # FROM [--platform=…] IMAGE [AS NAME]
    if [[ "$line" =~ ^([[:space:]]*[Ff][Rr][Oo][Mm][[:space:]]+(--[^[:space:]]+[[:space:]]+)*)([^[:space:]]+)(.*)$ ]]; then
        head="${BASH_REMATCH[1]}"
        image="${BASH_REMATCH[3]}"
        rest="${BASH_REMATCH[4]}"
        base=true
        [ "$image" = scratch ] && base=false
        for s in "${stages[@]}"; do
            [ "$image" = "$s" ] && base=false
        done
        if [[ "$rest" =~ [[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+) ]]; then
            stages+=("${BASH_REMATCH[1]}")
        fi
        if $base; then
            tagged="${image%@*}"
            if $check; then
                [[ "$image" == *@sha256:* ]] || { echo "$file: $image is not pinned by digest" >&2; unpinned=$((unpinned + 1)); }
            else
                digest="sha256:$(skopeo inspect "${tls[@]}" --raw "docker://$tagged" | sha256sum | cut -d' ' -f1)"
                line="$head$tagged@$digest$rest"
                echo "$tagged -> $digest" >&2
            fi
        fi
    fi
    printf '%s\n' "$line" >> "$out"
done < "$file"
if $check; then
    [ "$unpinned" -eq 0 ] || exit 1
else
    cat "$out" > "$file"
fi
