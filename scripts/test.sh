#!/usr/bin/env bash
# The full test run (README's test command and CI's entry point):
#   1. install build/test dependencies (scripts/install-deps.sh)
#   2. build everything (RelWithDebInfo) and run the unit, then the integration tests
#   3. clang-tidy over the product code, warnings as errors (scripts/tidy.sh)
#   4. build the unit tests with AddressSanitizer + UBSan and run them there
#   5. build the unit tests with ThreadSanitizer and run them there (suppressions for
#      uninstrumented third-party code: scripts/tsan.supp)
#   6. build the libFuzzer targets with clang and run each one for a while on its seed corpus
#
# Environment:
#   BUILD_DIR=build      main build tree (relative to the repo root, or absolute)
#   SKIP_DEPS=1          do not run install-deps.sh
#   SKIP_TIDY=1          skip step 3
#   SKIP_ASAN=1          skip step 4
#   SKIP_TSAN=1          skip step 5
#   SKIP_FUZZ=1          skip step 6
#   FUZZ_SECONDS=60      run time of each fuzz target
#   CTEST_ARGS="..."     extra ctest arguments, e.g. CTEST_ARGS="-R capture"
#   JOBS=N               build/test parallelism (default: nproc)
# Exits non-zero when any step failed; prints a summary at the end.

