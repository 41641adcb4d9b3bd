#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite:
#   1. g++ build (debugoptimized): unit, integration (in each forwarding mode: as configured,
#      i.e. copy, forced AUTO, forced splice; and with one-shot recvs forced, the fallback of recv
#      bundles), fuzz-corpus replay and bench suites, then the slow suite
#      (full-size reliability scenarios, ci size unless RINGWAY_SLOW_SIZE=full), timed;
#   2. clang 14 + ASan/UBSan build (mimalloc off): unit and integration (as configured, i.e.
#      copy with recv bundles where the kernel has them; and forced splice) suites, with timeouts
#      scaled by RINGWAY_TIMEOUT_SCALE=3 because sanitized code is slower.
# Ends with one line "tests: N passed, N failed, N skipped" and exits non-zero on any failure.
# Options: --quick (only the g++ build), --no-sanitizers (same).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$RINGWAY_ROOT"

sanitizers=1
for arg in "$@"; do
  case "$arg" in
    --quick|--no-sanitizers) sanitizers=0 ;;
    *) die "unknown option $arg (allowed: --quick, --no-sanitizers)" ;;
  esac
done

ensure_packages "${RINGWAY_BUILD_PACKAGES[@]}" "${RINGWAY_TEST_PACKAGES[@]}"

passed=0 failed=0 skipped=0
# Runs meson test in DIR for the given suites and adds its counts to the totals.
run_suites() {
  local dir=$1; shift
  local args=() s log status=0
  for s in "$@"; do args+=(--suite "$s"); done
  log=$(mktemp)
  say "testing $dir: $*"
  meson test -C "$dir" "${args[@]}" --print-errorlogs --num-processes 2 2>&1 | tee "$log" || status=$?
  local ok fail skip timeout
  ok=$(awk '/^Ok:/{print $2}' "$log" | tail -1)
  fail=$(awk '/^Fail:/{print $2}' "$log" | tail -1)
  timeout=$(awk '/^Timeout:/{print $2}' "$log" | tail -1)
  skip=$(awk '/^Skipped:/{print $2}' "$log" | tail -1)
  passed=$((passed + ${ok:-0}))
  failed=$((failed + ${fail:-0} + ${timeout:-0}))
  skipped=$((skipped + ${skip:-0}))
  if [ "$status" -ne 0 ] && [ "${fail:-0}" -eq 0 ] && [ "${timeout:-0}" -eq 0 ]; then
    failed=$((failed + 1))  # meson itself failed (e.g. no such suite): count it, never hide it
  fi
  rm -f "$log"
}

build_dir build-test --buildtype=debugoptimized
# The plain suites receive as the start-up trial decides (recv bundles on Linux 6.10+);
# integration-oneshot forces the one-shot fallback so that it stays tested on this kernel.
run_suites build-test unit integration integration-auto integration-splice integration-oneshot \
  fuzz bench
# The slow tier at ci size is budgeted at about 6 minutes on 2 cores; print what it took.
slow_start=$(date +%s)
run_suites build-test slow
say "slow suite took $(($(date +%s) - slow_start)) s (budget about 360 s)"

if [ "$sanitizers" -eq 1 ]; then
  CXX=clang++-14 build_dir build-asan --buildtype=debug -Db_sanitize=address,undefined \
    -Db_lundef=false -Dmimalloc=disabled -Dbenchmarks=false
  export RINGWAY_TIMEOUT_SCALE=${RINGWAY_TIMEOUT_SCALE:-3}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  run_suites build-asan unit integration integration-splice
fi

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
