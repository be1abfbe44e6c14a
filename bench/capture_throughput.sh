#!/usr/bin/env bash
# Capture throughput: how fast sluice drains a fixed logical-replication backlog compared with
# PostgreSQL's own pg_recvlogical, on the same machine in the same run. A benchmark, not a test:
# it reports numbers and only fails when a consumer did not consume the whole backlog.
#
# Usage: bench/capture_throughput.sh            (see bench/README.md)
# Environment:
#   ROWS=1000000      rows inserted by workload "rows"
#   ROW_TXNS=10       ... spread over this many transactions
#   TXNS=20000        pgbench TPC-B transactions of workload "pgbench"
#   CLIENTS=4         pgbench clients (TXNS is split between them)
#   SCALE=10          pgbench -i scale
#   WORKLOADS="rows pgbench"
#   CONSUMERS="recv jsonl none"   pg_recvlogical, sluice --format jsonl, sluice --format none
#   STREAMING=false   sluice's source.streaming; false makes the server do the same work for every
#                     consumer (pg_recvlogical runs with streaming=off)
#   OUT=FILE          also write the Markdown results table to FILE
#   BUILD_DIR=build   where scripts/build.sh builds; SKIP_BUILD=1 uses an existing binary
#   SLUICE=PATH       sluice binary (default BUILD_DIR/cli/sluice)
#   KEEP=1            keep the temporary directory (cluster, logs) for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

ROWS="${ROWS:-1000000}"
ROW_TXNS="${ROW_TXNS:-10}"
TXNS="${TXNS:-20000}"
CLIENTS="${CLIENTS:-4}"
SCALE="${SCALE:-10}"
WORKLOADS="${WORKLOADS:-rows pgbench}"
CONSUMERS="${CONSUMERS:-recv jsonl none}"
STREAMING="${STREAMING:-false}"
OUT="${OUT:-}"
BUILD_DIR="${BUILD_DIR:-build}"
SLUICE="${SLUICE:-$ROOT/$BUILD_DIR/cli/sluice}"

source scripts/lib/pg.sh
source bench/lib/measure.sh

log() { echo "== $*" >&2; }
die() {
  echo "capture_throughput: $*" >&2
  exit 1
}

wants() { [[ " $CONSUMERS " == *" $1 "* ]]; }
wants_sluice() { wants jsonl || wants none; }

if wants_sluice; then
  if [ -z "${SKIP_BUILD:-}" ]; then
    log "building sluice ($BUILD_DIR)"
    BUILD_DIR="$BUILD_DIR" BUILD_TARGETS=sluice scripts/build.sh >/dev/null
  fi
  [ -x "$SLUICE" ] || die "no sluice binary at $SLUICE"
fi
ensure_gnu_time
for tool in pg_recvlogical pgbench psql; do
  [ -x "$PG_BIN/$tool" ] || die "missing $PG_BIN/$tool"
done
[ $((ROWS % ROW_TXNS)) = 0 ] || die "ROWS ($ROWS) must be a multiple of ROW_TXNS ($ROW_TXNS)"
[ $((TXNS % CLIENTS)) = 0 ] || die "TXNS ($TXNS) must be a multiple of CLIENTS ($CLIENTS)"

