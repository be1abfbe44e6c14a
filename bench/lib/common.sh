# shellcheck shell=bash
# The preamble every bench script shares: progress lines, fatal errors named after the script,
# and the choice of what to run (a space-separated list in the variable the script names).

BENCH_NAME="$(basename "${BASH_SOURCE[1]:-bench}" .sh)"

log() { echo "== $*" >&2; }

die() {
  echo "${BENCH_NAME}: $*" >&2
  exit 1
}

# wants WORD LIST: true when WORD is one of LIST's space-separated words.
wants_in() { [[ " $2 " == *" $1 "* ]]; }
