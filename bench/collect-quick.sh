#!/usr/bin/env bash
# Quick collect measurement (section 2 without the shell baselines): for each size, the raw curl
# download (of a file sim-serve prebuilt, served from the page cache) and collect-once per stage (download only; + SHA-256/MD5/records inline; collect into
# a null sink; into DirSink; into S3Sink on s3s-fs). Prints one line per measurement.
#
#   bash bench/collect-quick.sh [--bin DIR] [--s3s-fs PATH] [SIZE_MIB ...]   # default 64 1024
#
# Build first: cargo build --release -p runbridge-bench (DIR defaults to $CARGO_TARGET_DIR/release).
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
S3S="$ROOT/bench/.tools/bin/s3s-fs"
sizes=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --s3s-fs) S3S="$2"; shift 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
[[ ${#sizes[@]} -gt 0 ]] || sizes=(64 1024)
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/s3/bench-results"
"$S3S" --host 127.0.0.1 --port "$port" --access-key quick --secret-key quicksecret "$work/s3" >/dev/null 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=quick AWS_SECRET_ACCESS_KEY=quicksecret AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
n=0
for mib in "${sizes[@]}"; do
    bytes=$((mib * 1024 * 1024))
    "$BIN/sim-serve" --bytes "$bytes" --info "$work/sim-$mib.json" --prebuild "$work/file-$mib.csv" >/dev/null &
    sim=$!; pids+=("$sim")
    for _ in $(seq 6000); do [[ -s "$work/sim-$mib.json" ]] && break; sleep 0.1; done
    url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["download_url"])' "$work/sim-$mib.json")
    raw=$(curl -sS --fail -o /dev/null -w '%{time_total}' "$url")
    printf '%5s MiB %-22s %7.0f MB/s\n' "$mib" "raw curl" "$(python3 -c "print($bytes/1e6/$raw)")"
    for case in "download null:" "digest null:" "collect null:" "collect dir:$work/dir" "collect s3:bench-results"; do
        read -r stage sink <<<"$case"
        n=$((n + 1))
        line=$("$BIN/collect-once" --info "$work/sim-$mib.json" --sink "$sink" --id "quick-$mib-$n" --stage "$stage")
        python3 - "$mib" "$stage ${sink%%:*}" "$bytes" "$raw" "$line" <<'PY'
import json, sys
mib, what, size, raw, line = sys.argv[1:]
d = json.loads(line); size = int(size); raw = float(raw)
print(f"{mib:>5} MiB {what:<22} {size/1e6/d['seconds']:7.0f} MB/s ({raw/d['seconds']:.2f}x raw)  sink tail {d['sink_seconds']:.2f} s  peak RSS {d['peak_rss_bytes']/2**20:.1f} MiB")
PY
        rm -rf "$work/dir"; find "$work/s3/bench-results" -mindepth 1 -delete
    done
    kill "$sim"; wait "$sim" 2>/dev/null || true
    rm -f "$work/file-$mib.csv"
done
