#!/usr/bin/env bash
# sluice's main job on an embedded default: two throwaway PostgreSQL clusters on loopback, a
# pgbench load on the source, `sluice run` copying the tables and then streaming every change to
# the target while the load goes on, the lag printed as it runs, and a row-by-row comparison of
# every table at the end.
# Usage: scripts/demo.sh [seconds of load, default 30] [pgbench scale, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SECONDS_OF_LOAD="${1:-30}"
SCALE="${2:-5}"

scripts/install-deps.sh
BUILD_TARGETS=sluice scripts/build.sh
SLUICE="$ROOT/build/cli/sluice"
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
chmod 755 "$WORK"
SOURCE_PORT="$(free_port)"
TARGET_PORT="$(free_port)"
cleanup() {
  if [ -n "${RUN_PID:-}" ]; then kill "$RUN_PID" 2>/dev/null || true; fi
  if [ -n "${LOAD_PID:-}" ]; then kill "$LOAD_PID" 2>/dev/null || true; fi
  pg_stop "$WORK/source"
  pg_stop "$WORK/target"
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== two throwaway clusters: source 127.0.0.1:$SOURCE_PORT, target 127.0.0.1:$TARGET_PORT"
pg_start "$WORK/source" "$SOURCE_PORT"
pg_start "$WORK/target" "$TARGET_PORT"
psql_at "$SOURCE_PORT" -d postgres -c "CREATE DATABASE app"
psql_at "$TARGET_PORT" -d postgres -c "CREATE DATABASE app"
echo "== pgbench -i -s $SCALE on the source"
"$PG_BIN/pgbench" -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -i -q -s "$SCALE" app 2>&1 | tail -1
# pgbench_history has no primary key: let updates/deletes (if any) find rows by their full value.
psql_at "$SOURCE_PORT" -d app -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"
# A marker row written after the load tells when the target has caught up.
psql_at "$SOURCE_PORT" -d app -c "CREATE TABLE demo_marker (id int PRIMARY KEY)"

cat >"$WORK/sluice.yaml" <<YAML
state_dir: $WORK/state
admin: { listen: "127.0.0.1:$(free_port)" }
log: { level: info, format: text }
pipelines:
  - name: demo
    source:
      dsn: "host=127.0.0.1 port=$SOURCE_PORT dbname=app user=postgres"
      tables: ["public.*"]
    target:
      type: postgres
      dsn: "host=127.0.0.1 port=$TARGET_PORT dbname=app user=postgres"
      apply: { create_tables: true, copy_jobs: 2 }
    snapshot: initial
  # No target: \`sluice tail\` prints this pipeline's decoded stream (run skips it).
  - name: peek
    source:
      dsn: "host=127.0.0.1 port=$SOURCE_PORT dbname=app user=postgres"
      tables: ["public.*"]
      publication: sluice_demo
      create_publication: false
YAML

# One publication for both pipelines (run would create it; peek's slot must exist before the
# load to see it, so make it now).
psql_at "$SOURCE_PORT" -d app -c "CREATE PUBLICATION sluice_demo FOR TABLES IN SCHEMA public" >/dev/null
echo "== sluice check: what run will do"
"$SLUICE" check --config "$WORK/sluice.yaml" 2>/dev/null | grep -v '^  ok' || true
"$SLUICE" tail --config "$WORK/sluice.yaml" --pipeline peek \
  --endpos "$(psql_at "$SOURCE_PORT" -d app -At -c 'SELECT pg_current_wal_lsn()')" 2>/dev/null

echo "== pgbench load for ${SECONDS_OF_LOAD}s (TPC-B, 4 clients), running through copy and stream"
"$PG_BIN/pgbench" -h 127.0.0.1 -p "$SOURCE_PORT" -U postgres -n -c 4 -j 2 \
  -T "$SECONDS_OF_LOAD" app >"$WORK/pgbench.log" 2>&1 &
LOAD_PID=$!
sleep 1
echo "== sluice run: initial copy at the slot's snapshot, then streaming"
"$SLUICE" run --config "$WORK/sluice.yaml" 2>"$WORK/sluice.log" &
RUN_PID=$!

lag_line() {
  local applied
  applied="$(psql_at "$TARGET_PORT" -d app -At -c \
    "SELECT end_lsn FROM sluice.applied WHERE pipeline = 'demo'" 2>/dev/null || true)"
  if [ -z "$applied" ]; then
    echo "lag: initial copy in progress ($(grep -c ': copied ' "$WORK/sluice.log" || true) tables done)"
    return
  fi
  psql_at "$SOURCE_PORT" -d app -At -c "SELECT 'source at ' || pg_current_wal_lsn() ||
    ', target applied ' || '$applied' || ', lag ' ||
    pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), '$applied'))"
}
while kill -0 "$LOAD_PID" 2>/dev/null; do
  sleep 3
  lag_line
done
wait "$LOAD_PID" || true
LOAD_PID=
grep -E '^(tps|number of transactions actually processed)' "$WORK/pgbench.log" || true

echo "== load finished; waiting for the target to catch up"
psql_at "$SOURCE_PORT" -d app -c "INSERT INTO demo_marker VALUES (1)"
for _ in $(seq 1 300); do
  if [ "$(psql_at "$TARGET_PORT" -d app -At -c \
    "SELECT count(*) FROM demo_marker" 2>/dev/null || true)" = 1 ]; then
    echo "caught up: $(lag_line)"
    break
  fi
  sleep 1
done
echo "== sluice status"
"$SLUICE" status --config "$WORK/sluice.yaml" || true
kill -TERM "$RUN_PID"
wait "$RUN_PID" || true
RUN_PID=

echo "== the captured stream (sluice tail, JSON lines), first lines of $(
  "$SLUICE" tail --config "$WORK/sluice.yaml" --pipeline peek \
    --endpos "$(psql_at "$SOURCE_PORT" -d app -At -c 'SELECT pg_current_wal_lsn()')" \
    2>/dev/null >"$WORK/stream.jsonl"; wc -l <"$WORK/stream.jsonl") changes:"
head -3 "$WORK/stream.jsonl"

echo "== row-by-row comparison (every row's full text, source vs target)"
status=0
for table in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history demo_marker; do
  query="SELECT count(*) || ' rows, md5 ' || md5(string_agg(t::text, '|' ORDER BY t::text))
         FROM $table t"
  a="$(psql_at "$SOURCE_PORT" -d app -At -c "$query")"
  b="$(psql_at "$TARGET_PORT" -d app -At -c "$query")"
  if [ "$a" = "$b" ]; then
    printf '  %-18s identical (%s)\n' "$table" "$a"
  else
    printf '  %-18s DIFFERENT: source %s, target %s\n' "$table" "$a" "$b"
    status=1
  fi
done
echo "== sluice's log (last lines)"
tail -5 "$WORK/sluice.log"
exit "$status"
