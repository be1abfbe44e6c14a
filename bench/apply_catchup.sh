#!/usr/bin/env bash
# Apply catch-up: how fast `sluice run` applies a replication backlog to a PostgreSQL target,
# compared with PostgreSQL's own logical replication (a subscription) between the same two
# clusters in the same run. A benchmark, not a test: it reports numbers and only fails when a
# consumer did not apply the whole backlog or a target differs from the source afterwards.
#
# Usage: bench/apply_catchup.sh            (see bench/README.md)
# Environment:
#   ROWS=1000000      rows inserted by workload "rows" ...
#   ROW_TXNS=10       ... in this many transactions
#   TXNS=20000        pgbench TPC-B transactions of workload "pgbench"
#   CLIENTS=4         pgbench clients (TXNS is split between them)
#   SCALE=10          pgbench -i scale (loaded on all sides before the backlog)
#   UPDATES=100000    rows updated by workload "toast" (each once; the table has this many rows)
#   UPDATE_BATCH=1000 ... this many per transaction
#   TOAST_KB=20       size of the incompressible text column that the updates leave unchanged
#   WORKLOADS="rows pgbench toast"
#   CONSUMERS="native sluice"
#   STREAMING=false   in-progress streaming for both consumers (subscription streaming = on,
#                     sluice source.streaming: true)
#   SOURCE_VIA=tcp    how both consumers reach the source: tcp (127.0.0.1) or unix (the source's
#                     socket directory; see bench/README.md for why this matters on one machine)
#   BINARY=false      binary transfer for both consumers (subscription binary = true, sluice
#                     source.binary: true)
#   SLUICE_APPLY=     YAML flow mapping for sluice's target.apply, e.g. "{ batch_max_delay: 20ms }"
#   SLUICE_CAPTURE=   YAML flow mapping for sluice's capture section, e.g. "{ queue_capacity: 1024 }"
#   SLUICE_NICE=      sluice's `nice` setting (default: sluice's own default)
#   REPEAT=1          runs of every workload, each on fresh clusters; the consumers take turns
#                     going first, and the table reports each one's median (and range)
#   TIMEOUT=900       seconds a consumer may take to catch up before the run fails
#   OUT=FILE          also write the Markdown results table to FILE
#   BUILD_DIR=build   where scripts/build.sh builds; SKIP_BUILD=1 uses an existing binary
#   SLUICE=PATH       sluice binary (default BUILD_DIR/cli/sluice)
#   KEEP=1            keep the temporary directory (clusters, logs, configs) for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

ROWS="${ROWS:-1000000}"
ROW_TXNS="${ROW_TXNS:-10}"
TXNS="${TXNS:-20000}"
CLIENTS="${CLIENTS:-4}"
SCALE="${SCALE:-10}"
UPDATES="${UPDATES:-100000}"
UPDATE_BATCH="${UPDATE_BATCH:-1000}"
TOAST_KB="${TOAST_KB:-20}"
WORKLOADS="${WORKLOADS:-rows pgbench toast}"
SOURCE_VIA="${SOURCE_VIA:-tcp}"
case "$SOURCE_VIA" in tcp | unix) ;; *) echo "SOURCE_VIA must be tcp or unix" >&2; exit 64 ;; esac
CONSUMERS="${CONSUMERS:-native sluice}"
STREAMING="${STREAMING:-false}"
BINARY="${BINARY:-false}"
SLUICE_APPLY="${SLUICE_APPLY:-}"
SLUICE_CAPTURE="${SLUICE_CAPTURE:-}"
SLUICE_NICE="${SLUICE_NICE:-}"
REPEAT="${REPEAT:-1}"
TIMEOUT="${TIMEOUT:-900}"
OUT="${OUT:-}"
BUILD_DIR="${BUILD_DIR:-build}"
SLUICE="${SLUICE:-$ROOT/$BUILD_DIR/cli/sluice}"

source scripts/lib/pg.sh
source bench/lib/common.sh
source bench/lib/measure.sh
source bench/lib/apply_common.sh