WORK="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
chmod 755 "$WORK"
CURRENT_CLUSTER=
cleanup() {
  [ -n "$CURRENT_CLUSTER" ] && pg_stop "$CURRENT_CLUSTER"
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

sql() { psql_at "$PORT" -d bench -At "$@"; }
current_lsn() { sql -c "SELECT pg_current_wal_lsn()"; }
slot_confirmed() {
  sql -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"
}
# lsn_reached A B: true when LSN A >= LSN B.
lsn_reached() { [ "$(sql -c "SELECT '$1'::pg_lsn >= '$2'::pg_lsn")" = t ]; }

# Fresh cluster, database, tables and publication for one workload.
start_cluster() {
  local name="$1"
  PORT="$(free_port)"
  CLUSTER="$WORK/$name/pg"
  mkdir -p "$WORK/$name"
  chmod 755 "$WORK/$name"
  pg_start "$CLUSTER" "$PORT"
  CURRENT_CLUSTER="$CLUSTER"
  DSN="host=127.0.0.1 port=$PORT dbname=bench user=postgres"
  psql_at "$PORT" -d postgres -c "CREATE DATABASE bench"
}

stop_cluster() {
  pg_stop "$CURRENT_CLUSTER"
  CURRENT_CLUSTER=
}

# Three slots, all created before the backlog so each consumer sees exactly the same WAL:
# recv_slot for pg_recvlogical, sluice_bench and sluice_bench2 for the two sluice runs.
create_slots() {
  local dir="$1"
  "$PG_BIN/pg_recvlogical" -d "$DSN" --create-slot -S recv_slot -P pgoutput
  wants_sluice || return 0
  cat >"$dir/sluice.yaml" <<YAML
state_dir: $dir/state
log: { level: warn, format: text }
pipelines:
  - name: bench
    source:
      dsn: "$DSN"
      slot: sluice_bench
      publication: bench
      create_publication: false
      tables: ["public.*"]
      streaming: $STREAMING
    target: { type: none }
    snapshot: never
  - name: bench2
    source:
      dsn: "$DSN"
      slot: sluice_bench2
      publication: bench
      create_publication: false
      tables: ["public.*"]
      streaming: $STREAMING
    target: { type: none }
    snapshot: never
YAML
  local pipeline
  for pipeline in bench bench2; do
    # Nothing to stream yet: this only creates the slot and returns at the current position.
    timeout 120 "$SLUICE" tail --config "$dir/sluice.yaml" --pipeline "$pipeline" \
      --endpos "$(current_lsn)" --format none >/dev/null 2>"$dir/setup-$pipeline.log" ||
      { cat "$dir/setup-$pipeline.log" >&2; die "sluice could not set up pipeline $pipeline"; }
  done
  local slots
  slots="$(sql -c "SELECT count(*) FROM pg_replication_slots
                   WHERE slot_name IN ('recv_slot', 'sluice_bench', 'sluice_bench2')")"
  [ "$slots" = 3 ] || die "expected 3 replication slots, found $slots"
}

# record WORKLOAD CONSUMER DIR LABEL: one result row from the measurement files.
record() {
  local workload="$1" consumer="$2" dir="$3" label="$4"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$consumer" "$EXPECTED_CHANGES" \
    "$EXPECTED_TXNS" "$WAL_BYTES" "$(cat "$dir/$label.wall")" "$(cat "$dir/$label.rss")" \
    >>"$RESULTS"
}

# Drains the backlog [slot position, END] with each consumer in turn and checks each got it all.
run_consumers() {
  local workload="$1" dir="$2"

  wants recv && run_recvlogical "$workload" "$dir"
  wants jsonl && run_sluice_jsonl "$workload" "$dir"
  wants none && run_sluice_none "$workload" "$dir"
  return 0
}

run_recvlogical() {
  local workload="$1" dir="$2"
  log "$workload: pg_recvlogical"
  measure recv "$dir" "$PG_BIN/pg_recvlogical" -d "$DSN" --start -S recv_slot --endpos="$END" \
    --no-loop -o proto_version=1 -o publication_names=bench -o streaming=off -f /dev/null \
    2>"$dir/recv.log" || { cat "$dir/recv.log" >&2; die "pg_recvlogical failed"; }
  local confirmed
  confirmed="$(slot_confirmed recv_slot)"
  lsn_reached "$confirmed" "$END" ||
    die "pg_recvlogical stopped early: recv_slot confirmed $confirmed < end $END"
  record "$workload" pg_recvlogical "$dir" recv
}

run_sluice_jsonl() {
  local workload="$1" dir="$2"

  log "$workload: sluice tail --format jsonl"
  local lines
  # Counting lines in a pipe costs a memchr pass; it is how we prove nothing was missed.
  lines="$(measure jsonl "$dir" "$SLUICE" tail --config "$dir/sluice.yaml" --pipeline bench \
    --endpos "$END" --format jsonl 2>"$dir/jsonl.log" | wc -l)" ||
    { cat "$dir/jsonl.log" >&2; die "sluice tail --format jsonl failed"; }
  [ "$lines" = "$EXPECTED_CHANGES" ] ||
    die "sluice tail --format jsonl printed $lines changes, expected $EXPECTED_CHANGES"
  local confirmed
  confirmed="$(slot_confirmed sluice_bench)"
  lsn_reached "$confirmed" "$LAST_COMMIT" ||
    die "sluice --format jsonl stopped early: sluice_bench confirmed $confirmed < last commit $LAST_COMMIT"
  record "$workload" "sluice jsonl" "$dir" jsonl
}

run_sluice_none() {
  local workload="$1" dir="$2" confirmed

  log "$workload: sluice tail --format none"
  measure none "$dir" "$SLUICE" tail --config "$dir/sluice.yaml" --pipeline bench2 \
    --endpos "$END" --format none >/dev/null 2>"$dir/none.log" ||
    { cat "$dir/none.log" >&2; die "sluice tail --format none failed"; }
  # --format none prints nothing; its checkpoint-driven feedback shows what it consumed.
  confirmed="$(slot_confirmed sluice_bench2)"
  lsn_reached "$confirmed" "$LAST_COMMIT" ||
    die "sluice --format none stopped early: sluice_bench2 confirmed $confirmed < last commit $LAST_COMMIT"
  record "$workload" "sluice none" "$dir" none
}

# Each workload sets END (where consumers stop), LAST_COMMIT (the WAL position right after the
# last COMMIT: what a consumer has confirmed once it processed everything), EXPECTED_CHANGES,
# EXPECTED_TXNS and WAL_BYTES (the backlog's size).
workload_rows() {
  local dir="$WORK/rows"
  start_cluster rows
  sql -q -c "CREATE TABLE bench_rows (id bigint PRIMARY KEY, a int, b text, c timestamptz)" \
    -c "CREATE PUBLICATION bench FOR TABLE bench_rows"
  create_slots "$dir"

  log "rows: inserting $ROWS rows in $ROW_TXNS transactions"
  local per_txn=$((ROWS / ROW_TXNS)) i from
  local start_lsn
  start_lsn="$(current_lsn)"
  {
    for ((i = 0; i < ROW_TXNS; i++)); do
      from=$((i * per_txn + 1))
      # b: 40 characters, c: distinct timestamps.
      echo "INSERT INTO bench_rows SELECT g, (g % 100000)::int, md5(g::text) || lpad(g::text, 8, '0'),
              '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
            FROM generate_series($from, $((from + per_txn - 1))) g;"
    done
    echo "SELECT pg_current_wal_lsn();"
  } | sql -q >"$dir/last_commit"
  LAST_COMMIT="$(cat "$dir/last_commit")"
  END="$(current_lsn)"
  EXPECTED_CHANGES="$ROWS"
  EXPECTED_TXNS="$ROW_TXNS"
  WAL_BYTES="$(sql -c "SELECT pg_wal_lsn_diff('$END', '$start_lsn')::bigint")"
  run_consumers "rows ($ROWS rows / $ROW_TXNS txns)" "$dir"
  stop_cluster
}

workload_pgbench() {
  local dir="$WORK/pgbench"
  start_cluster pgbench
  log "pgbench: initializing scale $SCALE"
  "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -i -q -s "$SCALE" bench \
    >"$dir/pgbench-init.log" 2>&1 || { cat "$dir/pgbench-init.log" >&2; die "pgbench -i failed"; }
  sql -q -c "CREATE PUBLICATION bench FOR TABLE pgbench_accounts, pgbench_branches,
                                                pgbench_tellers, pgbench_history"
  create_slots "$dir"

  log "pgbench: $TXNS TPC-B transactions ($CLIENTS clients)"
  local start_lsn
  start_lsn="$(current_lsn)"
  "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -c "$CLIENTS" -j 2 \
    -t $((TXNS / CLIENTS)) bench >"$dir/pgbench.log" 2>&1 ||
    { cat "$dir/pgbench.log" >&2; die "pgbench failed"; }
  grep -q "number of transactions actually processed: $TXNS/$TXNS" "$dir/pgbench.log" ||
    { cat "$dir/pgbench.log" >&2; die "pgbench did not process all $TXNS transactions"; }
  # Nothing else writes to this cluster, so the WAL position now is just past the last commit.
  LAST_COMMIT="$(current_lsn)"
  END="$LAST_COMMIT"
  # TPC-B: update accounts, update tellers, update branches, insert history (the SELECT is no change).
  EXPECTED_CHANGES=$((TXNS * 4))
  EXPECTED_TXNS="$TXNS"
  WAL_BYTES="$(sql -c "SELECT pg_wal_lsn_diff('$END', '$start_lsn')::bigint")"
  run_consumers "pgbench ($TXNS TPC-B txns)" "$dir"
  stop_cluster
}

print_table() {
  echo "## sluice capture throughput ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  local sluice_version=""
  if wants_sluice; then sluice_version=", $("$SLUICE" --version), source.streaming=$STREAMING"; fi
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"\
    "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')$sluice_version."
  echo "Server and consumer share the machine; each consumer drains the same backlog once."
  echo
  echo "| workload | consumer | changes | txns | WAL MB | seconds | changes/s | peak RSS MB | throughput vs pg_recvlogical |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F '\t' '
    {
      rate = $6 > 0 ? $3 / $6 : 0
      if ($2 == "pg_recvlogical") base[$1] = rate
      ratio = (base[$1] > 0) ? sprintf("%.2fx", rate / base[$1]) : "-"
      if ($2 == "pg_recvlogical") ratio = "1.00x"
      printf "| %s | %s | %d | %d | %.1f | %.2f | %.0f | %.1f | %s |\n",
        $1, $2, $3, $4, $5 / 1048576, $6, rate, $7 / 1024, ratio
    }' "$RESULTS"
}

for workload in $WORKLOADS; do
  case "$workload" in
    rows) workload_rows ;;
    pgbench) workload_pgbench ;;
    *) die "unknown workload '$workload' (rows, pgbench)" ;;
  esac
done

print_table >"$WORK/results.md"
cat "$WORK/results.md"
if [ -n "$OUT" ]; then cp "$WORK/results.md" "$OUT"; fi
