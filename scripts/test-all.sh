#!/usr/bin/env bash
# The whole test suite, as the README states it: formatting, lints, generated files, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export K3SCTL_KUBECTL="${K3SCTL_KUBECTL:-$(scripts/ensure-kubectl.sh)}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
