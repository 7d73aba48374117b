#!/usr/bin/env bash
# make chaos: the fault-injection suite (Tests/PipelineTests/ChaosTests.swift) at full size, on private servers:
# kill -9 each service under load and restart it, restart RabbitMQ, stop PostgreSQL for 20 s, raise the
# broker's memory alarm. Each case asserts that every accepted event was processed once. Ends with the table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p .run
export CHAOS_EVENTS=${CHAOS_EVENTS:-2000}
export CHAOS_PG_OUTAGE_SECONDS=${CHAOS_PG_OUTAGE_SECONDS:-20}
status=0
scripts/test.sh --filter ChaosTests 2>&1 | tee .run/chaos.log || status=$?
echo
echo "case                               | events sent | accepted | 503s | processed | lost | duplicated"
grep -a '^chaos |' .run/chaos.log | sed 's/^chaos | //' || true
exit $status
