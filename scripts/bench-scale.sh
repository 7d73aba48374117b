#!/usr/bin/env bash
# make bench-scale: lead-admin's analytics and `leadctl train` at scale, on a private stack (.run/bench-scale:
# RabbitMQ 5675, PostgreSQL 5435). Simulates LEADS leads (default 200,000: about 1,000,000 interactions), then
# times each analytics endpoint and two filtered lead pages (p50/p95 of 21 calls each), and a training run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=bench-scale
LEADS=${LEADS:-200000}

cleanup() {
    local status=$?
    [ -n "${ADMIN_PID:-}" ] && kill "$ADMIN_PID" 2>/dev/null || true
    scripts/servers.sh stop "$STACK" || true
    exit $status
}

scripts/servers.sh install
echo "[scale] building release" >&2
swift build -c release 2>&1 | grep -E "error:|Build complete" >&2
BIN=$(swift build -c release --show-bin-path)
scripts/servers.sh stop "$STACK" >/dev/null 2>&1 || true
rm -rf ".run/$STACK"
trap cleanup EXIT
scripts/servers.sh start "$STACK" 5675 5435
# shellcheck disable=SC1091
. ".run/$STACK/env"
export LOG_LEVEL=warning
"$BIN/leadctl" migrate >/dev/null

started=$(date +%s.%N)
"$BIN/leadctl" simulate --leads "$LEADS" --seed 1 >&2
simulate_s=$(echo "$(date +%s.%N) - $started" | bc)
interactions=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM user_interactions")
psql "$DATABASE_URL" -qc "ANALYZE" >/dev/null 2>&1 || true

ADMIN_PORT=18181 "$BIN/lead-admin" >".run/$STACK/admin.log" 2>&1 &
ADMIN_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:18181/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

from=$(date -u -d '200 days ago' +%Y-%m-%d)
measure() {
    local name=$1 path=$2
    local times=()
    for _ in $(seq 1 21); do
        times+=("$(curl -fs -o /dev/null -w '%{time_total}' -H 'Authorization: Bearer dev-admin-token' "http://127.0.0.1:18181$path")")
    done
    python3 - "$name" "${times[@]}" <<'PY'
import json, sys
name, times = sys.argv[1], sorted(float(t) * 1000 for t in sys.argv[2:])
print(json.dumps({"bench": "admin." + name, "calls": len(times), "p50_ms": round(times[len(times) // 2], 1),
                  "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}))
PY
}
{
    echo "{\"bench\": \"scale.data\", \"leads\": $LEADS, \"interactions\": $interactions, \"simulate_s\": $simulate_s}"
    for endpoint in funnel heatmap flow scoring roi; do
        measure "analytics.$endpoint" "/v1/analytics/$endpoint?from=$from"
    done
    measure "leads.filtered" "/v1/leads?score_min=70&engagement=high&status=converted&limit=50"
    measure "leads.search_heat" "/v1/leads?q=Sim%201-99&sort=heat&limit=50"
    measure "leads.type_filter" "/v1/leads?type=face_analysis&from=$from&limit=50"
    started=$(date +%s.%N)
    "$BIN/leadctl" train --json >".run/$STACK/train.json"
    train_s=$(echo "$(date +%s.%N) - $started" | bc)
    python3 - "$train_s" ".run/$STACK/train.json" <<'PY'
import json, sys
report = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print(json.dumps({"bench": "train", "seconds": round(float(sys.argv[1]), 1), "train": report["train"], "holdout": report["holdout"],
                  "model_auc": round(report["model"]["auc"], 3), "rule_auc": round(report["rule_score_only"]["auc"], 3),
                  "converged": report["converged"], "iterations": report["iterations"]}))
PY
} | tee bench/results/scale.jsonl
