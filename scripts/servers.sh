#!/usr/bin/env bash
# Local RabbitMQ and PostgreSQL without systemd, their data under .run/<stack>/.
#
#   scripts/servers.sh install                 install missing Debian packages
#   scripts/servers.sh start <stack> [amqp_port] [pg_port]
#   scripts/servers.sh stop <stack>
#   scripts/servers.sh rabbit-start <stack> [amqp_port]
#   scripts/servers.sh rabbit-stop|rabbit-kill <stack>          (the port it was started on)
#   scripts/servers.sh pg-start|pg-stop <stack> [pg_port]
#   scripts/servers.sh cluster-start|cluster-stop <stack> [amqp_base_port] [pg_port]   3 brokers, primary + replica
#   scripts/servers.sh rabbit-cluster-start|rabbit-cluster-stop <stack> [amqp_base_port]   the 3 brokers only
#
# start writes .run/<stack>/env (AMQP_URL, DATABASE_URL) for the services and tests to source.
# Everything is idempotent: a server already running for the stack is reused.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.run"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
RABBIT_BIN=/usr/lib/rabbitmq/bin

log() { printf '[servers] %s\n' "$*" >&2; }

install() {
    local missing=()
    command -v "$RABBIT_BIN/rabbitmq-server" >/dev/null 2>&1 || missing+=(rabbitmq-server)
    [ -f /usr/include/amqp.h ] || [ -f /usr/include/rabbitmq-c/amqp.h ] || missing+=(librabbitmq-dev)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ] || missing+=(postgresql)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
            apt-get update -q >/dev/null
            apt-get install -y -q "${missing[@]}" >/dev/null
        }
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
}

# Test tools: the dashboard's browser test drives headless Chromium through Selenium.
install_browser() {
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)  # the snippet's unit tests (node --test)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
            apt-get update -q >/dev/null
            apt-get install -y -q "${missing[@]}" >/dev/null
        }
    fi
    # The OpenAPI check validates responses with jsonschema against the YAML description.
    python3 -c "import selenium, yaml, jsonschema" 2>/dev/null || {
        log "installing selenium, pyyaml, jsonschema (PyPI)"
        python3 -m pip install -q --disable-pip-version-check selenium pyyaml jsonschema >/dev/null 2>&1 \
            || python3 -m pip install -q --break-system-packages selenium pyyaml jsonschema >/dev/null
    }
}

# Daemons must not inherit our callers' descriptors (a test runner waits for its pipes to close).
close_inherited_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- ; }

# ---------------------------------------------------------------- RabbitMQ

rabbit_env() {
    local stack=$1 port=$2
    local dir="$RUN/$stack/rabbitmq"
    mkdir -p "$dir/mnesia" "$dir/log"
    if [ "$port" = "saved" ]; then
        port=$(cat "$dir/port" 2>/dev/null || echo 5672)
    else
        echo "$port" >"$dir/port"
    fi
    export HOME="$dir"
    export RABBITMQ_NODENAME="leads-$port@localhost"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$port"
    export RABBITMQ_DIST_PORT=$((port + 20000 > 65000 ? port - 1000 : port + 20000))
    export RABBITMQ_MNESIA_BASE="$dir/mnesia"
    export RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
    export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    [ -f "$dir/enabled_plugins" ] || echo "[]." >"$dir/enabled_plugins"
    [ -f "$dir/rabbitmq-env.conf" ] || : >"$dir/rabbitmq-env.conf"
    cat >"$dir/rabbitmq.conf" <<EOF
loopback_users.guest = true
log.console = false
log.file.level = warning
vm_memory_high_watermark.relative = ${RABBIT_MEMORY_WATERMARK:-0.4}
disk_free_limit.absolute = 50MB
EOF
}

