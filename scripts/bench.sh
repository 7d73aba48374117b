#!/usr/bin/env bash
# make bench: release build, a private stack (.run/bench: RabbitMQ on 5674, PostgreSQL on 5434), then every
# measurement of CONTRACT section 10 in one run. JSON lines on stdout and in bench/results/latest.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=bench

cleanup() {
    local status=$?
    scripts/servers.sh stop "$STACK" || true
    exit $status
}

scripts/servers.sh install
command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null
echo "[bench] building release" >&2
swift build -c release 2>&1 | grep -E "error:|Build complete" >&2
BIN=$(swift build -c release --show-bin-path)

scripts/servers.sh stop "$STACK" >/dev/null 2>&1 || true
rm -rf ".run/$STACK"
trap cleanup EXIT
scripts/servers.sh start "$STACK" 5674 5434
# shellcheck disable=SC1091
. ".run/$STACK/env"
export LOG_LEVEL=warning

started=$(date +%s)
"$BIN/lead-bench" --bin-dir "$BIN" --out bench/results/latest.jsonl --log-dir ".run/$STACK/logs" "$@"
echo "[bench] done in $(( $(date +%s) - started )) s" >&2
