#!/usr/bin/env bash
# Every check a change must pass, the way CI runs it on a clean checkout:
# tools (Python venv with moto, cfn-lint, aws-sam-cli, cargo-lambda; npm asl-validator), formatting,
# lints, infrastructure lint, the whole test suite with a moto server as the local AWS endpoint,
# and the deployment build (`sam build`: the three arm64 bootstrap binaries).
# RUNBRIDGE_SKIP_SAM_BUILD=1 skips the last step for a quick local loop.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test tools"
bash scripts/install-tools.sh --with-arm64

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "infrastructure lint (cfn-lint, sam validate --lint, asl-validator, policy scan)"
bash scripts/lint-infra.sh

if [ -f scripts/moto.sh ]; then
  step "starting moto (local AWS endpoint)"
  eval "$(bash scripts/moto.sh start)"
  trap 'bash scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
fi

step "cargo test --workspace"
cargo test --workspace --locked --no-fail-fast

if [ "${RUNBRIDGE_SKIP_SAM_BUILD:-0}" != 1 ]; then
  step "sam build (arm64 bootstraps for provided.al2023)"
  bash scripts/sam-build.sh
fi
