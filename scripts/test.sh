#!/usr/bin/env bash
# make test: starts a private RabbitMQ and PostgreSQL (.run/test, ports 5673/5433), builds, runs every test
# (unit tests and integration tests against the real servers), then stops everything it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export TEST_DIR="$ROOT/.run/test"

# The tests' own brokers and databases (a suite's private stack, the cluster), and the services they started.
stop_test_servers() {
    for pidfile in "$TEST_DIR"/pids/*.pid; do
        [ -f "$pidfile" ] || continue
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    for extra in "$ROOT"/.run/test-brokers/*; do
        [ -d "$extra" ] || continue
        if compgen -G "$extra/rabbit-*" >/dev/null; then
            scripts/servers.sh cluster-stop "test-brokers/$(basename "$extra")" || true
        else
            scripts/servers.sh stop "test-brokers/$(basename "$extra")" || true
        fi
    done
    scripts/servers.sh stop test || true
}

cleanup() {
    local status=$?
    stop_test_servers
    exit $status
}

# Whatever an interrupted run left running goes before its files do (a broker without its pid file
# would be "reused" on its port and could not be controlled).
stop_test_servers >/dev/null 2>&1 || true
rm -rf "$TEST_DIR" "$ROOT/.run/test-brokers"
mkdir -p "$TEST_DIR/pids" "$TEST_DIR/logs"
trap cleanup EXIT

started=$(date +%s)
PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    scripts/servers.sh start test 5673 5433
# shellcheck disable=SC1091
. "$TEST_DIR/env"

scripts/servers.sh install-browser

echo "[test] building"
swift build --build-tests 2>&1 | grep -E "error:|Build complete" | tail -n 30
LEAD_BIN_DIR=$(swift build --show-bin-path)
export LEAD_BIN_DIR

echo "[test] running tests"
swift test --skip-build "$@"
echo "[test] done in $(( $(date +%s) - started )) s"
