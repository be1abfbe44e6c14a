#!/usr/bin/env bash
# Initial copy: how long `sluice run` takes to copy a database to an empty PostgreSQL target
# (snapshot: initial), compared with `pg_dump | psql` and `pgcopydb clone` between the same two
# clusters in the same run. A benchmark, not a test: it reports numbers and only fails when a
# copy failed or a copied table differs from the source.
#
# Usage: bench/initial_copy.sh            (see bench/README.md)
# Environment:
#   SIZE_GB=2         approximate source database size (pgbench scale 65 per GB) ...
#   SCALE=            ... or the pgbench scale itself (overrides SIZE_GB)
#   JOBS=2            parallel workers: sluice copy_jobs, pgcopydb --table-jobs and --index-jobs
#   METHODS="dump pgcopydb sluice"
#   VERIFY=1          compare every copied table with the source (rows + checksum); 0 skips it
#   TIMEOUT=1800      seconds a copy may take before the run fails
#   OUT=FILE          also write the Markdown results table to FILE
#   BUILD_DIR=build   where scripts/build.sh builds; SKIP_BUILD=1 uses an existing binary
#   SLUICE=PATH       sluice binary (default BUILD_DIR/cli/sluice)
#   KEEP=1            keep the temporary directory (clusters, logs, configs) for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SIZE_GB="${SIZE_GB:-2}"
SCALE="${SCALE:-$(awk -v g="$SIZE_GB" 'BEGIN { s = int(g * 65 + 0.5); print s < 1 ? 1 : s }')}"
JOBS="${JOBS:-2}"
METHODS="${METHODS:-dump pgcopydb sluice}"
VERIFY="${VERIFY:-1}"
TIMEOUT="${TIMEOUT:-1800}"
OUT="${OUT:-}"
BUILD_DIR="${BUILD_DIR:-build}"
SLUICE="${SLUICE:-$ROOT/$BUILD_DIR/cli/sluice}"

source scripts/lib/pg.sh
source bench/lib/common.sh
source bench/lib/measure.sh
source bench/lib/apply_common.sh

wants() { wants_in "$1" "$METHODS"; }

for m in $METHODS; do
  case "$m" in
    dump | pgcopydb | sluice) ;;
    *) die "unknown method '$m' (dump, pgcopydb, sluice)" ;;
  esac
done
if wants sluice; then ensure_sluice; fi
ensure_gnu_time
if wants pgcopydb && ! command -v pgcopydb >/dev/null; then
  log "pgcopydb missing: installing the 'pgcopydb' package"
  apt-get install -y pgcopydb >/dev/null || die "cannot install pgcopydb; install it or drop it from METHODS"
fi
for tool in pgbench psql pg_dump; do
  [ -x "$PG_BIN/$tool" ] || die "missing $PG_BIN/$tool"
done

LOAD_BEFORE="$(cut -d ' ' -f 1-3 /proc/loadavg)"
WORK="$(mktemp -d /tmp/sluice-copy-bench.XXXXXX)"
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
TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history"

SRC_PORT="$(free_port)"
pg_start "$WORK/source" "$SRC_PORT" "autovacuum = off"
CLUSTERS+=("$WORK/source")
TGT_PORT="$(free_port)"
# Autovacuum off on the target too: only the copy under test works there while it is timed.
pg_start "$WORK/target" "$TGT_PORT" "autovacuum = off"
CLUSTERS+=("$WORK/target")
SRC_URI="postgresql://postgres@127.0.0.1:$SRC_PORT/bench"
psql_at "$SRC_PORT" -d postgres -c "CREATE DATABASE bench"

log "source: pgbench -i -s $SCALE"
"$PG_BIN/pgbench" -h 127.0.0.1 -p "$SRC_PORT" -U postgres -i -q -s "$SCALE" bench \
  >"$WORK/pgbench-init.log" 2>&1 || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
