#!/usr/bin/env bash
# End-to-end checks of ringway-load on loopback: each subcommand against its own backend, the
# JSON fields scripts/bench.sh relies on, --pid measurement (an echo backend holds exactly one
# descriptor per connection), and errors counted by cause. Usage: smoke_test.sh PATH/ringway-load
set -euo pipefail
load=$1
scale=${RINGWAY_TIMEOUT_SCALE:-1}
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A backend on a port nobody uses; retried on a few ports because the range is shared.
start_backend() {  # $1 = mode; prints the port
  local mode=$1 port i
  for i in $(seq 1 20); do
    port=$((20000 + RANDOM % 9000))
    "$load" serve --mode "$mode" --threads 1 --target "127.0.0.1:$port" 2>"$work/$mode.log" &
    local pid=$!
    # Ready when it says so; gone when the port was taken. Bounded either way.
    for _ in $(seq 1 $((50 * scale))); do
      grep -q listening "$work/$mode.log" 2>/dev/null && { pids+=("$pid"); echo "$port $pid"; return 0; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
  done
  fail "no backend for $mode"
}
# start_backend runs in a subshell here, so its pids+= is lost: record each pid in this shell,
# or the backends outlive the test.
read -r echo_port echo_pid < <(start_backend echo)
read -r sink_port sink_pid < <(start_backend sink)
read -r source_port source_pid < <(start_backend source)
pids+=("$echo_pid" "$sink_pid" "$source_pid")
common=(--duration 0.5 --json --no-progress --timeout "$((5 * scale))")

# rr: requests flow, no errors, percentiles ordered; at most one message per connection is in
# flight at either edge of the measured window.
"$load" rr --target "127.0.0.1:$echo_port" -c 4 -t 2 "${common[@]}" 2>/dev/null >"$work/rr.json"
jq -e '.requests > 0 and .errors_total == 0 and .latency_us.count > 0
  and .latency_us.p50 > 0 and .latency_us.p50 <= .latency_us.p99
  and .latency_us.p99 <= .latency_us.max
  and ((.bytes_received - .bytes_sent) | fabs) <= 4 * 64' "$work/rr.json" \
  >/dev/null || fail "rr: $(cat "$work/rr.json")"

# rr with one connection takes the blocking path.
"$load" rr --target "127.0.0.1:$echo_port" -c 1 "${common[@]}" 2>/dev/null >"$work/rr1.json"
jq -e '.requests > 0 and .errors_total == 0' "$work/rr1.json" >/dev/null || fail "rr -c 1"

# crr: connections complete, spread over source addresses.
"$load" crr --target "127.0.0.1:$echo_port" -c 4 --source-ips 127.0.0.2-127.0.0.5 "${common[@]}" \
  2>/dev/null >"$work/crr.json"
jq -e '.requests > 0 and .errors_total == 0 and .latency_us.count > 0' "$work/crr.json" \
  >/dev/null || fail "crr: $(cat "$work/crr.json")"

# stream in each direction moves bytes the right way.
"$load" stream --target "127.0.0.1:$sink_port" -c 2 "${common[@]}" 2>/dev/null >"$work/up.json"
jq -e '.bytes_sent > 0 and .bytes_received == 0 and .gbit_per_s > 0' "$work/up.json" >/dev/null \
  || fail "stream up"
"$load" stream --target "127.0.0.1:$source_port" --direction down -c 2 "${common[@]}" \
  2>/dev/null >"$work/down.json"
jq -e '.bytes_received > 0 and .bytes_sent == 0' "$work/down.json" >/dev/null || fail "stream down"
"$load" stream --target "127.0.0.1:$echo_port" --direction both -c 2 "${common[@]}" \
  2>/dev/null >"$work/both.json"
jq -e '.bytes_received > 0 and .bytes_sent > 0' "$work/both.json" >/dev/null || fail "stream both"

# hold: all 200 held, the echo backend gained one descriptor per connection, its CPU is read.
"$load" hold --target "127.0.0.1:$echo_port" -c 200 --keepalive --pid "$echo_pid" \
  --source-ips 127.0.0.2-127.0.0.9 "${common[@]}" 2>/dev/null >"$work/hold.json"
jq -e '.hold.held == 200 and .errors_total == 0 and .established_at_end == 200
  and .hold.fds_per_connection > 0.95 and .hold.fds_per_connection < 1.05
  and .target_process.start.ok and .target_process.cpu_s >= 0' "$work/hold.json" >/dev/null \
  || fail "hold: $(cat "$work/hold.json")"

# Errors are counted by cause: connections to a port where nothing listens are refused, each
# counted once, and a run that measured nothing exits 1.
closed_port=$((echo_port + 1))
while (exec 3<>"/dev/tcp/127.0.0.1/$closed_port") 2>/dev/null; do closed_port=$((closed_port + 1)); done
set +e
"$load" rr --target "127.0.0.1:$closed_port" -c 3 "${common[@]}" 2>/dev/null >"$work/refused.json"
status=$?
set -e
[ "$status" -eq 1 ] || fail "rr against a closed port exited $status, want 1"
jq -e '.errors.connect_refused == 3 and .errors_total == 3 and .requests == 0' \
  "$work/refused.json" >/dev/null || fail "refused: $(cat "$work/refused.json")"
echo "smoke: all checks passed"
