#!/usr/bin/env bash
# The project's test command (README): installs the Python tools the tests drive, checks
# formatting and lints, runs every Rust test, and runs Linkerd's conformance subset from the
# shared folder beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --release --locked
cargo test --release --locked
python3 -m pytest -q tests/chart

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
    echo "conformance data not found at $conformance (the shared folder beside the checkout)" >&2
    exit 1
fi