wants() { wants_in "$1" "$CONSUMERS"; }

case "$STREAMING" in
  true) SUB_STREAMING=on ;;
  false) SUB_STREAMING=off ;;
  *) die "STREAMING must be true or false" ;;
esac
[ "$BINARY" = true ] || [ "$BINARY" = false ] || die "BINARY must be true or false"
[ "$BINARY" = false ] || ! wants sluice ||
  die "BINARY=true needs CONSUMERS=native: sluice's PostgreSQL sink does not take binary values yet"
wants native || wants sluice || die "CONSUMERS names neither native nor sluice"
if wants sluice; then ensure_sluice; fi
ensure_gnu_time
for tool in pgbench psql pg_dump; do
  [ -x "$PG_BIN/$tool" ] || die "missing $PG_BIN/$tool"
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
[ $((ROWS % ROW_TXNS)) = 0 ] || die "ROWS ($ROWS) must be a multiple of ROW_TXNS ($ROW_TXNS)"
[ $((TXNS % CLIENTS)) = 0 ] || die "TXNS ($TXNS) must be a multiple of CLIENTS ($CLIENTS)"
[ $((UPDATES % UPDATE_BATCH)) = 0 ] ||
  die "UPDATES ($UPDATES) must be a multiple of UPDATE_BATCH ($UPDATE_BATCH)"

