#!/usr/bin/env bash
# Starts or stops a moto server (AWS emulator) for the runbridge AWS adapter tests.
#
#   eval "$(bash scripts/moto.sh start)"   # start (or reuse) one; exports AWS_ENDPOINT_URL
#   bash scripts/moto.sh stop              # stop the one started from this checkout
#   bash scripts/moto.sh env               # print the exports of the running one
#
# The server listens on 127.0.0.1 on a free port. Its pid, port and log are under
# target/moto/ of this checkout. `start` prints only `export` lines on stdout (progress goes to
# stderr), so its output can be eval'd. Needs .venv from scripts/install-tools.sh.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/target/moto"
PID_FILE="$DIR/moto.pid"
PORT_FILE="$DIR/moto.port"
LOG="$DIR/moto.log"
MOTO="$ROOT/.venv/bin/moto_server"
PYTHON="$ROOT/.venv/bin/python"

log() { printf '[moto] %s\n' "$*" >&2; }
die() { printf '[moto] ERROR: %s\n' "$*" >&2; exit 1; }

running() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/" 2>/dev/null; }

print_env() {
    local port; port="$(cat "$PORT_FILE")"
    printf 'export AWS_ENDPOINT_URL=http://127.0.0.1:%s\n' "$port"
    # Dummy credentials for the aws CLI and other tools; the Rust tests set their own.
    printf 'export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1\n'
}

start() {
    if running && answers "$(cat "$PORT_FILE")"; then
        log "already running (pid $(cat "$PID_FILE"), port $(cat "$PORT_FILE"))"
        print_env
        return
    fi
    [[ -x "$MOTO" ]] || die "$MOTO missing; run: bash scripts/install-tools.sh"
    mkdir -p "$DIR"
    # Ask the OS for a free port; a race with another process is possible but harmless: the
    # wait below fails and says so.
    local port
    port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    nohup "$MOTO" -H 127.0.0.1 -p "$port" >"$LOG" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    for _ in $(seq 1 100); do
        if answers "$port"; then
            log "started (pid $(cat "$PID_FILE"), port $port, log ${LOG#"$ROOT"/})"
            print_env
            return
        fi
        running || { tail -20 "$LOG" >&2; die "moto_server exited during start-up"; }
        sleep 0.2
    done
    tail -20 "$LOG" >&2
    die "moto_server did not answer on port $port within 20 s"
}

stop() {
    if running; then
        local pid; pid="$(cat "$PID_FILE")"
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        log "stopped (pid $pid)"
    else
        log "not running"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) running || die "not running"; print_env ;;
    *) die "usage: $0 start|stop|env" ;;
esac
