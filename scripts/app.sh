#!/usr/bin/env bash
# Run the API (core/serve/__main__.py: granian or gunicorn) and the ETL schedule in the background: app.sh up|down|status.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${CLICKSTREAM_VAR_DIR:-$ROOT/var}"
RUN_DIR="$VAR_DIR/run"
LOG_DIR="$VAR_DIR/log"
PYTHON="${PYTHON:-python3}"
API_URL="http://${CLICKSTREAM_API_HOST:-127.0.0.1}:${CLICKSTREAM_API_PORT:-8000}"
mkdir -p "$RUN_DIR" "$LOG_DIR"
# A developer's machine (make up, make demo): the reference auth service signs with the
# development JWT secret, which the API refuses unless told this is development. Harmless
# with a secret of one's own: the flag only lets the published default through.
export CLICKSTREAM_JWT_ALLOW_DEV_SECRET="${CLICKSTREAM_JWT_ALLOW_DEV_SECRET:-true}"
# The ETL rewrites the dashboard there after its passes; the API serves it at /ops/dashboard.
export CLICKSTREAM_DASHBOARD_FILE="${CLICKSTREAM_DASHBOARD_FILE:-$VAR_DIR/dashboard.html}"
# Metrics and readiness details answer nobody unless protected or declared trusted; an API
# on a loopback address is reachable from this machine only, a trusted network.
case "${CLICKSTREAM_API_HOST:-127.0.0.1}" in
  127.* | localhost | ::1) export CLICKSTREAM_OPS_OPEN="${CLICKSTREAM_OPS_OPEN:-true}" ;;
esac

running() {  # running NAME: is the process of NAME's pid file alive?
  local pid_file="$RUN_DIR/$1.pid"
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

start() {  # start NAME COMMAND...: run COMMAND in the background unless NAME already runs
  local name="$1"; shift
  if running "$name"; then
    echo "$name: already running (pid $(cat "$RUN_DIR/$name.pid"))"
    return
  fi
  (cd "$ROOT" && exec "$@") >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  echo "$name: started (pid $!, log $LOG_DIR/$name.log)"
}

stop() {  # stop NAME: TERM, wait up to 20 s, then KILL
  local name="$1" pid_file="$RUN_DIR/$1.pid"
  if ! running "$name"; then
    rm -f "$pid_file"
    return
  fi
  local pid; pid="$(cat "$pid_file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  echo "$name: stopped"
}

wait_ready() {
  for _ in $(seq 1 150); do
    if curl -fsS "$API_URL/health/ready" >/dev/null 2>&1; then
      echo "api: ready at $API_URL"
      return
    fi
    running api || break
    sleep 0.2
  done
  echo "api: not ready; last lines of $LOG_DIR/api.log:" >&2
  tail -n 30 "$LOG_DIR/api.log" >&2
  exit 1
}

case "${1:-}" in
  up)
    start api "$PYTHON" -m core.serve
    wait_ready
    start etl "$PYTHON" -m etl.cli etl
    ;;
  down)
    stop etl
    stop api
    ;;
  status)
    for name in api etl; do
      if running "$name"; then echo "$name: running"; else echo "$name: stopped"; fi
    done
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
