#!/usr/bin/env bash
# The whole test suite, as the README states it: formatting, lints, generated files, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export K3SCTL_KUBECTL="${K3SCTL_KUBECTL:-$(scripts/ensure-kubectl.sh)}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Generated files must match the code they come from.
cargo run --quiet --locked -p xtask -- schema --check
cargo run --quiet --locked -p xtask -- cli-ref --check
cargo test --workspace --locked --no-fail-fast
