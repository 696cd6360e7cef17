#!/usr/bin/env bash
# Runs the runbridge benchmarks and writes docs/BENCHMARKS.md. One command:
#
#   bash bench/run.sh               # every section, ~11 minutes on 2 cores after the first build
#   bash bench/run.sh --only 2      # rerun only section 2; --only 1,4 reruns 1 and 4
#
# --only N[,M…] reruns the named sections and splices them into the existing docs/BENCHMARKS.md,
# keeping every other section as it is; each section says under its heading which commit, date
# and command produced it. Sections: 1 polls per run, 2 collect throughput and memory,
# 3 cold start, 4 trigger throughput, 5 AMC's concurrency limit as a queue, 6 a simulated day
# at scale (issue 22: 10,000 runs on virtual time, three intake shapes, a volume sweep; then
# 200 runs on the real stack at 400x real time beside the model).
#
# Collect (section 2) is measured at 64 MiB, 1 GiB and 4 GiB, best of 3 each. That needs ~18 GiB
# of free disk: the 4 GiB result file, the part files the raw multipart leg uploads, plus the S3
# endpoint's parts and the object it assembles.
#
# Builds in release, installs what it needs into the repository with scripts/install-tools.sh
# (the Python tools and s3s-fs in bench/.tools), starts its own S3 endpoint (s3s-fs), simulator
# and, for section 4, moto, and stops them again. Every figure in the document is a ratio against
# a baseline measured in the same run. Environment: CARGO_TARGET_DIR (default target/).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
# Installed by scripts/install-tools.sh (the one install path; CI uses the same).
S3S_FS="$ROOT/bench/.tools/bin/s3s-fs"
DOC="$ROOT/docs/BENCHMARKS.md"
# Every section, in document order. A new section gets a number here and a case in run_section.
ALL_SECTIONS=(1 2 3 4 5 6)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 2; }
trap 'rc=$?; printf "[bench] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --only) [[ $# -ge 2 ]] || die "--only needs N[,M…]"; only="$2"; shift 2 ;;
        --only=*) only="${1#--only=}"; shift ;;
        *) die "unknown argument $1 (try --help)" ;;
    esac
done

selected=()
if [[ -z "$only" ]]; then
    selected=("${ALL_SECTIONS[@]}")
else
    IFS=',' read -r -a wanted <<< "$only"
    for n in "${wanted[@]}"; do
        [[ " ${ALL_SECTIONS[*]} " == *" $n "* ]] || die "--only: no section '$n' (sections: ${ALL_SECTIONS[*]})"
        [[ " ${selected[*]-} " == *" $n "* ]] || selected+=("$n")
    done
    [[ ${#selected[@]} -gt 0 ]] || die "--only needs N[,M…]"
fi
wants() { [[ " ${selected[*]} " == *" $1 "* ]]; }
command_line="bash bench/run.sh${only:+ --only $only}"

log "building in release"
cargo build --release --locked -p runbridge-bench -p runbridge-trigger -p runbridge-poll -p runbridge-collect

# Sections 2-4 use the tools (s3s-fs, awscli, Python, moto); 1, 5 and 6 run on their own.
if wants 2 || wants 3 || wants 4; then
    log "tools: scripts/install-tools.sh (Python venv with awscli, boto3, moto; s3s-fs)"
    bash scripts/install-tools.sh >&2
    [[ -x "$S3S_FS" ]] || die "$S3S_FS missing after scripts/install-tools.sh"
fi

# moto for the S3 ledger (section 4); stopped at the end only if this script started it.
started_moto=0
moto_env=""
if wants 4; then
    if ! bash scripts/moto.sh env >/dev/null 2>&1; then started_moto=1; fi
    moto_env="$(bash scripts/moto.sh start)"
fi
sections="$(mktemp -d)"
cleanup() {
    if [[ $started_moto == 1 ]]; then bash scripts/moto.sh stop >&2 || true; fi
    rm -rf "$sections"
}
trap cleanup EXIT

# Writes section $1 (a Markdown chunk that starts with its "## N. Title" heading) to stdout.
run_section() {
    case "$1" in
        1) log "1 polls per run"
           "$BIN/polls" ;;
        2) log "2 collect throughput and memory (~10 minutes with 4 GiB)"
           "$BIN/throughput" --s3s-fs "$S3S_FS" --aws "$ROOT/.venv/bin/aws" ;;
        3) log "3 cold start"
           "$BIN/coldstart" --bin-dir "$BIN" --python "$ROOT/.venv/bin/python" --script "$ROOT/bench/python/boto3_init.py" ;;
        4) log "4 trigger throughput"
           ( eval "$moto_env"; "$BIN/trigger" ) ;;
        5) log "5 AMC's concurrency limit as a queue (~1 minute)"
           "$BIN/queue" ;;
        6) log "6 a simulated day at scale, then a scaled-down day on the real stack (~2 minutes)"
           "$BIN/day" ;;
        *) die "no section $1" ;;
    esac
}

commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || printf ' (with uncommitted changes)')"
started=$(date +%s)
for n in "${selected[@]}"; do
    t0=$(date +%s)
    run_section "$n" > "$sections/raw-$n.md"
    # The heading, then where this section comes from, then its body: a section kept by a later
    # `--only` run still says which commit and run produced it.
    heading="$(head -n 1 "$sections/raw-$n.md")"
    [[ "$heading" == "## $n. "* ]] || die "section $n does not start with '## $n. …' (got '$heading')"
    {
        printf '%s\n\n' "$heading"
        printf '_Measured at commit `%s` on %s by `%s` (%s s)._\n' \
            "$commit" "$(date -u +%Y-%m-%dT%H:%MZ)" "$command_line" "$(( $(date +%s) - t0 ))"
        tail -n +2 "$sections/raw-$n.md"
    } > "$sections/$n.md"
done
elapsed=$(( $(date +%s) - started ))

# With --only, the sections not rerun come from the existing document: split it at its
# "## N. " headings (everything before the first one is the header, which is rewritten).
if [[ -n "$only" && -f "$DOC" ]]; then
    awk -v dir="$sections" '
        /^## [0-9]+\. / { n = $2; sub(/\.$/, "", n); file = dir "/old-" n ".md" }
        file != "" { print > file }
    ' "$DOC"
fi

mkdir -p "$(dirname "$DOC")"
{
    printf '# Benchmarks\n\n'
    printf 'Generated by `bash bench/run.sh` — do not edit by hand; rerun it (`--only N` reruns one\n'
    printf 'section and keeps the others). Each section says under its heading which commit, date\n'
    printf 'and command measured it.\n\n'
    printf -- '- machine: %s CPU(s), %s, %s GiB RAM, %s\n' "$(nproc)" \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
        "$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" "$(uname -sr)"
    printf -- '- toolchain: %s\n' "$(rustc --version)"
    printf -- '- last run: `%s` at commit `%s`, %s, sections %s in %s s after the build\n\n' \
        "$command_line" "$commit" "$(date -u +%Y-%m-%dT%H:%MZ)" "${selected[*]}" "$elapsed"
    printf 'Every figure is a ratio against a baseline measured in the same run, on the same\n'
    printf 'machine. No unit test asserts on timing; targets are checked here and reported with\n'
    printf 'the distance when missed.\n\n'
    # Every section number, new or kept, in numeric order.
    for f in "$sections"/[0-9]*.md "$sections"/old-[0-9]*.md; do
        [[ -e "$f" ]] || continue
        n="${f##*/}"; n="${n#old-}"; printf '%s\n' "${n%.md}"
    done | sort -n -u | while read -r n; do
        if [[ -f "$sections/$n.md" ]]; then cat "$sections/$n.md"; else cat "$sections/old-$n.md"; fi
    done
} > "$DOC.tmp"
mv "$DOC.tmp" "$DOC"
log "wrote $DOC (sections ${selected[*]} measured in ${elapsed} s)"
