#!/usr/bin/env bash
# The API (core/serve/__main__.py: granian or gunicorn) and the ETL schedule under supervisord
# (core/serve/stack.py): app.sh up|down|status|reload|config. docs/deploy.md says more.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${CLICKSTREAM_VAR_DIR:-$ROOT/var}"
PYTHON="${PYTHON:-python3}"
# This checkout's code, whichever checkout the environment has installed as editable.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
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

case "${1:-}" in
  up | down | status | reload | config)
    cd "$ROOT" && exec "$PYTHON" -m core.serve.stack "$1" --var-dir "$VAR_DIR"
    ;;
  *)
    echo "usage: $0 up|down|status|reload|config" >&2
    exit 2
    ;;
esac
