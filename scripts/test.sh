#!/usr/bin/env bash
# The project's test command (README): installs the Python tools the tests drive into a
# virtualenv of its own (.venv/, git-ignored: distributions that follow PEP 668 refuse installs
# into the system interpreter), checks formatting and lints, runs every Rust test of the
# workspace (the core crate and the CLI + webhook crate) and the chart tests, then Linkerd's
# conformance subset when its data is beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python3" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# The image is built and run without a daemon (scripts/image.sh, tests/image.rs): buildah builds
# it, umoci unpacks it, and scripts/pin-base-images.sh (skopeo) is tried on a local registry
# (docker-registry); all from Debian's packages.
missing=()
for tool in buildah umoci skopeo docker-registry; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Microsoft's SARIF validator (the SARIF SDK's Sarif.Multitool, with the SARIF 2.1.0 schema it
# ships) checks `check -o sarif`; it comes from the npm registry, pinned by
# tests/support/package-lock.json, into tests/support/node_modules (git-ignored).
npm ci --prefix tests/support --ignore-scripts --no-audit --no-fund --loglevel=error
# The package's one install script makes its binary executable; scripts are not run, so:
chmod u+x tests/support/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
# The Rust tests start `python3` (patch checks, schema validation, the HTTPS input server):
# the virtualenv's comes first.
export PATH="$PWD/$venv/bin:$PATH"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --release --locked
cargo test --workspace --release --locked
python3 -m pytest -q tests/chart

# Linkerd's golden files are reference data, not project content: they are not in the
# repository. CI checks the project out beside them (../shared/conformance); on a clone with
# nothing beside it the project's own fixtures (tests/fixtures) carry the behaviour.
conformance=../shared/conformance
if [ -f "$conformance/run.py" ]; then
    report=$(python3 "$conformance/run.py" --data "$conformance/linkerd-edge-26.8.3" \
        --cli target/release/proxy-injector)
    echo "$report"
    result=$(echo "$report" | tail -n 1)
    case "$result" in
        *" passed, 0 failed") ;;
        *) echo "conformance: $result" >&2; exit 1 ;;
    esac
else
    echo "conformance: SKIPPED — Linkerd's golden files are not at $conformance" \
        "(they are kept outside the repository; CI places them there)." >&2
fi
