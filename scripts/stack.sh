#!/usr/bin/env bash
# The whole stack on this machine: RabbitMQ, PostgreSQL and the five services, in the background.
#
#   scripts/stack.sh up      install, start servers, migrate, build, start services, wait until ready
#   scripts/stack.sh down    stop services, then servers
#   scripts/stack.sh run     up + demo traffic in the foreground; Ctrl-C stops everything
#   scripts/stack.sh status  what is running
#
# Data, pids and logs live under .run/dev/. CONFIG=release builds optimized binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK=${STACK:-dev}
DIR="$ROOT/.run/$STACK"
CONFIG=${CONFIG:-debug}
SERVICES=(lead-ingest lead-scorer lead-conversion lead-alerts lead-admin)

log() { printf '[stack] %s\n' "$*" >&2; }

bin_dir() { (cd "$ROOT" && swift build -c "$CONFIG" --show-bin-path); }

health_port() {
    case "$1" in
        lead-ingest) echo "${INGEST_PORT:-8080}" ;;
        lead-admin) echo "${ADMIN_PORT:-8081}" ;;
        lead-scorer) echo "${SCORER_METRICS_PORT:-9101}" ;;
        lead-conversion) echo "${CONVERSION_METRICS_PORT:-9102}" ;;
        lead-alerts) echo "${ALERTS_METRICS_PORT:-9103}" ;;
    esac
}

wait_ready() {
    local name=$1 port=$2
    for _ in $(seq 1 150); do
        if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$(cat "$DIR/pids/$name.pid" 2>/dev/null)" 2>/dev/null; then
            log "$name exited; last log lines:"
            tail -n 20 "$DIR/logs/$name.log" >&2
            return 1
        fi
        sleep 0.2
    done
    log "$name not ready after 30 s (see $DIR/logs/$name.log)"
    return 1
}

start_service() {
    local name=$1 bin=$2
    local pidfile="$DIR/pids/$name.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "$name already running"
        return 0
    fi
    # The demo marketplace page (/demo on lead-ingest) is part of the local stack.
    INGEST_DEMO=${INGEST_DEMO:-true} setsid nohup "$bin/$name" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

stop_services() {
    local pids=()
    for name in "${SERVICES[@]}"; do
        local pidfile="$DIR/pids/$name.pid"
        [ -f "$pidfile" ] || continue
        local pid
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$pidfile"
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    [ ${#pids[@]} -eq 0 ] || log "services stopped"
}

up() {
    if [ "${CLUSTER:-0}" = 1 ]; then
        # Three RabbitMQ nodes (5681-5683) and a PostgreSQL primary (5451) with a streaming replica (5452).
        "$ROOT/scripts/servers.sh" cluster-start "$STACK" 5681 5451
    else
        "$ROOT/scripts/servers.sh" start "$STACK" "${AMQP_PORT:-5672}" "${PG_PORT:-5432}"
    fi
    # shellcheck disable=SC1090
    . "$DIR/env"
    log "building ($CONFIG)"
    (cd "$ROOT" && swift build -c "$CONFIG" 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -n 3) >&2
    local bin
    bin=$(bin_dir)
    mkdir -p "$DIR/pids" "$DIR/logs"
    "$bin/leadctl" migrate
    for name in "${SERVICES[@]}"; do start_service "$name" "$bin"; done
    for name in "${SERVICES[@]}"; do wait_ready "$name" "$(health_port "$name")"; done
    log "all services ready"
    cat <<EOF

  ingest     http://127.0.0.1:${INGEST_PORT:-8080}/v1/interactions   (Authorization: Bearer ${INGEST_API_KEYS:-dev-ingest-key})
  demo page  http://127.0.0.1:${INGEST_PORT:-8080}/demo                (a marketplace page with the snippet)
  dashboard  http://127.0.0.1:${ADMIN_PORT:-8081}/admin               (token: ${ADMIN_TOKEN:-dev-admin-token})
  admin API  http://127.0.0.1:${ADMIN_PORT:-8081}/v1/leads            (Authorization: Bearer ${ADMIN_TOKEN:-dev-admin-token})
  metrics    :8080/metrics :8081/metrics :9101/metrics :9102/metrics :9103/metrics
  logs       $DIR/logs/
  database   $DATABASE_URL
  broker     $AMQP_URL

EOF
}

down() {
    stop_services
    if [ "${CLUSTER:-0}" = 1 ]; then
        "$ROOT/scripts/servers.sh" cluster-stop "$STACK"
    else
        "$ROOT/scripts/servers.sh" stop "$STACK"
    fi
}

run() {
    up
    # shellcheck disable=SC1090
    . "$DIR/env"
    trap 'echo; down; exit 0' INT TERM
    log "sending demo traffic (Ctrl-C stops everything)"
    "$(bin_dir)/leadctl" demo --rate "${DEMO_RATE:-2}" &
    local demo=$!
    while kill -0 "$demo" 2>/dev/null; do
        sleep 10
        local leads
        leads=$(curl -fs -H "Authorization: Bearer ${ADMIN_TOKEN:-dev-admin-token}" "http://127.0.0.1:${ADMIN_PORT:-8081}/v1/leads?limit=500" | grep -o '"id"' | wc -l || true)
        log "leads so far (latest 500 window): $leads"
    done
    wait "$demo" || true
    down
}

status() {
    for name in "${SERVICES[@]}"; do
        local pidfile="$DIR/pids/$name.pid" state=stopped
        [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && state="running (pid $(cat "$pidfile"))"
        printf '%-16s %s\n' "$name" "$state"
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    run) run ;;
    status) status ;;
    *) echo "usage: $0 up|down|run|status" >&2; exit 2 ;;
esac