LOAD_BEFORE="$(cut -d ' ' -f 1-3 /proc/loadavg)"
WORK="$(mktemp -d /tmp/sluice-apply-bench.XXXXXX)"
chmod 755 "$WORK"
CLUSTERS=()
SLUICE_TIME_PID=
cleanup() {
  if [ -n "$SLUICE_TIME_PID" ]; then stop_timed "$SLUICE_TIME_PID" || true; fi
  local c
  for c in "${CLUSTERS[@]}"; do pg_stop "$c"; done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

src() { sql_at "$SRC_PORT" bench "$@"; }
tgt() {
  local db="$1"
  shift
  sql_at "$TGT_PORT" "$db" "$@"
}
current_lsn() { src -c "SELECT pg_current_wal_lsn()"; }

# Fresh source and target clusters for one workload: database bench on the source, native and
# sluice on the target. Autovacuum is off on both so that nothing but the consumers works while
# they are timed (and no background transaction lands after the backlog's last commit).
start_clusters() {
  local name="$1"
  DIR="$WORK/$name.$REP"
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  SRC_PORT="$(free_port)"
  pg_start "$DIR/source" "$SRC_PORT" "autovacuum = off"
  CLUSTERS+=("$DIR/source")
  TGT_PORT="$(free_port)"
  pg_start "$DIR/target" "$TGT_PORT" "autovacuum = off"
  CLUSTERS+=("$DIR/target")
  local source_host=127.0.0.1
  [ "$SOURCE_VIA" = unix ] && source_host="$DIR/source"
  SRC_DSN="host=$source_host port=$SRC_PORT dbname=bench user=postgres"
  psql_at "$SRC_PORT" -d postgres -c "CREATE DATABASE bench"
  psql_at "$TGT_PORT" -d postgres -c "CREATE DATABASE native" -c "CREATE DATABASE sluice"
}

stop_clusters() {
  pg_stop "$DIR/source"
  pg_stop "$DIR/target"
  CLUSTERS=()
  # A toast run leaves gigabytes of clusters: kept until exit, REPEAT=3 filled the disk.
  [ -n "${KEEP:-}" ] || rm -rf "$DIR/source" "$DIR/target"
}

# schema_everywhere SQL: runs SQL in the source database and both target databases.
schema_everywhere() {
  src -q -c "$1"
  tgt native -q -c "$1"
  tgt sluice -q -c "$1"
}

# copy_to_targets TABLE...: copies the tables' definitions and rows from the source to both
# target databases (pg_dump | psql, both at once).
copy_to_targets() {
  local args=() t db pids=()
  for t in "$@"; do args+=(-t "$t"); done
  for db in native sluice; do
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$SRC_PORT" -U postgres -d bench "${args[@]}" |
      psql_at "$TGT_PORT" -d "$db" >"$DIR/restore-$db.log" 2>&1 &
    pids+=($!)
  done
  for t in "${pids[@]}"; do wait "$t" || die "copying $* to the targets failed"; done
}

# Publication, subscription (disabled) and sluice's slot, all before the backlog, so both
# consumers start from the same WAL position with nothing consumed.
create_consumers() {
  src -q -c "CREATE PUBLICATION bench FOR TABLE $1"
  if wants native; then
    PGOPTIONS="-c client_min_messages=warning" tgt native -q -c "CREATE SUBSCRIPTION native_sub CONNECTION '$SRC_DSN' PUBLICATION bench
      WITH (enabled = false, copy_data = false, create_slot = true, slot_name = 'native_slot',
            streaming = $SUB_STREAMING, binary = $BINARY)"
  fi
  if wants sluice; then
    local common
    common="log: { level: info, format: text }
pipelines:
  - name: bench
    source:
      dsn: \"$SRC_DSN\"
      publication: bench
      create_publication: false
      adopt_slot: true
      streaming: $STREAMING
      binary: $BINARY
    snapshot: never"
    # The slot-creating run is a tail (it needs no target) with its own state directory, so the
    # timed run starts from the slot's position with a fresh state (adopt_slot: it did not make
    # the slot itself).
    printf 'state_dir: %s\n%s\n    target: { type: none }\n' "$DIR/tail-state" "$common" \
      >"$DIR/sluice-tail.yaml"
    printf 'state_dir: %s\nadmin: { listen: "127.0.0.1:%s" }\n%s\n' "$DIR/state" "$(free_port)" \
      "$common" >"$DIR/sluice.yaml"
    [ -z "$SLUICE_NICE" ] || sed -i "1i nice: $SLUICE_NICE" "$DIR/sluice.yaml"
    cat >>"$DIR/sluice.yaml" <<YAML
    target:
      type: postgres
      dsn: "host=127.0.0.1 port=$TGT_PORT dbname=sluice user=postgres"
YAML
    [ -z "$SLUICE_APPLY" ] || echo "      apply: $SLUICE_APPLY" >>"$DIR/sluice.yaml"
    [ -z "$SLUICE_CAPTURE" ] || echo "    capture: $SLUICE_CAPTURE" >>"$DIR/sluice.yaml"
    timeout 120 "$SLUICE" tail --config "$DIR/sluice-tail.yaml" --pipeline bench \
      --endpos "$(current_lsn)" --format none >/dev/null 2>"$DIR/sluice-setup.log" ||
      { cat "$DIR/sluice-setup.log" >&2; die "sluice could not create its slot"; }
  fi
  local expected=0 slots
  wants native && expected=$((expected + 1))
  wants sluice && expected=$((expected + 1))
  slots="$(src -c "SELECT count(*) FROM pg_replication_slots
                   WHERE slot_name IN ('native_slot', 'sluice_bench')")"
  [ "$slots" = "$expected" ] || die "expected $expected replication slots, found $slots"
}

# After the backlog: END is the source's WAL position, WAL_BYTES the backlog's size.
# Checkpoints now, so that no checkpoint of the backlog's pages runs while a consumer is timed.
end_backlog() {
  END="$(current_lsn)"
  WAL_BYTES="$(src -c "SELECT pg_wal_lsn_diff('$END', '$START_LSN')::bigint")"
  src -q -c "CHECKPOINT"
  psql_at "$TGT_PORT" -d postgres -c "CHECKPOINT"
}

# wait_applied DB LSN [WATCH_PID]: waits until target database DB has committed the source
# transaction ending at LSN and prints the server's clock at that moment (epoch seconds). DB
# native: the subscription's replication origin (advanced in the apply worker's commit); DB
# sluice: sluice.applied (written in the same target transaction as the rows). One psql session
# polls every 20 ms on the server (cheap, precise). Fails (1) after TIMEOUT seconds, or (2) when
# process WATCH_PID (if given) exits first.
wait_applied() {
  local db="$1" lsn="$2" watch="${3:-}" waiter rc=0 read_position
  if [ "$db" = native ]; then
    read_position="SELECT s.remote_lsn INTO pos FROM pg_replication_origin_status s
        JOIN pg_subscription sub ON s.external_id = 'pg_' || sub.oid
       WHERE sub.subname = 'native_sub';"
  else
    # sluice creates its table when it starts: until then there is nothing to read. (Not
    # to_regclass: inside one statement it may keep answering from a stale catalog cache.)
    read_position="IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'sluice' AND c.relname = 'applied') THEN
        EXECUTE 'SELECT end_lsn FROM sluice.applied WHERE pipeline = ''bench''' INTO pos;
      END IF;"
  fi
  tgt "$db" -q -o "$DIR/reached.$db" -c "SET statement_timeout = '${TIMEOUT}s'" -c "
    DO \$\$ DECLARE pos pg_lsn; BEGIN
      LOOP
        pos := NULL;
        $read_position
        EXIT WHEN pos >= '$lsn'::pg_lsn;
        PERFORM pg_sleep(0.02);
      END LOOP;
    END \$\$" -c "SELECT extract(epoch FROM clock_timestamp())" 2>"$DIR/wait.$db.log" &
  waiter=$!
  while kill -0 "$waiter" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then
      kill "$waiter" 2>/dev/null || true
      wait "$waiter" || true
      return 2
    fi
    sleep 0.1
  done
  wait "$waiter" || rc=$?
  [ "$rc" = 0 ] || { cat "$DIR/wait.$db.log" >&2; return 1; }
  cat "$DIR/reached.$db"
}

# proc_cpu PID: CPU seconds (user + system) process PID has used so far, "-" when it is gone.
# Only meaningful here because the servers run on this machine.
proc_cpu() {
  local ticks
  ticks="$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null)" || { echo -; return; }
  calc "$ticks / $(getconf CLK_TCK)" '%.2f\n'
}

# server_cpu LABEL SLOT TARGET_PID_SQL: right after a consumer caught up (its processes still
# run), the CPU used by the walsender serving SLOT and by the target's applying process, into
# DIR/LABEL.walsender_cpu and DIR/LABEL.target_cpu. Each server process started with the run, so
# its whole CPU time is the run's.
server_cpu() {
  local label="$1" slot="$2" target_sql="$3" pid
  pid="$(src -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$slot'")"
  proc_cpu "${pid:-0}" >"$DIR/$label.walsender_cpu"
  pid="$(tgt "$label" -c "$target_sql")"
  proc_cpu "${pid:-0}" >"$DIR/$label.target_cpu"
}

