#!/usr/bin/env bash
# Runs clang-tidy (the repo's .clang-tidy) over sluice's product code: every *.cc under core,
# pg, codec, capture, apply, state, control, config and cli except the unit tests (*_test.cc),
# and through them the project's own headers. Tests, benchmarks and fuzz targets are not checked.
# Exits non-zero on any finding (.clang-tidy makes every warning an error).
#
# Environment:
#   BUILD_DIR=build      build tree whose compile_commands.json to use; configured if it has none
#   JOBS=N               parallel clang-tidy processes (default: nproc)
#   CLANG_TIDY=...       clang-tidy binary (default: clang-tidy)
#   RUN_CLANG_TIDY=...   run-clang-tidy script (default: run-clang-tidy)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
clang_tidy="${CLANG_TIDY:-clang-tidy}"
run_clang_tidy="${RUN_CLANG_TIDY:-run-clang-tidy}"
modules=(core pg codec capture apply state control config cli)

for tool in "$clang_tidy" "$run_clang_tidy"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tidy: $tool not found (scripts/install-deps.sh installs clang-tidy)" >&2
    exit 1
  fi
done

# Configuring is enough: clang-tidy needs the compile commands, not the objects.
if [[ ! -f "$build_dir/compile_commands.json" ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
build_abs="$(cd "$build_dir" && pwd)"

modules_regex="$(
  IFS='|'
  echo "${modules[*]}"
)"
# A new top-level source directory is product code until someone says otherwise here.
not_product=(tests bench fuzz)
unlisted=0
while read -r dir; do
  if [[ " ${modules[*]} ${not_product[*]} " != *" $dir "* ]]; then
    echo "tidy: $dir/ holds C++ but is neither in modules nor not_product of $0" >&2
    unlisted=1
  elif [[ " ${modules[*]} " == *" $dir "* ]] &&
    ! grep -qE "^HeaderFilterRegex:.*[(|]${dir}[|)]" .clang-tidy; then
    echo "tidy: .clang-tidy's HeaderFilterRegex does not cover $dir/" >&2
    unlisted=1
  fi
done < <(git ls-files -- '*.cc' '*.h' | grep / | cut -d/ -f1 | sort -u)
[[ $unlisted -eq 0 ]] || exit 1

# Every product source must be in the compile database, or it would go unchecked silently.
mapfile -t sources < <(git ls-files -- '*.cc' | grep -E "^($modules_regex)/[^/]+\.cc$" |
  grep -v '_test\.cc$')
missing=0
for source in "${sources[@]}"; do
  if ! grep -qF "\"file\": \"$repo_root/$source\"" "$build_abs/compile_commands.json"; then
    echo "tidy: $source is not in $build_dir/compile_commands.json (reconfigure the build)" >&2
    missing=1
  fi
done
[[ $missing -eq 0 ]] || exit 1

log="$(mktemp "${TMPDIR:-/tmp}/sluice-tidy-XXXXXX")"
trap 'rm -f "$log"' EXIT
version="$("$clang_tidy" --version | grep -o 'version [0-9.]*')"
echo "tidy: ${#sources[@]} files, $jobs jobs, clang-tidy $version"
status=0
"$run_clang_tidy" -p "$build_abs" -j "$jobs" -quiet \
  -clang-tidy-binary "$(command -v "$clang_tidy")" \
  "^$repo_root/($modules_regex)/[^/]+(?<!_test)\\.cc\$" >"$log" 2>&1 || status=$?
# run-clang-tidy 14 always asks for colour; plain text is what logs and grep want.
sed -i 's/\x1b\[[0-9;]*m//g' "$log"

# A header's findings repeat once per file that includes it: list each once.
# (Some have no location at all: those count too.)
findings="$(grep -E '^(/[^ ]+:[0-9]+:[0-9]+: )?(warning|error): ' "$log" | sort -u || true)"
if [[ $status -ne 0 || -n "$findings" ]]; then
  cat "$log"
  echo
  if [[ -n "$findings" ]]; then
    echo "${findings//$repo_root\//}"
    echo "tidy: $(echo "$findings" | wc -l) finding(s) (full output above)"
  else
    echo "tidy: run-clang-tidy failed (exit $status; full output above)"
  fi
  exit 1
fi
echo "tidy: clean"