# Functions below run through run_step and the EXIT trap, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir="${BUILD_DIR:-build}"
asan_dir="build-asan"
tsan_dir="build-tsan"
fuzz_dir="build-fuzz"
jobs="${JOBS:-$(nproc)}"
fuzz_seconds="${FUZZ_SECONDS:-60}"
read -r -a ctest_extra <<<"${CTEST_ARGS:-}"
# A label with no tests means broken test discovery, unless CTEST_ARGS filtered them away.
no_tests=(--no-tests=error)
[[ ${#ctest_extra[@]} -eq 0 ]] || no_tests=()

step_names=()
step_results=()
step_seconds=()
failed=0
started_all=$SECONDS

# run_step NAME COMMAND...: runs the command, records PASS/FAIL and how long it took.
run_step() {
  local name="$1"
  shift
  echo
  echo "==> ${name}"
  local start=$SECONDS
  local result=PASS
  if ! "$@"; then
    result=FAIL
    failed=1
  fi
  step_names+=("$name")
  step_results+=("$result")
  step_seconds+=($((SECONDS - start)))
  echo "<== ${name}: ${result} ($((SECONDS - start))s)"
  [[ "$result" == PASS ]]
}

skip_step() {
  step_names+=("$1")
  step_results+=("SKIP ($2)")
  step_seconds+=(0)
}

print_summary() {
  echo
  echo "================ sluice test summary ================"
  local i
  for i in "${!step_names[@]}"; do
    printf '  %-42s %-24s %5ss\n' "${step_names[$i]}" "${step_results[$i]}" "${step_seconds[$i]}"
  done
  echo "  total: $((SECONDS - started_all))s"
  if [[ $failed -eq 0 ]]; then
    echo "  RESULT: PASS"
  else
    echo "  RESULT: FAIL"
  fi
  echo "====================================================="
}
trap print_summary EXIT

ctest_run() {  # ctest_run DIR ARGS...
  local dir="$1"
  shift
  ctest --test-dir "$dir" --output-on-failure "${no_tests[@]}" --timeout 900 "$@" \
    "${ctest_extra[@]}"
}

# Unit-test executables: every CMake target named *_test except the integration tests
# (tests/integration/*_test.cc and tests/support/*_test.cc are their own executables).
unit_test_targets() {
  local dir="$1"
  local integration=" "
  local file
  for file in tests/integration/*_test.cc tests/support/*_test.cc; do
    [[ -e "$file" ]] && integration+="$(basename "$file" .cc) "
  done
  # "... name" lines from the Makefile generator, "name: phony" from Ninja.
  cmake --build "$dir" --target help |
    sed -n -e 's/^\.\.\. \([A-Za-z0-9_]*_test\)$/\1/p' -e 's/^\([A-Za-z0-9_]*_test\): phony$/\1/p' |
    while read -r target; do
      [[ "$integration" == *" $target "* ]] || echo "$target"
    done
}

# build_sanitized_unit_tests DIR CMAKE_OPTION: a build tree with that sanitizer option on, and
# only the unit-test executables built in it.
build_sanitized_unit_tests() {
  local dir="$1"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-D$2=ON" \
    -DSLUICE_BUILD_TESTS=ON -DSLUICE_BUILD_BENCH=OFF || return 1
  local targets
  targets=$(unit_test_targets "$dir") || return 1
  if [[ -z "$targets" ]]; then
    echo "no unit-test targets found; building everything"
    cmake --build "$dir" -j "$jobs"
  else
    # shellcheck disable=SC2086  # one word per target
    cmake --build "$dir" -j "$jobs" --target $targets
  fi
}

fuzz_targets() {
  local file
  for file in fuzz/*_fuzz.cc; do
    [[ -e "$file" ]] && basename "$file" .cc
  done
  return 0
}

build_fuzz_targets() {
  # Every library is instrumented too (fuzzer-no-link), or libFuzzer would see coverage only
  # of the fuzz target's own source and not of the parsers it calls.
  cmake -S . -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
    -DSLUICE_FUZZ=ON \
    -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF || return 1
  local targets
  targets=$(fuzz_targets)
  if [[ -z "$targets" ]]; then
    echo "no fuzz targets (fuzz/*_fuzz.cc)"
    return 0
  fi
  # shellcheck disable=SC2086  # one word per target
  cmake --build "$fuzz_dir" -j "$jobs" --target $targets
}

# Runs one fuzz target on a scratch copy of its seed corpus, so new inputs never land in the
# repository. A crash leaves its reproducer in build-fuzz/artifacts/<target>/.
run_fuzz_target() {
  local name="$1"
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-${name}-XXXXXX")
  mkdir -p "$work/corpus" "$work/artifacts"
  if [[ -d "fuzz/corpus/$name" ]]; then
    cp -R "fuzz/corpus/$name/." "$work/corpus/"
  else
    echo "note: no seed corpus fuzz/corpus/$name/"
  fi
  local seeds
  seeds=$(find "$work/corpus" -type f | wc -l)
  echo "fuzzing $name for ${fuzz_seconds}s from $seeds seed(s)"
  local status=0
  "$fuzz_dir/fuzz/$name" -max_total_time="$fuzz_seconds" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
    >"$work/log" 2>&1 </dev/null || status=$?
  if [[ $status -eq 0 ]]; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$work/log" || true
  else
    echo "fuzz target $name FAILED (exit $status); last lines of its log:"
    tail -n 60 "$work/log"
    mkdir -p "$fuzz_dir/artifacts/$name"
    cp -R "$work/artifacts/." "$fuzz_dir/artifacts/$name/" 2>/dev/null || true
    cp "$work/log" "$fuzz_dir/artifacts/$name/fuzz.log"
    echo "reproducers and log kept in $fuzz_dir/artifacts/$name/"
  fi
  rm -rf "$work"
  return "$status"
}

# --- 1. dependencies --------------------------------------------------------------------------
if [[ "${SKIP_DEPS:-0}" == 1 ]]; then
  skip_step "install dependencies" "SKIP_DEPS=1"
else
  run_step "install dependencies" scripts/install-deps.sh || exit 1
fi

# --- 2. main build and tests ------------------------------------------------------------------
if ! run_step "configure ($build_dir)" \
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_BUILD_TESTS=ON ||
  ! run_step "build ($build_dir)" cmake --build "$build_dir" -j "$jobs"; then
  echo "main build failed; not running any tests" >&2
  exit 1
fi
run_step "unit tests ($build_dir)" ctest_run "$build_dir" -L unit -j "$jobs" || true
run_step "integration tests ($build_dir, serial)" ctest_run "$build_dir" -L integration || true

# --- 3. clang-tidy ----------------------------------------------------------------------------
if [[ "${SKIP_TIDY:-0}" == 1 ]]; then
  skip_step "clang-tidy" "SKIP_TIDY=1"
else
  BUILD_DIR="$build_dir" JOBS="$jobs" run_step "clang-tidy (product code)" scripts/tidy.sh || true
fi

# --- 4. and 5. sanitizers ---------------------------------------------------------------------
if [[ "${SKIP_ASAN:-0}" == 1 ]]; then
  skip_step "ASan/UBSan unit tests" "SKIP_ASAN=1"
else
  if run_step "build ASan/UBSan unit tests ($asan_dir)" \
    build_sanitized_unit_tests "$asan_dir" SLUICE_SANITIZE; then
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}" \
      UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      run_step "ASan/UBSan unit tests ($asan_dir)" ctest_run "$asan_dir" -L unit -j "$jobs" ||
      true
  fi
fi
if [[ "${SKIP_TSAN:-0}" == 1 ]]; then
  skip_step "TSan unit tests" "SKIP_TSAN=1"
else
  if run_step "build TSan unit tests ($tsan_dir)" \
    build_sanitized_unit_tests "$tsan_dir" SLUICE_TSAN; then
    # The caller's TSAN_OPTIONS come last and win; the suppressions stay.
    tsan_options="halt_on_error=1:second_deadlock_stack=1:suppressions=$repo_root/scripts/tsan.supp"
    TSAN_OPTIONS="$tsan_options:${TSAN_OPTIONS:-}" \
      run_step "TSan unit tests ($tsan_dir)" ctest_run "$tsan_dir" -L unit -j "$jobs" || true
  fi
fi

# --- 6. fuzzing -------------------------------------------------------------------------------
if [[ "${SKIP_FUZZ:-0}" == 1 ]]; then
  skip_step "fuzz targets" "SKIP_FUZZ=1"
else
  if run_step "build fuzz targets ($fuzz_dir, clang)" build_fuzz_targets; then
    for target in $(fuzz_targets); do
      run_step "fuzz $target (${fuzz_seconds}s)" run_fuzz_target "$target" || true
    done
  fi
fi

exit "$failed"