slot_confirmed() {
  src -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"
}
lsn_reached() { [ "$(src -c "SELECT '$1'::pg_lsn >= '$2'::pg_lsn")" = t ]; }

# record WORKLOAD CONSUMER LABEL: one result row from the measurement files.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$EXPECTED_CHANGES" \
    "$EXPECTED_TXNS" "$WAL_BYTES" "$(cat "$DIR/$3.wall")" \
    "$(cat "$DIR/$3.rss" 2>/dev/null || echo -)" "$(cat "$DIR/$3.cpu" 2>/dev/null || echo -)" \
    "$(cat "$DIR/$3.walsender_cpu")" "$(cat "$DIR/$3.target_cpu")" >>"$RESULTS"
}

# The native subscription: enabled, then timed until the target committed the backlog's last
# transaction.
run_native() {
  local workload="$1" start reached confirmed
  log "$workload: native subscription (until the target applied $LAST_COMMIT)"
  start="$(now_seconds)"
  tgt native -q -c "ALTER SUBSCRIPTION native_sub ENABLE"
  reached="$(wait_applied native "$LAST_COMMIT")" ||
    die "the native subscription did not apply $LAST_COMMIT within ${TIMEOUT}s (target log: $DIR/target/server.log)"
  awk -v s="$start" -v e="$reached" 'BEGIN { printf "%.3f\n", e - s }' >"$DIR/native.wall"
  server_cpu native native_slot "SELECT pid FROM pg_stat_subscription WHERE subname = 'native_sub'"
  tgt native -q -c "ALTER SUBSCRIPTION native_sub DISABLE"
  record "$workload" "native subscription" native
}

