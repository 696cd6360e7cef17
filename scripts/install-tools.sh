#!/usr/bin/env bash
# Installs the tools runbridge's infra checks, local emulation and Lambda builds need, into the
# repository (nothing global except an optional rustup target). Safe to run again and again:
# when everything is in place it only compares its stamps and exits.
#
#   .venv/          python3 -m venv with the pins in scripts/requirements-tools.txt
#                   (moto[server], cfn-lint, aws-sam-cli, awscli, cargo-lambda, ziglang)
#   .venv-policy/   python3 -m venv with scripts/requirements-policy.txt (checkov, the policy
#                   scanner; apart from .venv because its exact boto3 pin conflicts with sam's)
#   node_modules/   asl-validator, from package.json / package-lock.json at the root (npm ci)
#   rustup target   aarch64-unknown-linux-gnu, only with --with-arm64 (for `sam build` on arm64)
#   bench/.tools/   s3s-fs 0.14.1 (cargo install, its own build dir under target/): an S3 endpoint
#                   that verifies CRC-64/NVME checksums, for the checksum test and the benchmarks
#
# Usage: bash scripts/install-tools.sh [--with-arm64] [--force]
#   --with-arm64  also add the aarch64-unknown-linux-gnu Rust target
#   --force       ignore the stamps and reinstall the Python and npm tools
# Environment: PYTHON (default python3; needs >= 3.10).
#
# No Docker is needed or installed. Only PyPI, npm and crates.io/rustup are contacted.
# Afterwards: export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
# (.venv-policy/bin stays off PATH: scripts/lint-infra.sh calls its checkov by path.)

set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="$ROOT/scripts/requirements-tools.txt"
VENV="$ROOT/.venv"
PY_STAMP="$VENV/.runbridge-tools.stamp"
POLICY_REQS="$ROOT/scripts/requirements-policy.txt"
POLICY_VENV="$ROOT/.venv-policy"
POLICY_STAMP="$POLICY_VENV/.runbridge-tools.stamp"
NODE_STAMP="$ROOT/node_modules/.runbridge-tools.stamp"
ARM64_TARGET="aarch64-unknown-linux-gnu"
PYTHON="${PYTHON:-python3}"

log() { printf '[install-tools] %s\n' "$*"; }
die() { printf '[install-tools] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "[install-tools] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

with_arm64=0
force=0
for arg in "$@"; do
    case "$arg" in
        --with-arm64) with_arm64=1 ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

start=$(date +%s)
cd "$ROOT"
[[ -f "$REQS" ]] || die "missing $REQS"

# One installer at a time per checkout (CI and a developer's shell may overlap).
if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/runbridge-install-tools.$(printf '%s' "$ROOT" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock -w 900 9 || die "another install-tools.sh holds $lock for more than 15 minutes"
fi

# ---------------------------------------------------------------- Python tools (.venv) ------
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python >= 3.10 or set PYTHON"
py_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$PYTHON is $py_version; aws-sam-cli, moto and awscli need >= 3.10"

# The stamp is the requirements file's hash plus the interpreter version the venv was made with.
want_py_stamp="$(sha256sum "$REQS" | cut -d' ' -f1) python-$py_version"
# Executables the pins must provide; a missing one means a broken venv, whatever the stamp says.
py_tools=(python moto_server cfn-lint sam aws cargo-lambda)

py_ok=1
[[ $force -eq 0 && -f "$PY_STAMP" && "$(cat "$PY_STAMP")" == "$want_py_stamp" ]] || py_ok=0
for t in "${py_tools[@]}"; do [[ -x "$VENV/bin/$t" ]] || py_ok=0; done

if [[ $py_ok -eq 1 ]]; then
    log "python tools: up to date ($VENV, stamp ${want_py_stamp:0:12}…)"
else
    if [[ -d "$VENV" ]]; then
        venv_version="$("$VENV/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)"
        if [[ "$venv_version" != "$py_version" ]]; then
            log "python tools: $VENV was made with '${venv_version:-a broken interpreter}', not $py_version; recreating it"
            rm -rf "$VENV"
        fi
    fi
    if [[ ! -d "$VENV" ]]; then
        log "python tools: creating $VENV with $PYTHON ($py_version)"
        "$PYTHON" -m venv "$VENV"
    fi
    rm -f "$PY_STAMP"
    log "python tools: pip install -r ${REQS#"$ROOT"/} (a few minutes when cold)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$REQS"
    log "python tools: pip check"
    "$VENV/bin/python" -m pip check --disable-pip-version-check
    for t in "${py_tools[@]}"; do
        [[ -x "$VENV/bin/$t" ]] || die "$VENV/bin/$t missing after installing ${REQS#"$ROOT"/}"
    done
    "$VENV/bin/python" -m ziglang version >/dev/null || die "ziglang installed but 'python -m ziglang version' fails"
    printf '%s\n' "$want_py_stamp" > "$PY_STAMP"
    log "python tools: installed: sam $("$VENV/bin/sam" --version | awk '{print $NF}'), $("$VENV/bin/cfn-lint" --version), moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'), $("$VENV/bin/cargo-lambda" lambda --version), zig $("$VENV/bin/python" -m ziglang version)"
