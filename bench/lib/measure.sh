# shellcheck shell=bash
# Measurement helpers for the bench/ scripts (sourced, not run).

# GNU time is needed for peak RSS (the shell keyword `time` cannot report it).
GNU_TIME="${GNU_TIME:-/usr/bin/time}"

ensure_gnu_time() {
  if [ -x "$GNU_TIME" ] && "$GNU_TIME" -f '%M' true >/dev/null 2>&1; then return 0; fi
  echo "GNU time missing: installing the 'time' package" >&2
  apt-get install -y time >/dev/null || {
    echo "cannot install GNU time; install the 'time' package" >&2
    return 1
  }
}

now_seconds() { date +%s.%N; }

# measure LABEL DIR CMD...: runs CMD under GNU time; wall seconds go to DIR/LABEL.wall, peak
# RSS in KiB to DIR/LABEL.rss, CPU seconds (user + system) to DIR/LABEL.cpu. Returns CMD's exit
# status. Stdin/stdout pass through, so `measure ... | consumer` works (only CMD itself is timed
# and measured).
measure() {
  local label="$1" dir="$2"
  shift 2
  local start end rc=0
  start="$(now_seconds)"
  "$GNU_TIME" -f '%M %U %S' -o "$dir/$label.time" "$@" || rc=$?
  end="$(now_seconds)"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >"$dir/$label.wall"
  # GNU time prefixes "Command exited with non-zero status N" on failure: the number is last.
  tail -n 1 "$dir/$label.time" | awk '{ print $1 }' >"$dir/$label.rss"
  tail -n 1 "$dir/$label.time" | awk '{ printf "%.2f\n", $2 + $3 }' >"$dir/$label.cpu"
  return "$rc"
}

# Arithmetic on decimals: calc 'EXPR' with awk syntax, printed with the given printf format.
calc() { awk "BEGIN { printf \"${2:-%.0f}\", $1 }"; }