# sluice run, timed from its start until the target committed the backlog's last transaction,
# then stopped with SIGTERM.
run_sluice() {
  local workload="$1" start reached rc=0 confirmed
  log "$workload: sluice run (until the target applied $LAST_COMMIT)"
  start="$(now_seconds)"
  "$GNU_TIME" -f '%M %U %S' -o "$DIR/sluice.time" \
    "$SLUICE" run --config "$DIR/sluice.yaml" 2>"$DIR/sluice.log" &
  SLUICE_TIME_PID=$!
  reached="$(wait_applied sluice "$LAST_COMMIT" "$SLUICE_TIME_PID")" || rc=$?
  if [ "$rc" != 0 ]; then
    tail -20 "$DIR/sluice.log" >&2
    [ "$rc" = 2 ] && die "sluice run exited before the target applied $LAST_COMMIT"
    die "sluice run did not apply $LAST_COMMIT within ${TIMEOUT}s"
  fi
  server_cpu sluice sluice_bench \
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'sluice-apply-bench'"
  stop_timed "$SLUICE_TIME_PID" ||
    { SLUICE_TIME_PID=; tail -20 "$DIR/sluice.log" >&2; die "sluice run failed on SIGTERM"; }
  SLUICE_TIME_PID=
  measure_files_from sluice "$DIR" "$start" "$reached"
  # On a clean stop sluice sends a last feedback: the slot confirms what the target holds.
  confirmed="$(slot_confirmed sluice_bench)"
  lsn_reached "$confirmed" "$LAST_COMMIT" ||
    log "note: after sluice stopped, sluice_bench confirmed only $confirmed < $LAST_COMMIT"
  record "$workload" "sluice run" sluice
}

# LAST_COMMIT, the end of the backlog's last transaction, is the WAL position read in the
# session that committed it, right after the commit (nothing else writes on the source:
# autovacuum is off). Both consumers are timed until their target committed it.
# Between the two, a checkpoint on the target: the first consumer's rows are still dirty in the
# target's shared buffers, and without it the second consumer's backend would pay for writing
# them out while it is timed. Whoever goes second still finds the buffers holding the first
# one's pages, so the consumers take turns going first (native in odd repetitions).
run_consumers() {
  local first=native second=sluice c
  if [ $((REP % 2)) = 0 ]; then first=sluice second=native; fi
  for c in "$first" "$second"; do
    wants "$c" || continue
    if [ "$c" = "$second" ] && wants "$first"; then
      psql_at "$TGT_PORT" -d postgres -c "CHECKPOINT"
    fi
    "run_$c" "$1"
  done
}

# verify TABLE...: every target database holds exactly the source's rows.
verify() {
  local t db want got
  for t in "$@"; do
    want="$(table_digest "$SRC_PORT" bench "$t")"
    for db in native sluice; do
      if [ "$db" = native ] && ! wants native; then continue; fi
      if [ "$db" = sluice ] && ! wants sluice; then continue; fi
      got="$(table_digest "$TGT_PORT" "$db" "$t")"
      [ "$got" = "$want" ] ||
        die "target database $db, table $t: rows/checksum $got, source has $want"
    done
  done
  log "verified: targets equal the source ($*)"
}