fi

# ---------------------------------------------------------------- policy scanner (.venv-policy) -
[[ -f "$POLICY_REQS" ]] || die "missing $POLICY_REQS"
want_policy_stamp="$(sha256sum "$POLICY_REQS" | cut -d' ' -f1) python-$py_version"
if [[ $force -eq 0 && -f "$POLICY_STAMP" && "$(cat "$POLICY_STAMP")" == "$want_policy_stamp" && -x "$POLICY_VENV/bin/checkov" ]]; then
    log "policy scanner: up to date ($POLICY_VENV, stamp ${want_policy_stamp:0:12}…)"
else
    # Recreated whole: it holds one tool and its dependencies, nothing worth keeping.
    rm -rf "$POLICY_VENV"
    log "policy scanner: creating $POLICY_VENV, pip install -r ${POLICY_REQS#"$ROOT"/} (a minute or two when cold)"
    "$PYTHON" -m venv "$POLICY_VENV"
    "$POLICY_VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$POLICY_REQS"
    "$POLICY_VENV/bin/python" -m pip check --disable-pip-version-check
    [[ -x "$POLICY_VENV/bin/checkov" ]] || die "$POLICY_VENV/bin/checkov missing after installing ${POLICY_REQS#"$ROOT"/}"
    printf '%s\n' "$want_policy_stamp" > "$POLICY_STAMP"
    log "policy scanner: installed checkov $("$POLICY_VENV/bin/python" -c 'from checkov.version import version; print(version)')"
fi

# ---------------------------------------------------------------- npm tools (node_modules) ---
command -v node >/dev/null 2>&1 || die "node not found; asl-validator needs Node.js (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm)"
[[ -f "$ROOT/package.json" ]] || die "missing $ROOT/package.json (it pins asl-validator as a devDependency)"

node_ok=1
if [[ -f "$ROOT/package-lock.json" ]]; then
    want_node_stamp="$(cat "$ROOT/package.json" "$ROOT/package-lock.json" | sha256sum | cut -d' ' -f1) node-$(node --version)"
    [[ $force -eq 0 && -f "$NODE_STAMP" && "$(cat "$NODE_STAMP")" == "$want_node_stamp" ]] || node_ok=0
else
    node_ok=0
fi
[[ -x "$ROOT/node_modules/.bin/asl-validator" ]] || node_ok=0

if [[ $node_ok -eq 1 ]]; then
    log "npm tools: up to date (node_modules, stamp ${want_node_stamp:0:12}…)"
else
    rm -f "$NODE_STAMP"
    if [[ -f "$ROOT/package-lock.json" ]]; then
        log "npm tools: npm ci (from package-lock.json)"
        npm ci --no-audit --no-fund --loglevel=error
    else
        log "npm tools: no package-lock.json yet: npm install (writes the lock; commit it)"
        npm install --no-audit --no-fund --loglevel=error
    fi
    [[ -x "$ROOT/node_modules/.bin/asl-validator" ]] || die "node_modules/.bin/asl-validator missing after npm install"
    want_node_stamp="$(cat "$ROOT/package.json" "$ROOT/package-lock.json" | sha256sum | cut -d' ' -f1) node-$(node --version)"
    printf '%s\n' "$want_node_stamp" > "$NODE_STAMP"
    log "npm tools: installed asl-validator $(node -p 'require("./node_modules/asl-validator/package.json").version')"
fi

# ---------------------------------------------------------------- Rust arm64 target ---------
if [[ $with_arm64 -eq 1 ]]; then
    command -v rustup >/dev/null 2>&1 || die "--with-arm64 needs rustup"
    if rustup target list --installed | grep -qx "$ARM64_TARGET"; then
        log "rust: target $ARM64_TARGET already installed"
    else
        log "rust: rustup target add $ARM64_TARGET"
        rustup target add "$ARM64_TARGET"
    fi
else
    log "rust: skipping $ARM64_TARGET (pass --with-arm64 before 'sam build')"
fi

# ---------------------------------------------------------------- s3s-fs ---------------------
# moto computes checksums but never refuses a mismatch; s3s-fs does (PutObject), so the test that
# S3 refuses a wrong CRC-64/NVME runs against it. 0.14.1 is the last s3s-fs that builds on Rust
# 1.95; its own build dir keeps it apart from the workspace's.
S3S_FS="$ROOT/bench/.tools/bin/s3s-fs"
if [[ -x "$S3S_FS" ]]; then
    log "s3s-fs: already installed ($S3S_FS)"
else
    log "s3s-fs: cargo install s3s-fs@0.14.1 (a few minutes when cold)"
    CARGO_TARGET_DIR="$ROOT/target/s3s-install" \
        cargo install s3s-fs@0.14.1 --features binary --locked --root "$ROOT/bench/.tools" --quiet
    [[ -x "$S3S_FS" ]] || die "s3s-fs missing after cargo install"
fi

log "done in $(( $(date +%s) - start )) s. Use: export PATH=\"$VENV/bin:$ROOT/node_modules/.bin:\$PATH\""
