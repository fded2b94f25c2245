#!/usr/bin/env bash
# The one test command (README): formatting and lints, then every test tier.
#   1. unit tests, the port contract on the in-memory store, the bench smoke test;
#   2. the emulator tier: MiniStack (installed into localstack/.venv on first use, pinned in
#      localstack/requirements.txt) on a free 127.0.0.1 port; the contract suite, request counts
#      and the route binaries on DynamoDB; topic events on MiniStack's SNS, pushes read back from
#      moto's (localstack/.venv-moto, requirements-moto.txt); messenger-local processes racing
#      over one set of tables, and one SIGKILLed mid-burst (localstack/messenger-local/tests);
#   3. the end-to-end WebSocket scenarios through the embedded gateway, once over the in-memory
#      store and once over DynamoDB on MiniStack;
#   4. the clients (clients/ci): docs/asyncapi.yaml through the AsyncAPI parser and tsc --strict
#      over the SDK and the web app (right after the lints); then the SDK tests and the browser
#      test (Debian's chromium, installed when missing) against messenger-local. npm packages
#      are pinned in clients/package-lock.json and installed with `npm ci` on first use;
#   5. the deploy tier: cfn-lint on infra/template.yaml (pinned in infra/requirements.txt,
#      installed into infra/.venv on first use), the IaC scanner checkov on it (pinned with its
#      dependencies in infra/requirements-scan.txt, in infra/.venv-checkov), the deploy script's
#      own tests (no cloud: the development secret refused for AWS, every S3 call naming the
#      bucket's owner), then the template deployed on the same MiniStack with the real (debug,
#      host) Lambda binaries, driven by WebSocket clients (every route of the route table): once
#      with development tokens, once with its own Cognito user pool (Identity=cognito).
# MiniStack is stopped however the run ends. Exits non-zero on the first failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The deployed-stack test is `test = false` (it runs only in tier 5), so --all-targets skips it.
cargo clippy --locked -p messenger-e2e --test deployed -- -D warnings
# The README's run command builds messenger-local with its default features (no DynamoDB);
# the workspace build above unifies the `dynamodb` feature on, so check that build on its own.
cargo clippy --locked -p messenger-local --bins -- -D warnings

echo "==> clients: npm ci, chromium, the AsyncAPI spec, tsc --strict"
clients/ci setup
clients/ci check

echo "==> cfn-lint infra/template.yaml"
infra/lint
echo "==> checkov infra/template.yaml (IaC scan)"
infra/scan
echo "==> infra/deploy.py's own tests"
infra/.venv/bin/python -m unittest discover -s infra -p 'test_*.py'

echo "==> starting MiniStack and moto"
trap 'localstack/ministack stop; localstack/moto stop' EXIT
# IAM enforced: the deployed stack's functions run with their roles' credentials, so a
# permission missing from infra/template.yaml fails the deploy tier.
MESSENGER_DYNAMODB_ENDPOINT="$(localstack/ministack start --enforce-iam)"
MESSENGER_MOTO_ENDPOINT="$(localstack/moto start)"
export MESSENGER_DYNAMODB_ENDPOINT MESSENGER_MOTO_ENDPOINT
echo "    MiniStack at $MESSENGER_DYNAMODB_ENDPOINT (DynamoDB, SNS, SQS), moto at $MESSENGER_MOTO_ENDPOINT (SNS, SQS: what devices were sent)"

echo "==> unit, contract (in-memory and DynamoDB), route binaries, e2e over the in-memory store"
MESSENGER_E2E_STORE=memory cargo test --workspace --locked

echo "==> e2e WebSocket scenarios over DynamoDB on MiniStack"
MESSENGER_E2E_STORE=dynamodb cargo test --locked -p messenger-e2e

echo "==> clients: SDK tests and the browser test against messenger-local"
clients/ci test

echo "==> deploy tier: infra/template.yaml on MiniStack, WebSocket scenarios through it"
# The function binaries the stack runs: already built by the tests above, so this is a no-op
# that makes sure they are current.
cargo build --locked --workspace --bins
cargo test --locked -p messenger-e2e --test deployed
