#!/usr/bin/env bash
# The emulator tier: starts MiniStack (installing it into localstack/.venv on first use) on a
# free 127.0.0.1 port, runs every test that needs DynamoDB with MESSENGER_DYNAMODB_ENDPOINT set,
# and stops MiniStack however the tests end. Extra arguments go to `cargo test`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ministack="$root/localstack/ministack"

endpoint="$("$ministack" start)"
trap '"$ministack" stop' EXIT
echo "emulator: MiniStack at $endpoint" >&2
export MESSENGER_DYNAMODB_ENDPOINT="$endpoint"

packages=(-p messenger-aws)
for f in "$root"/functions/*/Cargo.toml; do
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$f" | head -n1)")
done
cd "$root"
cargo test "${packages[@]}" "$@"