rabbit_start() {
    local stack=$1 port=${2:-5672}
    (
        rabbit_env "$stack" "$port"
        if [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null; then
            log "rabbitmq ($stack) already running on $port"
            exit 0
        fi
        if port_open "$port"; then
            log "port $port is taken by another process; reusing the broker there"
            exit 0
        fi
        log "starting rabbitmq ($stack) on $port"
        setsid nohup "$RABBIT_BIN/rabbitmq-server" >"$RABBITMQ_LOG_BASE/stdout.log" 2>&1 </dev/null &
        echo $! >"$RABBITMQ_PID_FILE"
        # Under make test's parallel suites a node has taken two minutes to boot on 2 cores: allow four, and
        # accept a node that answers on its port even if rabbitmqctl gave up on it.
        if ! "$RABBIT_BIN/rabbitmqctl" wait --timeout 240 "$RABBITMQ_PID_FILE" >/dev/null 2>&1 && ! port_open "$port"; then
            log "rabbitmq did not start; last log lines:"
            tail -n 30 "$RABBITMQ_LOG_BASE/stdout.log" >&2 || true
            exit 1
        fi
        log "rabbitmq ($stack) ready"
    )
}

rabbit_stop() {
    local stack=$1
    (
        rabbit_env "$stack" saved
        [ -f "$RABBITMQ_PID_FILE" ] || exit 0
        local pid
        pid=$(cat "$RABBITMQ_PID_FILE")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping rabbitmq ($stack)"
            timeout 30 "$RABBIT_BIN/rabbitmqctl" stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$RABBITMQ_PID_FILE"
    )
}

# kill -9 the broker (fault injection): pid file names the Erlang VM started by rabbitmq-server.
rabbit_kill() {
    local stack=$1
    (
        rabbit_env "$stack" saved
        [ -f "$RABBITMQ_PID_FILE" ] || exit 0
        pkill -9 -f "beam.*$RABBITMQ_NODENAME" 2>/dev/null || true
        kill -9 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null || true
        rm -f "$RABBITMQ_PID_FILE"
    )
}

# rabbitmqctl against a stack's node (fault injection: set_vm_memory_high_watermark, ...).
rabbit_ctl() {
    local stack=$1
    shift
    (
        rabbit_env "$stack" saved
        "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"
    )
}

# ---------------------------------------------------------------- PostgreSQL

pg_paths() {
    local stack=$1
    PG_DIR="$RUN/$stack/postgres"
    PG_DATA="$PG_DIR/data"
    PG_SOCK="$PG_DIR/sock"
}

pg_start() {
    local stack=$1 port=${2:-5432}
    pg_paths "$stack"
    mkdir -p "$PG_DIR" "$PG_SOCK"
    chown postgres:postgres "$PG_DIR" "$PG_SOCK"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "initialising postgresql ($stack)"
        local pwfile="$PG_DIR/pwfile"
        echo "postgres" >"$pwfile"
        chown postgres "$pwfile"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1
        rm -f "$pwfile"
    fi
    if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        log "postgresql ($stack) already running"
    else
        if port_open "$port"; then
            log "port $port is taken by another PostgreSQL; set PG_PORT to use a free one"
            return 1
        fi
        log "starting postgresql ($stack) on $port"
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t 60 \
            -o "-p $port -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=200 -c max_locks_per_transaction=256 ${PG_EXTRA_OPTS:-}" \
            start >/dev/null
    fi
    # The application role and database (idempotent).
    runuser -u postgres -- psql -q -h "$PG_SOCK" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'EOF' >/dev/null
SELECT 'CREATE ROLE leads LOGIN PASSWORD ''leads'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads') \gexec
SELECT 'CREATE DATABASE leads OWNER leads'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'leads') \gexec
-- tests give some cases a database of their own
ALTER ROLE leads CREATEDB;
EOF
    log "postgresql ($stack) ready"
}

pg_stop() {
    local stack=$1
    pg_paths "$stack"
    [ -f "$PG_DATA/PG_VERSION" ] || return 0
    if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        log "stopping postgresql ($stack)"
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    fi
}

# ---------------------------------------------------------------- stacks

start() {
    local stack=$1 amqp_port=${2:-5672} pg_port=${3:-5432}
    install
    rabbit_start "$stack" "$amqp_port"
    pg_start "$stack" "$pg_port"
    cat >"$RUN/$stack/env" <<EOF
export AMQP_URL=amqp://guest:guest@127.0.0.1:$amqp_port/%2F
export DATABASE_URL=postgres://leads:leads@127.0.0.1:$pg_port/leads
export RUN_STACK_DIR=$RUN/$stack
export AMQP_PORT=$amqp_port
export PG_PORT=$pg_port
EOF
}

stop() {
    local stack=$1
    [ -d "$RUN/$stack/rabbitmq" ] && rabbit_stop "$stack"
    pg_stop "$stack"
}

# ---------------------------------------------------------------- cluster (make cluster-up)