workload_rows() {
  start_clusters rows
  schema_everywhere "CREATE TABLE bench_rows (id bigint PRIMARY KEY, a int, b text, c timestamptz)"
  create_consumers bench_rows
  log "rows: inserting $ROWS rows in $ROW_TXNS transactions"
  local per_txn=$((ROWS / ROW_TXNS)) i from
  START_LSN="$(current_lsn)"
  {
    for ((i = 0; i < ROW_TXNS; i++)); do
      from=$((i * per_txn + 1))
      echo "INSERT INTO bench_rows SELECT g, (g % 100000)::int, md5(g::text) || lpad(g::text, 8, '0'),
              '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
            FROM generate_series($from, $((from + per_txn - 1))) g;"
    done
    echo "SELECT pg_current_wal_lsn();"
  } | src -q >"$DIR/last_commit"
  LAST_COMMIT="$(cat "$DIR/last_commit")"
  EXPECTED_CHANGES="$ROWS"
  EXPECTED_TXNS="$ROW_TXNS"
  end_backlog
  run_consumers "rows ($ROWS inserts / $ROW_TXNS txns)"
  verify bench_rows
  stop_clusters
}

workload_pgbench() {
  start_clusters pgbench
  log "pgbench: initializing scale $SCALE and copying it to both targets"
  "$PG_BIN/pgbench" -h 127.0.0.1 -p "$SRC_PORT" -U postgres -i -q -s "$SCALE" bench \
    >"$DIR/pgbench-init.log" 2>&1 || { cat "$DIR/pgbench-init.log" >&2; die "pgbench -i failed"; }
  # pgbench_history has no primary key: sluice refuses a table whose updates and deletes it
  # could not apply. pgbench only inserts into it; FULL adds nothing to insert WAL.
  src -q -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"
  local tables="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"
  # shellcheck disable=SC2086
  copy_to_targets $tables
  create_consumers "${tables// /, }"

  log "pgbench: $TXNS TPC-B transactions ($CLIENTS clients)"
  START_LSN="$(current_lsn)"
  "$PG_BIN/pgbench" -h 127.0.0.1 -p "$SRC_PORT" -U postgres -n -c "$CLIENTS" -j 2 \
    -t $((TXNS / CLIENTS)) bench >"$DIR/pgbench.log" 2>&1 ||
    { cat "$DIR/pgbench.log" >&2; die "pgbench failed"; }
  grep -q "number of transactions actually processed: $TXNS/$TXNS" "$DIR/pgbench.log" ||
    { cat "$DIR/pgbench.log" >&2; die "pgbench did not process all $TXNS transactions"; }
  # pgbench's last commit and a later WAL read leave a gap in which a background record could
  # land; one closing transaction whose end is read in its own session closes that gap.
  LAST_COMMIT="$(src -c "UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1" \
    -c "SELECT pg_current_wal_lsn()")"
  # TPC-B: update accounts, tellers, branches, insert history (the SELECT changes nothing);
  # plus the closing update.
  EXPECTED_CHANGES=$((TXNS * 4 + 1))
  EXPECTED_TXNS=$((TXNS + 1))
  end_backlog
  run_consumers "pgbench ($TXNS TPC-B txns)"
  # shellcheck disable=SC2086
  verify $tables
  stop_clusters
}

workload_toast() {
  start_clusters toast
  local bytes=$((TOAST_KB * 1024))
  log "toast: loading $UPDATES rows with a ${TOAST_KB} KB text column and copying them to both targets"
  # The payload is a row's own md5 followed by a slice of a pool of hex md5 digests: nothing
  # repeats inside a value, so compression could not help, and STORAGE EXTERNAL skips the
  # attempt (which only costs load time). Every value is stored out of line (TOAST), uncompressed.
  src -q -c "CREATE TABLE bench_toast (id int PRIMARY KEY, n int NOT NULL, payload text NOT NULL)" \
    -c "ALTER TABLE bench_toast ALTER payload SET STORAGE EXTERNAL" \
    -c "INSERT INTO bench_toast
          SELECT g, 0, md5(g::text) || substr(pool.s, 1 + g % $bytes, $((bytes - 32)))
            FROM (SELECT string_agg(md5(i::text), '') AS s
                    FROM generate_series(1, $((bytes / 16))) i) pool,
                 generate_series(1, $UPDATES) g"
  copy_to_targets bench_toast
  local toasted
  toasted="$(src -c "SELECT count(*) FROM bench_toast WHERE pg_column_size(payload) > 2000
                                                    AND pg_column_compression(payload) IS NULL")"
  [ "$toasted" = "$UPDATES" ] || die "only $toasted of $UPDATES payloads are stored uncompressed"
  create_consumers bench_toast

  local txns=$((UPDATES / UPDATE_BATCH)) i from
  log "toast: $UPDATES updates of n in $txns transactions (payload unchanged)"
  START_LSN="$(current_lsn)"
  {
    for ((i = 0; i < txns; i++)); do
      from=$((i * UPDATE_BATCH + 1))
      echo "UPDATE bench_toast SET n = n + 1 WHERE id BETWEEN $from AND $((from + UPDATE_BATCH - 1));"
    done
    echo "SELECT pg_current_wal_lsn();"
  } | src -q >"$DIR/last_commit"
  LAST_COMMIT="$(cat "$DIR/last_commit")"
  EXPECTED_CHANGES="$UPDATES"
  EXPECTED_TXNS="$txns"
  end_backlog
  run_consumers "toast ($UPDATES updates / $txns txns, ${TOAST_KB} KB unchanged)"
  verify bench_toast
  stop_clusters
}