# sluice refuses to publish a table whose updates and deletes it could not apply:
# pgbench_history has no primary key.
sql_at "$SRC_PORT" bench -q -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" -c "CHECKPOINT"
DB_BYTES="$(sql_at "$SRC_PORT" bench -c "SELECT pg_database_size('bench')")"
ROWS="$(sql_at "$SRC_PORT" bench -c "SELECT (SELECT count(*) FROM pgbench_accounts) +
  (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_tellers)")"
log "source: $(calc "$DB_BYTES / 1048576") MB, $ROWS rows"

# A fresh target database; the target's dirty pages of the previous copy are written out first.
fresh_target() {
  psql_at "$TGT_PORT" -d postgres -c "CHECKPOINT" -c "CREATE DATABASE $1"
}

# record METHOD DB LABEL: one result row (the target database's size and index count).
record() {
  local method="$1" db="$2" label="$3" size indexes
  size="$(sql_at "$TGT_PORT" "$db" -c "SELECT pg_database_size(current_database())")"
  indexes="$(sql_at "$TGT_PORT" "$db" -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$method" "$(cat "$WORK/$label.wall")" "$size" "$indexes" \
    "$(cat "$WORK/$label.rss" 2>/dev/null || echo -)" "$(cat "$WORK/$label.cpu" 2>/dev/null || echo -)" \
    >>"$RESULTS"
}

verify() {
  local db="$1" t want got
  [ "$VERIFY" = 1 ] || return 0
  for t in $TABLES; do
    want="$(table_digest "$SRC_PORT" bench "$t")"
    got="$(table_digest "$TGT_PORT" "$db" "$t")"
    [ "$got" = "$want" ] || die "target database $db, table $t: rows/checksum $got, source has $want"
  done
  log "verified: $db equals the source"
}

run_dump() {
  log "pg_dump | psql"
  fresh_target dump
  local start end
  start="$(now_seconds)"
  "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$SRC_PORT" -U postgres -d bench |
    psql_at "$TGT_PORT" -d dump >"$WORK/dump.log" 2>&1 ||
    { tail -20 "$WORK/dump.log" >&2; die "pg_dump | psql failed"; }
  end="$(now_seconds)"
  calc "$end - $start" '%.3f\n' >"$WORK/dump.wall"
  record "pg_dump | psql" dump dump
  verify dump
}

run_pgcopydb() {
  log "pgcopydb clone --table-jobs $JOBS --index-jobs $JOBS"
  fresh_target pgcopydb
  local start end
  start="$(now_seconds)"
  timeout "$TIMEOUT" pgcopydb clone --source "$SRC_URI" \
    --target "postgresql://postgres@127.0.0.1:$TGT_PORT/pgcopydb" \
    --table-jobs "$JOBS" --index-jobs "$JOBS" --dir "$WORK/pgcopydb-work" \
    >"$WORK/pgcopydb.log" 2>&1 || { tail -20 "$WORK/pgcopydb.log" >&2; die "pgcopydb clone failed"; }
  end="$(now_seconds)"
  calc "$end - $start" '%.3f\n' >"$WORK/pgcopydb.wall"
  record "pgcopydb clone" pgcopydb pgcopydb
  verify pgcopydb
}

