# shellcheck shell=bash
# Helpers shared by bench/apply_catchup.sh and bench/initial_copy.sh (sourced, not run). Expects
# scripts/lib/pg.sh and bench/lib/measure.sh to be sourced first, and the caller to define die().

# sql_at PORT DB [psql args...]: unaligned, tuples only.
sql_at() {
  local port="$1" db="$2"
  shift 2
  psql_at "$port" -d "$db" -At "$@"
}

# The sluice binary: built into BUILD_DIR unless SKIP_BUILD or SLUICE says otherwise.
ensure_sluice() {
  if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building sluice ($BUILD_DIR)" >&2
    BUILD_DIR="$BUILD_DIR" BUILD_TARGETS=sluice scripts/build.sh >/dev/null
  fi
  [ -x "$SLUICE" ] || die "no sluice binary at $SLUICE"
  "$SLUICE" run --help >/dev/null 2>&1 || die "$SLUICE has no working 'run' command"
}

# table_digest PORT DB TABLE: "rows checksum". The checksum adds a 60-bit hash of every row's
# text form, so it does not depend on row order and needs no primary key (pgbench_history has
# none); two tables with the same columns and rows have the same digest.
table_digest() {
  sql_at "$1" "$2" -c "SELECT count(*) || ' ' ||
      coalesce(sum(('x' || substr(md5(r::text), 1, 15))::bit(60)::bigint), 0)
    FROM $3 AS r"
}

# child_of PID: the (single) child process of PID, e.g. the command GNU time runs.
child_of() { ps -o pid= --ppid "$1" | awk 'NR == 1 { print $1 }'; }

# stop_timed PID: sends SIGTERM to the command GNU time (PID) runs and waits for both; returns
# the command's exit status. GNU time itself would die of the signal without writing its
# measurements, so the signal goes to its child.
stop_timed() {
  local time_pid="$1" child rc=0
  child="$(child_of "$time_pid")"
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
  wait "$time_pid" || rc=$?
  return "$rc"
}

# measure_files_from LABEL DIR START END: the .wall/.rss/.cpu files of measure(), for a command
# run in the background under "$GNU_TIME -f '%M %U %S' -o DIR/LABEL.time" whose measured span
# is START..END (epoch seconds), not its whole life.
measure_files_from() {
  local label="$1" dir="$2" start="$3" end="$4"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >"$dir/$label.wall"
  tail -n 1 "$dir/$label.time" | awk '{ print $1 }' >"$dir/$label.rss"
  tail -n 1 "$dir/$label.time" | awk '{ printf "%.2f\n", $2 + $3 }' >"$dir/$label.cpu"
}
