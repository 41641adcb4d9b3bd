#!/usr/bin/env bash
# The engine's own figures, measured in one run (issue "The io_uring thread-per-core engine"):
#   - throughput through Ringway vs a direct connection, iperf3 with 1 and 4 streams;
#   - proxy CPU seconds per GB forwarded (utime+stime of every thread, /proc/PID/stat);
#   - iou-wrk kernel threads seen under load (sampled every 100 ms; the design wants 0);
#   - proxy RSS per idle connection with N idle sessions (ringway-load hold --pid).
# Nothing is pinned: iperf3, the proxy (settings.workers = 2) and the backend share both CPUs,
# as they would on a small VM. Prints a Markdown table; raw outputs stay in the work directory.
#
#   bench/engine_figures.sh [--build-dir build-release] [--seconds 5] [--idle 5000]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RINGWAY_ROOT"

build=build-release seconds=5 idle=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    *) die "unknown option $1 (allowed: --build-dir DIR, --seconds N, --idle N)" ;;
  esac
done
ensure_packages iperf3 jq
[ -x "$build/src/ringway" ] || build_dir "$build" --buildtype=release
bin=$build/src/ringway load=$build/bench/load/ringway-load

work=$(mktemp -d /tmp/ringway-figures.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

free_port() { local p; for p in $(seq 31000 31999); do ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }; done; }
iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" -D --logfile "$work/iperf-server.log"
pids+=("$(pgrep -f "iperf3 -s -p $iperf_port" | head -1)")
echo_port=$((iperf_port + 1)) gw_iperf=$((iperf_port + 2)) gw_echo=$((iperf_port + 3))
"$load" serve --mode echo --listen "127.0.0.1:$echo_port" 2>"$work/echo.log" &
pids+=($!)

cat >"$work/ringway.toml" <<EOF
[settings]
workers = 2
[[gateways]]
metadata = { name = "iperf" }
bindAddress = "127.0.0.1"
bindPort = $gw_iperf
tcpGateway.options.connectionLimit.maxActiveConnections = 100000
[[gateways.tcpGateway.tcpHosts]]
name = "iperf"
destination.single.upstream = { name = "iperf" }
[[gateways]]
metadata = { name = "idle" }
bindAddress = "127.0.0.1"
bindPort = $gw_echo
options.tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }
tcpGateway.options.connectionLimit.maxActiveConnections = 100000
[[gateways.tcpGateway.tcpHosts]]
name = "idle"
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "iperf" }
static.hosts = [{ addr = "127.0.0.1", port = $iperf_port }]
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = $echo_port }]
circuitBreakers.maxConnections = 100000
connectionConfig.tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }
EOF
"$bin" -c "$work/ringway.toml" 2>"$work/ringway.log" &
rpid=$!
pids+=("$rpid")
for _ in $(seq 1 100); do grep -qE '\bready$' "$work/ringway.log" && break; sleep 0.1; done
grep -qE '\bready$' "$work/ringway.log" || { cat "$work/ringway.log"; die "ringway did not start"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$rpid/stat"; }
hz=$(getconf CLK_TCK)
iou_wrk_max=0
sample_iou_wrk() {  # runs in the background while a load runs; prints the maximum seen
  local max=0 n
  while kill -0 "$rpid" 2>/dev/null && [ ! -e "$work/stop-sampling" ]; do
    n=$(cat /proc/"$rpid"/task/*/comm 2>/dev/null | grep -c '^iou-wrk' || true)
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.1
  done
  echo "$max"
}

rows=()
for streams in 1 4; do
  direct=$(iperf3 -c 127.0.0.1 -p "$iperf_port" -P "$streams" -t "$seconds" -J | jq '.end.sum_received.bits_per_second / 1e9')
  rm -f "$work/stop-sampling"
  sample_iou_wrk >"$work/iou-$streams" &
  sampler=$!
  before=$(cpu_ticks)
  json=$(iperf3 -c 127.0.0.1 -p "$gw_iperf" -P "$streams" -t "$seconds" -J)
  after=$(cpu_ticks)
  touch "$work/stop-sampling"; wait "$sampler"
  proxied=$(jq '.end.sum_received.bits_per_second / 1e9' <<<"$json")
  bytes=$(jq '.end.sum_received.bytes' <<<"$json")
  cpu=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN{printf "%.2f", t / hz}')
  per_gb=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN{printf "%.3f", c / (b / 1e9)}')
  iou=$(cat "$work/iou-$streams")
  [ "$iou" -gt "$iou_wrk_max" ] && iou_wrk_max=$iou
  rows+=("| iperf3, $streams stream(s) | $(printf %.2f "$direct") Gbit/s | $(printf %.2f "$proxied") Gbit/s | $(awk -v a="$proxied" -v b="$direct" 'BEGIN{printf "%.2f", a/b}') | $cpu s for $(awk -v b="$bytes" 'BEGIN{printf "%.2f", b/1e9}') GB = $per_gb CPU-s/GB | $iou |")
done

"$load" hold --target "127.0.0.1:$gw_echo" -c "$idle" -d "$seconds" --keepalive --pid "$rpid" \
  --json --no-progress >"$work/hold.json" 2>"$work/hold.log" || true
held=$(jq '.hold.held // 0' "$work/hold.json")
rss=$(jq '.hold.rss_kib_per_connection // "n/a"' "$work/hold.json")
pss=$(jq '.hold.pss_kib_per_connection // "n/a"' "$work/hold.json")

echo
echo "Ringway engine figures, $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs shared by all"
echo "processes (no pinning), settings.workers = 2, $seconds s per run. Raw data: $work"
echo
echo "| run | direct | through Ringway | ratio | proxy CPU | iou-wrk threads (max) |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "| idle sessions held (keepalive both sides) | proxy RSS per connection | proxy PSS per connection |"
echo "| --- | --- | --- |"
echo "| $held | $rss KiB | $pss KiB |"
[ "$iou_wrk_max" -eq 0 ] || echo "WARNING: $iou_wrk_max iou-wrk threads appeared under load"