print_table() {
  echo "## sluice apply catch-up ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  local version=""
  if wants sluice; then version=", $("$SLUICE" --version)"; fi
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"\
    "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')$version, source via $SOURCE_VIA, streaming=$STREAMING, binary=$BINARY."
  echo "Source, target and sluice share the machine. Both consumers apply the same backlog from"
  echo "their own slot into their own target database, one after the other, taking turns going"
  echo "first. $REPEAT run(s) of each workload on fresh clusters; each figure is the consumer's"
  echo "median, with the range of its seconds and of the ratio over the runs."
  echo "Load average before the run: $LOAD_BEFORE; after: $(cut -d ' ' -f 1-3 /proc/loadavg)."
  echo
  echo "Walsender CPU is the source's process serving the consumer's slot; target CPU is the"
  echo "native apply worker, or the target backend of sluice's apply session."
  echo
  echo "| workload | consumer | runs | changes | txns | WAL MB | seconds (range) | changes/s | txns/s | vs native (range) | sluice CPU s | sluice peak RSS MB | walsender CPU s | target CPU s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}  # (workload, consumer) -> list of rows, in the order first seen
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    runs.setdefault((f[0], f[1]), []).append(f)

def median(rows, i, scale=1.0, fmt="%.2f"):
    values = [float(r[i]) / scale for r in rows if r[i] != "-"]
    return fmt % statistics.median(values) if values else "-"

for (workload, consumer), rows in runs.items():
    seconds = [float(r[5]) for r in rows]
    natives = runs.get((workload, "native subscription"), [])
    ratio = "-"
    if natives:
        # One ratio per repetition (same clusters, same backlog), then their median and range.
        pairs = [float(n[5]) / float(r[5]) for n, r in zip(natives, rows)]
        ratio = "%.2fx (%.2f-%.2f)" % (statistics.median(pairs), min(pairs), max(pairs))
    changes, txns, wal = int(rows[0][2]), int(rows[0][3]), int(rows[0][4])
    mid = statistics.median(seconds)
    print("| %s | %s | %d | %d | %d | %.1f | %.2f (%.2f-%.2f) | %.0f | %.0f | %s | %s | %s | %s | %s |" % (
        workload, consumer, len(rows), changes, txns, wal / 1048576, mid, min(seconds),
        max(seconds), changes / mid, txns / mid, ratio, median(rows, 7),
        median(rows, 6, 1024, "%.1f"), median(rows, 8), median(rows, 9)))
PY
}

for ((REP = 1; REP <= REPEAT; REP++)); do
  for workload in $WORKLOADS; do
    case "$workload" in
      rows) workload_rows ;;
      pgbench) workload_pgbench ;;
      toast) workload_toast ;;
      *) die "unknown workload '$workload' (rows, pgbench, toast)" ;;
    esac
  done
done

print_table >"$WORK/results.md"
cat "$WORK/results.md"
if [ -n "$OUT" ]; then cp "$WORK/results.md" "$OUT"; fi
