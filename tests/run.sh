#!/usr/bin/env bash
# The one test command (README): formatting, lints, then every test tier.
# Run from anywhere; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> unit and end-to-end tests (embedded gateway, in-memory store)"
cargo test --workspace --locked
