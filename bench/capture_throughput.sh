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
#   REPEAT=3          drain each backlog this many times per consumer (own slots); the table shows
#                     the median run
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
REPEAT="${REPEAT:-3}"
CONSUMERS="${CONSUMERS:-recv jsonl none}"
STREAMING="${STREAMING:-false}"
OUT="${OUT:-}"
BUILD_DIR="${BUILD_DIR:-build}"
SLUICE="${SLUICE:-$ROOT/$BUILD_DIR/cli/sluice}"

source scripts/lib/pg.sh
source bench/lib/common.sh
source bench/lib/measure.sh

wants() { wants_in "$1" "$CONSUMERS"; }
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
[ "$REPEAT" -ge 1 ] || die "REPEAT must be at least 1"
[ $((TXNS % CLIENTS)) = 0 ] || die "TXNS ($TXNS) must be a multiple of CLIENTS ($CLIENTS)"

# Other work on the machine competes for the same cores: the table shows the load around the run.
LOAD_BEFORE="$(cut -d ' ' -f 1-3 /proc/loadavg)"
WORK="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
chmod 755 "$WORK"
CURRENT_CLUSTER=
cleanup() {
  [ -n "$CURRENT_CLUSTER" ] && pg_stop "$CURRENT_CLUSTER"
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

RESULTS="$WORK/results.tsv"
IDLE_RESULTS="$WORK/idle.tsv"
: >"$RESULTS"
: >"$IDLE_RESULTS"

sql() { psql_at "$PORT" -d bench -At "$@"; }
current_lsn() { sql -c "SELECT pg_current_wal_lsn()"; }
slot_confirmed() {
  sql -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"
}
# wait_slot_released SLOT: the slot's walsender has exited. A client may exit before its
# walsender has read the last standby status update (sluice does not wait for the server's end of
# the COPY stream, and the walsender may still be freeing a large decoded transaction).
wait_slot_released() {
  local tries
  for ((tries = 0; tries < 300; tries++)); do
    [ "$(sql -c "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'")" = f ] && return 0
    sleep 0.1
  done
  die "slot $1 is still in use 30 s after its consumer exited"
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

# Slot and pipeline names of repetition R (1-based): the first uses the plain names.
suffix() { if [ "$1" = 1 ]; then echo ""; else echo "_$1"; fi; }

# All slots are created before the backlog, so every consumer sees exactly the same WAL. Per
# repetition: recv_slot for pg_recvlogical, and pipelines bench / bench2 (slots sluice_bench /
# sluice_bench2) for the two sluice runs.
create_slots() {
  local dir="$1" r sfx pipelines=() expected=0
  for ((r = 1; r <= REPEAT; r++)); do
    sfx="$(suffix "$r")"
    if wants recv; then
      "$PG_BIN/pg_recvlogical" -d "$DSN" --create-slot -S "recv_slot$sfx" -P pgoutput
      expected=$((expected + 1))
    fi
    wants jsonl && pipelines+=("bench$sfx")
    wants none && pipelines+=("bench2$sfx")
  done
  if [ "${#pipelines[@]}" -gt 0 ]; then
    echo "state_dir: $dir/state
log: { level: warn, format: text }
pipelines:" >"$dir/sluice.yaml"
    local pipeline
    for pipeline in "${pipelines[@]}"; do
      cat >>"$dir/sluice.yaml" <<YAML
  - name: $pipeline
    source:
      dsn: "$DSN"
      slot: sluice_$pipeline
      publication: bench
      create_publication: false
      tables: ["public.*"]
      streaming: $STREAMING
    target: { type: none }
    snapshot: never
YAML
    done
    for pipeline in "${pipelines[@]}"; do
      # Nothing to stream yet: this only creates the slot and returns at the current position.
      timeout 120 "$SLUICE" tail --config "$dir/sluice.yaml" --pipeline "$pipeline" \
        --endpos "$(current_lsn)" --format none >/dev/null 2>"$dir/setup-$pipeline.log" ||
        { cat "$dir/setup-$pipeline.log" >&2; die "sluice could not set up pipeline $pipeline"; }
      expected=$((expected + 1))
    done
  fi
  local slots
  slots="$(sql -c "SELECT count(*) FROM pg_replication_slots
                   WHERE slot_name LIKE 'recv\_slot%' OR slot_name LIKE 'sluice\_bench%'")"
  [ "$slots" = "$expected" ] || die "expected $expected replication slots, found $slots"
}

# record WORKLOAD CONSUMER DIR LABEL: one result row from the measurement files.
record() {
  local workload="$1" consumer="$2" dir="$3" label="$4"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$consumer" "$EXPECTED_CHANGES" \
    "$EXPECTED_TXNS" "$WAL_BYTES" "$(cat "$dir/$label.wall")" "$(cat "$dir/$label.rss")" \
    "$(cat "$dir/$label.cpu")" >>"$RESULTS"
}

# Drains the backlog (from each slot's creation up to END) with each consumer in turn, REPEAT
# times (interleaved, so no consumer always runs first), and checks that each got it all.
run_consumers() {
  local workload="$1" dir="$2" r
  for ((r = 1; r <= REPEAT; r++)); do
    ! wants recv || run_recvlogical "$workload" "$dir" "$(suffix "$r")"
    ! wants jsonl || run_sluice_jsonl "$workload" "$dir" "$(suffix "$r")"
    ! wants none || run_sluice_none "$workload" "$dir" "$(suffix "$r")"
  done
  # The same commands once more with nothing left to stream: the fixed cost of a run (connect,
  # start, notice the end, exit), which is a visible part of short runs.
  for ((r = 1; r <= REPEAT; r++)); do
    if wants recv; then
      measure "idle_recv$r" "$dir" timeout 60 "$PG_BIN/pg_recvlogical" -d "$DSN" --start \
        -S recv_slot --endpos="$END" --no-loop -o proto_version=1 -o publication_names=bench \
        -o streaming=off -f /dev/null 2>"$dir/idle_recv.log" ||
        { cat "$dir/idle_recv.log" >&2; die "pg_recvlogical (nothing to stream) failed"; }
      printf '%s\t%s\n' pg_recvlogical "$(cat "$dir/idle_recv$r.wall")" >>"$IDLE_RESULTS"
    fi
    if wants jsonl; then
      measure "idle_sluice$r" "$dir" timeout 60 "$SLUICE" tail --config "$dir/sluice.yaml" \
        --pipeline bench --endpos "$END" --format none >/dev/null 2>"$dir/idle_sluice.log" ||
        { cat "$dir/idle_sluice.log" >&2; die "sluice tail (nothing to stream) failed"; }
      printf '%s\t%s\n' sluice "$(cat "$dir/idle_sluice$r.wall")" >>"$IDLE_RESULTS"
    fi
  done
}

run_recvlogical() {
  local workload="$1" dir="$2" sfx="$3" confirmed
  log "$workload: pg_recvlogical (recv_slot$sfx)"
  measure "recv$sfx" "$dir" "$PG_BIN/pg_recvlogical" -d "$DSN" --start -S "recv_slot$sfx" \
    --endpos="$END" --no-loop -o proto_version=1 -o publication_names=bench -o streaming=off \
    -f /dev/null 2>"$dir/recv$sfx.log" ||
    { cat "$dir/recv$sfx.log" >&2; die "pg_recvlogical failed"; }
  wait_slot_released "recv_slot$sfx"
  confirmed="$(slot_confirmed "recv_slot$sfx")"
  lsn_reached "$confirmed" "$END" ||
    die "pg_recvlogical stopped early: recv_slot$sfx confirmed $confirmed < end $END"
  record "$workload" pg_recvlogical "$dir" "recv$sfx"
}

# check_sluice_position DIR PIPELINE: sluice processed the backlog through its last commit, as
# its final standby status update told the server.
check_sluice_position() {
  local pipeline="$2" confirmed
  wait_slot_released "sluice_$pipeline"
  confirmed="$(slot_confirmed "sluice_$pipeline")"
  lsn_reached "$confirmed" "$LAST_COMMIT" ||
    die "pipeline $pipeline stopped early: slot sluice_$pipeline confirmed $confirmed < last commit $LAST_COMMIT"
}

run_sluice_jsonl() {
  local workload="$1" dir="$2" sfx="$3" lines
  log "$workload: sluice tail --format jsonl (bench$sfx)"
  # Counting lines in a pipe costs a memchr pass; it is how we prove nothing was missed.
  lines="$(measure "jsonl$sfx" "$dir" "$SLUICE" tail --config "$dir/sluice.yaml" \
    --pipeline "bench$sfx" --endpos "$END" --format jsonl 2>"$dir/jsonl$sfx.log" | wc -l)" ||
    { cat "$dir/jsonl$sfx.log" >&2; die "sluice tail --format jsonl failed"; }
  [ "$lines" = "$EXPECTED_CHANGES" ] ||
    die "sluice tail --format jsonl printed $lines changes, expected $EXPECTED_CHANGES"
  check_sluice_position "$dir" "bench$sfx"
  record "$workload" "sluice jsonl" "$dir" "jsonl$sfx"
}

run_sluice_none() {
  local workload="$1" dir="$2" sfx="$3"
  log "$workload: sluice tail --format none (bench2$sfx)"
  measure "none$sfx" "$dir" "$SLUICE" tail --config "$dir/sluice.yaml" --pipeline "bench2$sfx" \
    --endpos "$END" --format none >/dev/null 2>"$dir/none$sfx.log" ||
    { cat "$dir/none$sfx.log" >&2; die "sluice tail --format none failed"; }
  check_sluice_position "$dir" "bench2$sfx"
  record "$workload" "sluice none" "$dir" "none$sfx"
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
  # pgbench_history has no primary key and sluice (rightly) refuses a table whose UPDATEs and
  # DELETEs it could not replicate. pgbench only inserts into it; FULL adds nothing to insert WAL.
  sql -q -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" \
    -c "CREATE PUBLICATION bench FOR TABLE pgbench_accounts, pgbench_branches,
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
  echo "Server and consumer share the machine. Each consumer drains the same backlog from its own"
  echo "slot, $REPEAT time(s); seconds and CPU are from the median run, RSS is the highest."
  echo "Load average before the run: $LOAD_BEFORE; after: $(cut -d ' ' -f 1-3 /proc/loadavg)."
  echo
  echo "| workload | consumer | changes | txns | WAL MB | seconds | changes/s | vs pg_recvlogical | consumer CPU s | peak RSS MB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  # One line per workload and consumer: the run with the median wall time (its CPU time), and
  # the highest peak RSS of all runs.
  awk -F '\t' '
    {
      key = $1 SUBSEP $2
      if (!(key in n)) { order[++keys] = key; workload[key] = $1; consumer[key] = $2
                         changes[key] = $3; txns[key] = $4; wal[key] = $5 }
      i = ++n[key]; wall[key, i] = $6; cpu[key, i] = $8
      if ($7 > rss[key]) rss[key] = $7
    }
    END {
      for (k = 1; k <= keys; k++) {
        key = order[k]
        # Insertion sort of the runs by wall time; the median is the middle one.
        for (i = 1; i <= n[key]; i++) idx[i] = i
        for (i = 2; i <= n[key]; i++)
          for (j = i; j > 1 && wall[key, idx[j]] < wall[key, idx[j - 1]]; j--) {
            t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t
          }
        m = idx[int((n[key] + 1) / 2)]
        seconds[key] = wall[key, m]; cpu_s[key] = cpu[key, m]
        rate[key] = seconds[key] > 0 ? changes[key] / seconds[key] : 0
        if (consumer[key] == "pg_recvlogical") base[workload[key]] = rate[key]
      }
      for (k = 1; k <= keys; k++) {
        key = order[k]
        b = base[workload[key]]
        ratio = b > 0 ? sprintf("%.2fx", rate[key] / b) : "-"
        printf "| %s | %s | %d | %d | %.1f | %.2f | %.0f | %s | %.2f | %.1f |\n",
          workload[key], consumer[key], changes[key], txns[key], wal[key] / 1048576,
          seconds[key], rate[key], ratio, cpu_s[key], rss[key] / 1024
      }
    }' "$RESULTS"
  if [ -s "$IDLE_RESULTS" ]; then
    echo
    printf 'Fixed cost of one run with nothing left to stream (connect, start, see the end, exit),'
    printf ' median of %s run(s): ' "$(($(wc -l <"$IDLE_RESULTS") / $(cut -f1 "$IDLE_RESULTS" | sort -u | wc -l)))"
    sort -t "$(printf '\t')" -k1,1 -k2,2n "$IDLE_RESULTS" | awk -F '\t' '
      { v[$1, ++n[$1]] = $2; if (n[$1] == 1) order[++k] = $1 }
      END {
        for (i = 1; i <= k; i++) {
          c = order[i]
          printf "%s%s %.2f s", (i > 1 ? ", " : ""), c, v[c, int((n[c] + 1) / 2)]
        }
        print "."
      }'
  fi
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