# A streaming replica of <primary stack>, copied with pg_basebackup, started as a hot standby.
pg_replica_start() {
    local stack=$1 port=$2 primary_stack=$3 primary_port=$4
    pg_paths "$primary_stack"
    local primary_sock=$PG_SOCK
    pg_paths "$stack"
    mkdir -p "$PG_DIR" "$PG_SOCK"
    chown postgres:postgres "$PG_DIR" "$PG_SOCK"
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "copying postgresql ($primary_stack) to a replica ($stack) with pg_basebackup"
        runuser -u postgres -- "$PG_BIN/pg_basebackup" -h "$primary_sock" -p "$primary_port" -U postgres \
            -D "$PG_DATA" -R -X stream -c fast >"$PG_DIR/basebackup.log" 2>&1
    fi
    if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        log "starting postgresql replica ($stack) on $port"
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t 60 \
            -o "-p $port -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=200 -c max_locks_per_transaction=256 -c hot_standby=on" start >/dev/null
    fi
    log "postgresql replica ($stack) ready"
}

# Three RabbitMQ nodes joined into one cluster (one Erlang cookie), a PostgreSQL primary and a streaming
# replica; writes <stack>/env with every broker address, the primary and the replica.
cluster_start() {
    local stack=$1 base=${2:-5681} pg_port=${3:-5451}
    rabbit_cluster_start "$stack" "$base"
    pg_start "$stack/primary" "$pg_port"
    pg_replica_start "$stack/replica" $((pg_port + 1)) "$stack/primary" "$pg_port"
    local urls=""
    for port in "$base" $((base + 1)) $((base + 2)); do urls="${urls:+$urls,}amqp://guest:guest@127.0.0.1:$port/%2F"; done
    mkdir -p "$RUN/$stack"
    cat >"$RUN/$stack/env" <<EOF
export AMQP_URL=$urls
export DATABASE_URL=postgres://leads:leads@127.0.0.1:$pg_port/leads
export ADMIN_DATABASE_URL=postgres://leads:leads@127.0.0.1:$((pg_port + 1))/leads
export QUEUE_TYPE=quorum
export RUN_STACK_DIR=$RUN/$stack
EOF
}

# The three RabbitMQ nodes of a cluster only (make bench measures the cluster beside a single node).
rabbit_cluster_start() {
    local stack=$1 base=${2:-5681}
    install
    local nodes=("$base" $((base + 1)) $((base + 2)))
    for port in "${nodes[@]}"; do
        local dir="$RUN/$stack/rabbit-$port/rabbitmq"
        mkdir -p "$dir"
        [ -f "$dir/.erlang.cookie" ] || { echo "LEADPIPELINECLUSTERCOOKIE" >"$dir/.erlang.cookie"; chmod 400 "$dir/.erlang.cookie"; }
        rabbit_start "$stack/rabbit-$port" "$port" &
    done
    wait
    for port in "${nodes[@]:1}"; do
        if ! rabbit_ctl "$stack/rabbit-$port" cluster_status 2>/dev/null | grep -q "leads-${nodes[0]}@localhost"; then
            log "joining rabbitmq node $port to leads-${nodes[0]}@localhost"
            rabbit_ctl "$stack/rabbit-$port" stop_app >/dev/null
            rabbit_ctl "$stack/rabbit-$port" join_cluster "leads-${nodes[0]}@localhost" >/dev/null
            rabbit_ctl "$stack/rabbit-$port" start_app >/dev/null
        fi
    done
    log "rabbitmq cluster of ${#nodes[@]} nodes on ${nodes[*]}"
}

cluster_stop() {
    local stack=$1
    rabbit_cluster_stop "$stack"
    pg_stop "$stack/replica"
    pg_stop "$stack/primary"
}

rabbit_cluster_stop() {
    local stack=$1
    for dir in "$RUN/$stack"/rabbit-*; do
        [ -d "$dir" ] || continue
        rabbit_stop "$stack/$(basename "$dir")" &
    done
    wait
}

close_inherited_fds
cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    install-browser) install_browser ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    rabbit-start) rabbit_start "$@" ;;
    rabbit-stop) rabbit_stop "$@" ;;
    rabbit-kill) rabbit_kill "$@" ;;
    rabbit-ctl) rabbit_ctl "$@" ;;
    cluster-start) cluster_start "$@" ;;
    cluster-stop) cluster_stop "$@" ;;
    rabbit-cluster-start) rabbit_cluster_start "$@" ;;
    rabbit-cluster-stop) rabbit_cluster_stop "$@" ;;
    pg-start) pg_start "$@" ;;
    pg-stop) pg_stop "$@" ;;
    *) echo "usage: $0 install|install-browser|start|stop|rabbit-start|rabbit-stop|rabbit-kill|rabbit-ctl|cluster-start|cluster-stop|pg-start|pg-stop <stack> ..." >&2; exit 2 ;;
esac
