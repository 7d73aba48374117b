#!/usr/bin/env bash
# make bench: release build, a private stack (.run/bench: RabbitMQ on 5674, PostgreSQL on 5434), then every
# measurement of CONTRACT section 10 in one run, and last the same broker-bound figures on a 3-node RabbitMQ
# cluster (.run/bench-cluster) as ratios. JSON lines on stdout and in bench/results/latest.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=bench

cleanup() {
    local status=$?
    scripts/servers.sh rabbit-cluster-stop "$STACK-cluster" >/dev/null 2>&1 || true
    scripts/servers.sh stop "$STACK" || true
    exit $status
}

scripts/servers.sh install
command -v wrk >/dev/null 2>&1 || apt-get install -y -q wrk >/dev/null
echo "[bench] building release" >&2
swift build -c release 2>&1 | grep -E "error:|Build complete" >&2
BIN=$(swift build -c release --show-bin-path)

scripts/servers.sh stop "$STACK" >/dev/null 2>&1 || true
scripts/servers.sh rabbit-cluster-stop "$STACK-cluster" >/dev/null 2>&1 || true
rm -rf ".run/$STACK" ".run/$STACK-cluster"
trap cleanup EXIT
# track_functions: lead-bench reads the prediction step's own time per lead from pg_stat_user_functions.
PG_EXTRA_OPTS="${PG_EXTRA_OPTS:-} -c track_functions=pl" scripts/servers.sh start "$STACK" 5674 5434
# shellcheck disable=SC1091
. ".run/$STACK/env"
export LOG_LEVEL=warning

started=$(date +%s)
# The last phase starts a 3-node RabbitMQ cluster (.run/bench-cluster, 5686-5688) through this script.
"$BIN/lead-bench" --bin-dir "$BIN" --out bench/results/latest.jsonl --log-dir ".run/$STACK/logs" \
    --cluster-stack "$STACK-cluster" "$@"
echo "[bench] done in $(( $(date +%s) - started )) s" >&2