# sluice run with snapshot: initial, timed from its start until it logs that the copy is done
# (the log line's own timestamp), then stopped with SIGTERM.
run_sluice() {
  log "sluice run (snapshot: initial, copy_jobs: $JOBS)"
  fresh_target sluice
  cat >"$WORK/sluice.yaml" <<YAML
state_dir: $WORK/state
admin: { listen: "127.0.0.1:$(free_port)" }
log: { level: info, format: text }
pipelines:
  - name: copy
    source:
      dsn: "host=127.0.0.1 port=$SRC_PORT dbname=bench user=postgres"
      tables: ["public.*"]
    target:
      type: postgres
      dsn: "host=127.0.0.1 port=$TGT_PORT dbname=sluice user=postgres"
      apply: { create_tables: true, copy_jobs: $JOBS }
    snapshot: initial
YAML
  local start done_line="" deadline
  start="$(now_seconds)"
  "$GNU_TIME" -f '%M %U %S' -o "$WORK/sluice.time" \
    "$SLUICE" run --config "$WORK/sluice.yaml" 2>"$WORK/sluice.log" &
  SLUICE_TIME_PID=$!
  deadline=$(($(date +%s) + TIMEOUT))
  while [ -z "$done_line" ]; do
    done_line="$(grep -m1 'initial copy done' "$WORK/sluice.log" || true)"
    [ -n "$done_line" ] && break
    if ! kill -0 "$SLUICE_TIME_PID" 2>/dev/null; then
      SLUICE_TIME_PID=
      tail -20 "$WORK/sluice.log" >&2
      die "sluice run exited before its initial copy was done"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$WORK/sluice.log" >&2; die "sluice copy took over ${TIMEOUT}s"; }
    sleep 0.2
  done
  stop_timed "$SLUICE_TIME_PID" ||
    { SLUICE_TIME_PID=; tail -20 "$WORK/sluice.log" >&2; die "sluice run failed on SIGTERM"; }
  SLUICE_TIME_PID=
  # The log line starts with its local time, "YYYY-MM-DD HH:MM:SS.mmm".
  local done_at
  done_at="$(date -d "$(cut -c 1-23 <<<"$done_line")" +%s.%N)"
  measure_files_from sluice "$WORK" "$start" "$done_at"
  log "sluice: ${done_line#* info }"
  record "sluice run" sluice sluice
  verify sluice
}

! wants dump || run_dump
! wants pgcopydb || run_pgcopydb
! wants sluice || run_sluice

print_table() {
  echo "## sluice initial copy ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  local version=""
  if wants sluice; then version=", $("$SLUICE" --version)"; fi
  local pgcopydb_version=""
  if wants pgcopydb; then
    pgcopydb_version=", pgcopydb $(pgcopydb --version 2>/dev/null | awk '/pgcopydb version/ { print $3 }')"
  fi
  echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"\
    "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')$version$pgcopydb_version."
  echo "Source: pgbench scale $SCALE, $(calc "$DB_BYTES / 1048576") MB (pg_database_size), $ROWS rows"
  echo "(accounts + branches + tellers). Each method copies it into a fresh database on the target"
  echo "cluster, one after the other, with $JOBS parallel jobs where it has them."
  echo "Load average before the run: $LOAD_BEFORE; after: $(cut -d ' ' -f 1-3 /proc/loadavg)."
  echo
  echo "| method | seconds | source MB/s | vs pg_dump \\| psql | vs sluice | target MB | target indexes | CPU s | peak RSS MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F '\t' -v bytes="$DB_BYTES" '
    {
      n++; method[n] = $1; seconds[n] = $2; size[n] = $3; indexes[n] = $4; rss[n] = $5; cpu[n] = $6
      if ($1 == "pg_dump | psql") dump = $2
      if ($1 == "sluice run") sluice = $2
    }
    END {
      for (i = 1; i <= n; i++) {
        mbs = seconds[i] > 0 ? bytes / 1048576 / seconds[i] : 0
        vs_dump = dump > 0 ? sprintf("%.2fx", dump / seconds[i]) : "-"
        vs_sluice = sluice > 0 ? sprintf("%.2fx", sluice / seconds[i]) : "-"
        cpu_s = cpu[i] == "-" ? "-" : sprintf("%.1f", cpu[i])
        rss_mb = rss[i] == "-" ? "-" : sprintf("%.1f", rss[i] / 1024)
        name = method[i]
        gsub(/\|/, "\\|", name)
        printf "| %s | %.1f | %.1f | %s | %s | %.0f | %d | %s | %s |\n", name, seconds[i], mbs,
          vs_dump, vs_sluice, size[i] / 1048576, indexes[i], cpu_s, rss_mb
      }
    }' "$RESULTS"
}

print_table >"$WORK/results.md"
cat "$WORK/results.md"
if [ -n "$OUT" ]; then cp "$WORK/results.md" "$OUT"; fi
