#!/usr/bin/env bash
# Soak: runs the `slow` suite at full size (RINGWAY_SLOW_SIZE=full) again and again, with a
# config-fuzzer slice after each round, until N minutes have passed; then prints one table of
# every scenario's figures over all rounds (runs, min, max, last, limit) and the fuzz totals.
#   scripts/soak.sh --minutes N [--build-dir DIR] [--fuzz-minutes M]
# --build-dir: the g++ build to test (default build-test, debugoptimized, as scripts/test.sh; built
# when needed). --fuzz-minutes: the fuzz slice per round (default 10, as the issue asks; 0 turns
# the fuzzer off). A round always completes, so the run may end a little after N minutes.
# Logs go to a fresh directory under $TMPDIR (printed). Exit status 0 only when every test of
# every round passed (or skipped) and the fuzzer found nothing.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

minutes=""
build="build-test"
fuzz_minutes=10
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=${2:-}; shift 2 ;;
    --build-dir) build=${2:-}; shift 2 ;;
    --fuzz-minutes) fuzz_minutes=${2:-}; shift 2 ;;
    *) die "unknown option $1 (allowed: --minutes N, --build-dir DIR, --fuzz-minutes M)" ;;
  esac
done
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || [ "$minutes" -eq 0 ]; then
  die "--minutes N (a whole number > 0) is required"
fi
[[ "$fuzz_minutes" =~ ^[0-9]+$ ]] || die "--fuzz-minutes takes a whole number"

ensure_packages "${RINGWAY_BUILD_PACKAGES[@]}" "${RINGWAY_TEST_PACKAGES[@]}"
# build_dir takes a path relative to the checkout; an absolute one is made relative.
case "$build" in
  /*) build=$(realpath -m --relative-to="$RINGWAY_ROOT" "$build") ;;
esac
build_dir "$build" --buildtype=debugoptimized

out=$(mktemp -d "${TMPDIR:-/tmp}/ringway-soak.XXXXXX")
say "soaking for $minutes minutes; logs in $out"
start=$(date +%s)
deadline=$((start + minutes * 60))
round=0 failed_rounds=0 fuzz_seconds=0 fuzz_crashes=0 fuzz_failed=0

while :; do
  round=$((round + 1))
  say "round $round: slow suite at full size"
  status=0
  # Full size takes longer than the ci-sized meson timeouts allow; 10x leaves room.
  RINGWAY_SLOW_SIZE=full meson test -C "$RINGWAY_ROOT/$build" --suite slow --num-processes 1 \
    --timeout-multiplier 10 --print-errorlogs >"$out/round-$round.console" 2>&1 || status=$?
  cp "$RINGWAY_ROOT/$build/meson-logs/testlog.txt" "$out/round-$round.log" 2>/dev/null || true
  grep -E '^(Ok|Fail|Skipped|Timeout):' "$out/round-$round.console" | tr '\n' ' ' >&2 || true
  echo >&2
  if [ "$status" -ne 0 ]; then
    failed_rounds=$((failed_rounds + 1))
    say "round $round failed: see $out/round-$round.log"
  fi

  now=$(date +%s)
  left=$((deadline - now))
  if [ "$fuzz_minutes" -gt 0 ] && [ "$left" -ge 60 ]; then
    slice=$((fuzz_minutes * 60))
    [ "$slice" -gt "$left" ] && slice=$left
    say "round $round: config fuzzer for ${slice}s"
    fstatus=0
    "$RINGWAY_ROOT/scripts/fuzz.sh" "$slice" >"$out/fuzz-$round.log" 2>&1 || fstatus=$?
    fuzz_seconds=$((fuzz_seconds + slice))
    n=$(grep -o 'crashes/timeouts/ooms: [0-9]*' "$out/fuzz-$round.log" | grep -o '[0-9]*$' || true)
    fuzz_crashes=$((fuzz_crashes + ${n:-0}))
    if [ "$fstatus" -ne 0 ]; then
      fuzz_failed=$((fuzz_failed + 1))
      say "fuzz slice $round failed: see $out/fuzz-$round.log"
    fi
    grep '^fuzz:' "$out/fuzz-$round.log" >&2 || true
  fi
  [ "$(date +%s)" -lt "$deadline" ] || break
done

elapsed=$(( ($(date +%s) - start + 59) / 60 ))
echo
echo "soak: $round rounds of the slow suite at full size in $elapsed min; $failed_rounds failed"
echo "fuzz: ${fuzz_seconds}s, $fuzz_crashes crashes/timeouts/ooms, $fuzz_failed failed slices"
echo
# Every "[ figure ] <scenario>: <what> = <value> (limit <limit>)" line of every round.
cat "$out"/round-*.log 2>/dev/null | awk '
  /^\[ figure \] / {
    line = substr($0, 12)
    c = index(line, ": "); if (c == 0) next
    scenario = substr(line, 1, c - 1); rest = substr(line, c + 2)
    e = index(rest, " = "); if (e == 0) next
    what = substr(rest, 1, e - 1); rest = substr(rest, e + 3)
    sp = index(rest, " "); value = substr(rest, 1, sp - 1) + 0
    l = index(rest, "(limit "); limit = substr(rest, l + 7)
    if (!sub(/\) \[size [a-z]+\]$/, "", limit)) sub(/\)$/, "", limit)
    key = scenario "\t" what
    if (!(key in runs)) { order[++n] = key; min[key] = value; max[key] = value }
    runs[key]++; last[key] = value; lim[key] = limit
    if (value < min[key]) min[key] = value
    if (value > max[key]) max[key] = value
  }
  END {
    printf "| %-26s | %-40s | %4s | %12s | %12s | %12s | %s\n", "scenario", "figure", "runs", "min", "max", "last", "limit |"
    printf "| %-26s | %-40s | %4s | %12s | %12s | %12s | %s\n", "---", "---", "---", "---", "---", "---", "--- |"
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, "\t")
      printf "| %-26s | %-40s | %4d | %12.6g | %12.6g | %12.6g | %s |\n", p[1], p[2], runs[k], min[k], max[k], last[k], lim[k]
    }
    if (n == 0) print "(no figures: did every scenario skip? see the round logs)"
  }'
echo
# Each scenario's verdicts over the rounds, from meson's per-test result lines.
awk '
  FNR == 1 { summary = 0 }
  /^Summary of Failures/ { summary = 1 }  # meson repeats failed tests there: count each once
  !summary && $2 ~ /^ringway:slow$/ && $3 == "/" {
    t = $4; r = $5
    if (!(t in seen)) { seen[t] = 1; order[++n] = t }
    if (r == "OK") ok[t]++; else if (r == "SKIP") skip[t]++; else bad[t]++
  }
  END {
    printf "| %-20s | %4s | %4s | %4s |\n", "test", "ok", "fail", "skip"
    printf "| %-20s | %4s | %4s | %4s |\n", "---", "---", "---", "---"
    for (i = 1; i <= n; i++) {
      t = order[i]; printf "| %-20s | %4d | %4d | %4d |\n", t, ok[t], bad[t], skip[t]
    }
  }' "$out"/round-*.console
echo
echo "logs: $out"
[ "$failed_rounds" -eq 0 ] && [ "$fuzz_failed" -eq 0 ] && [ "$fuzz_crashes" -eq 0 ]
