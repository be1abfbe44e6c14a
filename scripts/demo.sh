#!/usr/bin/env bash
# sluice demo on an embedded default: a throwaway PostgreSQL on loopback, a pgbench load, and
# sluice capturing the live stream. Shows the decoded changes and the position and lag.
# Usage: scripts/demo.sh [seconds of load, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SECONDS_OF_LOAD="${1:-20}"

scripts/install-deps.sh
BUILD_TARGETS=sluice scripts/build.sh
SLUICE="$ROOT/build/cli/sluice"
source scripts/lib/pg.sh

WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
chmod 755 "$WORK"
PORT="$(free_port)"
cleanup() {
  [ -n "${TAIL_PID:-}" ] && kill "$TAIL_PID" 2>/dev/null || true
  pg_stop "$WORK/source"
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting a throwaway source PostgreSQL on 127.0.0.1:$PORT"
pg_start "$WORK/source" "$PORT"
psql_at "$PORT" -d postgres -c "CREATE DATABASE app"
"$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -i -s 1 -q app 2>&1 | tail -1

cat >"$WORK/sluice.yaml" <<YAML
state_dir: $WORK/state
log: { level: info, format: text }
pipelines:
  - name: demo
    source:
      dsn: "host=127.0.0.1 port=$PORT dbname=app user=postgres"
      tables: ["public.*"]
YAML

echo "== sluice tail: creating publication and slot, then streaming"
"$SLUICE" tail --config "$WORK/sluice.yaml" >"$WORK/stream.jsonl" 2>"$WORK/sluice.log" &
TAIL_PID=$!
sleep 2

echo "== pgbench load for ${SECONDS_OF_LOAD}s (TPC-B, 4 clients) while sluice captures"
"$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -c 4 -j 2 -T "$SECONDS_OF_LOAD" -P 5 app \
  2>&1 | grep -E '^progress|^tps' &
LOAD_PID=$!
while kill -0 "$LOAD_PID" 2>/dev/null; do
  sleep 2
  psql_at "$PORT" -d app -At -F ' ' -c "
    SELECT 'position: source ' || pg_current_wal_lsn() || ', confirmed ' || confirmed_flush_lsn
           || ', lag ' || pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))
           || ', changes captured so far: ' || $(wc -l <"$WORK/stream.jsonl")
    FROM pg_replication_slots WHERE slot_name = 'sluice_demo'"
done
wait "$LOAD_PID" || true
sleep 2
kill -TERM "$TAIL_PID"
wait "$TAIL_PID" || true
TAIL_PID=

echo "== a few captured changes (JSON lines):"
head -4 "$WORK/stream.jsonl"
echo "== totals"
echo "changes captured: $(wc -l <"$WORK/stream.jsonl")"
echo "history rows on the source: $(psql_at "$PORT" -d app -At -c 'SELECT count(*) FROM pgbench_history')"
echo "history inserts captured:   $(grep -c '"relation":"public.pgbench_history","op":"insert"' "$WORK/stream.jsonl")"
psql_at "$PORT" -d app -At -c "SELECT 'slot confirmed ' || confirmed_flush_lsn || ', source at ' ||
  pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'sluice_demo'"
