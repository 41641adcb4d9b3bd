#!/usr/bin/env bash
# Runs one libFuzzer target under ASan+UBSan for SECONDS (default 600):
#   scripts/fuzz.sh [SECONDS] [TARGET]
# TARGET: config_fuzzer (default; the config loader), fuzz_proxy_protocol, fuzz_client_hello.
# Builds tests/fuzz/TARGET in a clang-14 build dir (build-fuzz, or $RINGWAY_FUZZ_BUILD), runs
# it on a scratch copy of its seed corpus (new inputs never land in the repo), then prints
# executions, exec/s and any crash files. Exit status: 0 no crash, 1 crash found.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

seconds=${1:-600}
target=${2:-config_fuzzer}
case $target in
  config_fuzzer) corpus=corpus; max_len=4096; dict=(-dict="$RINGWAY_ROOT/tests/fuzz/toml.dict") ;;
  fuzz_proxy_protocol) corpus=corpus_proxy_protocol; max_len=2048; dict=() ;;
  # Long enough for a ClientHello in many records; the target lowers the cap on odd inputs so
  # the cap's edge is reached without 16 KiB inputs.
  fuzz_client_hello) corpus=corpus_client_hello; max_len=8192; dict=() ;;
  *) die "unknown fuzz target '$target' (config_fuzzer, fuzz_proxy_protocol, fuzz_client_hello)" ;;
esac
build=${RINGWAY_FUZZ_BUILD:-$RINGWAY_ROOT/build-fuzz}
ensure_packages clang-14 libclang-rt-14-dev

if [ ! -f "$build/build.ninja" ]; then
  say "configuring $build (clang-14, libFuzzer, ASan+UBSan)"
  # b_lundef=false: sanitizer runtimes resolve symbols at link time that -Wl,--no-undefined
  # would reject.
  CC=clang-14 CXX=clang++-14 meson setup "$build" "$RINGWAY_ROOT" -Dfuzzing=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false >/dev/null
fi
say "building the fuzzer"
ninja -C "$build" -j2 "tests/fuzz/$target" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/ringway-fuzz.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts"
cp "$RINGWAY_ROOT/tests/fuzz/$corpus"/* "$work/corpus/"
if [ "$target" = config_fuzzer ]; then
  find "$RINGWAY_ROOT/conf" -name '*.toml' -exec cp {} "$work/corpus/" \;
fi
say "fuzzing $target for ${seconds}s in $work"

# UBSan reports must stop the run so libFuzzer saves the input; leaks are real bugs too.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
status=0
"$build/tests/fuzz/$target" "$work/corpus" "${dict[@]}" \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 >"$work/fuzz.log" 2>&1 || status=$?

execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$' || true)
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$' || true)
corpus_after=$(find "$work/corpus" -type f | wc -l)
crashes=$(find "$work/artifacts" -type f | wc -l)
echo "fuzz: $target ${seconds}s, executions ${execs:-?}, ${rate:-?} exec/s, corpus $corpus_after inputs"
echo "fuzz: crashes/timeouts/ooms: $crashes (libFuzzer exit status $status)"
echo "fuzz: log $work/fuzz.log"
if [ "$crashes" -gt 0 ] || [ "$status" -ne 0 ]; then
  find "$work/artifacts" -type f -print
  tail -n 40 "$work/fuzz.log"
  exit 1
fi
