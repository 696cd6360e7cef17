#!/usr/bin/env bash
# Builds the three Lambda functions as SAM does for a deployment, then checks the result.
#
#   bash scripts/sam-build.sh [extra sam build arguments]
#
# Runs `sam build --beta-features` (BuildMethod rust-cargolambda: cargo-lambda cross-compiles
# release binaries for arm64 with zig as the linker; no Docker) from the repository root with
# samconfig.toml, then checks that .aws-sam/build/{Trigger,Poll,Collect}Function/bootstrap
# exist and are aarch64 ELF executables, and prints their sizes and the elapsed time.
# Needs .venv from scripts/install-tools.sh (sam, cargo-lambda, ziglang) and rustup.
# CARGO_TARGET_DIR is honoured (cargo-lambda and SAM both ask cargo where the target dir is).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FUNCTIONS=(TriggerFunction PollFunction CollectFunction)
TARGET="aarch64-unknown-linux-gnu"

log() { printf '[sam-build] %s\n' "$*"; }
die() { printf '[sam-build] ERROR: %s\n' "$*" >&2; exit 1; }

export PATH="$ROOT/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
for tool in sam cargo-lambda cargo rustup; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run: bash scripts/install-tools.sh --with-arm64"
done
"$ROOT/.venv/bin/python" -m ziglang version >/dev/null 2>&1 || die "ziglang missing from .venv; run: bash scripts/install-tools.sh"
if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "rustup target add $TARGET"
    rustup target add "$TARGET"
fi

start=$(date +%s)
log "sam build --beta-features $* (release, arm64; several minutes when cold)"
sam build --beta-features "$@"
elapsed=$(( $(date +%s) - start ))

# An ELF header: magic 7f 45 4c 46, class 2 (64-bit) at byte 4, e_machine 0xb7 (AArch64) at
# bytes 18-19 (little endian).
is_aarch64_elf() {
    local header
    header="$(od -An -tx1 -N20 "$1" | tr -d ' \n')"
    [[ "${header:0:8}" == "7f454c46" && "${header:8:2}" == "02" && "${header:36:4}" == "b700" ]]
}

status=0
for fn in "${FUNCTIONS[@]}"; do
    bin=".aws-sam/build/$fn/bootstrap"
    if [[ ! -f "$bin" ]]; then
        printf '[sam-build] %-16s MISSING %s\n' "$fn" "$bin" >&2
        status=1
    elif ! is_aarch64_elf "$bin"; then
        printf '[sam-build] %-16s NOT an aarch64 ELF: %s\n' "$fn" "$(od -An -tx1 -N20 "$bin")" >&2
        status=1
    else
        printf '[sam-build] %-16s %6.1f MiB  %s (aarch64 ELF)\n' "$fn" "$(awk "BEGIN{print $(stat -c %s "$bin")/1048576}")" "$bin"
    fi
done
log "elapsed: ${elapsed} s"
exit "$status"
