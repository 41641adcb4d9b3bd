#!/usr/bin/env bash
# Ringway's comparison benchmark (shared/design/BENCH.md): one run, one machine, one load tool.
# Starts the ringway-load backends, then Ringway (spliceMode AUTO, and forced copy) and its peers
# (HAProxy plain, with splice-auto, and with splice-request + splice-response forced; nginx's
# stream module; socat) on their own loopback ports, runs the same scenarios
# against each target with targets alternated round by round, records each proxy's CPU seconds
# and peak RSS per run, and writes Markdown tables, bench-results.json and a PNG chart.
#
#   scripts/bench.sh [--quick] [--targets direct,ringway,haproxy,nginx,socat] [--rounds N]
#                    [--build-dir DIR] [--out DIR] [--pin split|none] [--calibrate] [--micro]
#                    [--profile]
#
# --quick     about a minute: 1 round of 1 s runs, hold 1,000 connections
# (default)   about 10 minutes: 3 rounds of 3 s runs, hold 10,000 connections
# --calibrate only prove the load tool is not the bottleneck: ringway-load stream vs iperf3 and
#             ringway-load rr -c 1 vs bench/tools/pingpong, alternated, medians
# --micro     only run the Google Benchmark micro-benchmarks (build-dir/bench/micro/ringway-micro)
# --pin split (default on >= 2 CPUs) proxies on the upper half of the CPUs, load tool and
#             backend on the lower half; --pin none (alias --layout shared) lets the scheduler
#             place everything, proxies with one worker per CPU.
# --scenarios stream1,stream8,...  only these scenarios (default: all)
# --profile   also record each Ringway run with `perf record -g` (Debian's linux-perf) and write
#             profiles/<run>.txt (perf report --stdio, top 40 symbols with children) and
#             profiles/<run>.folded (folded stacks for any flame-graph viewer). Perf's own cost
#             skews that run's figures: profile in a separate run from the one you report.
# Ringway variants for A/B runs, alternated like every target (--targets a,b,...):
#   ringway          as configured (spliceMode AUTO), recvs as the start-up probe decides
#   ringway-copy     spliceMode forced to copy (RINGWAY_FORWARDING=copy)
#   ringway-oneshot  like ringway with one-shot recvs forced (RINGWAY_RECV=oneshot); vs ringway
#                    on Linux 6.10+ this is the bundle A/B
#   ringway-busypoll like ringway with settings.busyPoll = "1ms" (what the spin buys, what it costs)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RINGWAY_ROOT"

mode=full
targets_arg="direct,ringway,haproxy,nginx,socat"
scenarios_arg=""
build_dir=build-release
out_dir=""
rounds=""
pin=split
profile=0
port_base=29000  # below the ephemeral range, so no outgoing connection holds one of ours
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --calibrate) mode=calibrate ;;
    --micro) mode=micro ;;
    --targets) targets_arg=$2; shift ;;
    --targets=*) targets_arg=${1#*=} ;;
    --build-dir) build_dir=$2; shift ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --out) out_dir=$2; shift ;;
    --out=*) out_dir=${1#*=} ;;
    --rounds) rounds=$2; shift ;;
    --pin) pin=$2; shift ;;
    --layout) case "$2" in shared) pin=none ;; split|pinned) pin=split ;; *) die "--layout shared|pinned" ;; esac; shift ;;
    --scenarios) scenarios_arg=$2; shift ;;
    --profile) profile=1 ;;
    --port-base) port_base=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[ -n "$out_dir" ] || out_dir="bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out_dir/runs" "$out_dir/logs"
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d /tmp/ringway-bench.XXXXXX)
notes=()
note() { notes+=("$*"); say "$*"; }

# ---- processes we start: stopped by pid on exit ---------------------------------------------
started=()
cleanup() {
  local pid child
  for pid in "${started[@]}"; do
    # socat's forked children and nginx's workers belong to us too: end them by pid as well.
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill "$child" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Waits (bounded) until something accepts on 127.0.0.1:$1 and, when given, process $2 is still
# alive: a port taken by someone else's server would otherwise look like ours.
wait_port() {
  local i
  for i in $(seq 1 100); do
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    port_open "$1" && return 0
    sleep 0.1
  done
  return 1
}
# Dies when any port of ours is already taken.
check_ports_free() {
  local p
  for p in "$@"; do
    port_open "$p" && die "127.0.0.1:$p is already in use by another program; pick another --port-base"
  done
  return 0
}

# ---- build ------------------------------------------------------------------------------------
if [ ! -f "$build_dir/build.ninja" ]; then
  say "configuring $build_dir (release)"
  meson setup "$build_dir" --buildtype=release >"$work/setup.log" 2>&1 \
    || { tail -30 "$work/setup.log" >&2; die "meson setup $build_dir failed"; }
fi
load="$build_dir/bench/load/ringway-load"
pingpong="$build_dir/bench/tools/pingpong"
if ! ninja -C "$build_dir" bench/load/ringway-load bench/tools/pingpong >"$work/build.log" 2>&1; then
  # The load tool links libringway; a tree mid-change elsewhere should not stop a benchmark that
  # already has a load tool.
  [ -x "$load" ] && [ -x "$pingpong" ] || { tail -30 "$work/build.log" >&2; die "building ringway-load failed"; }
  notes+=("the load tool could not be rebuilt; an earlier build of it was used")
fi

# ---- CPU layout -------------------------------------------------------------------------------
ncpu=$(nproc)
if [ "$pin" = split ] && [ "$ncpu" -ge 2 ]; then
  half=$((ncpu / 2))
  load_cpus="0-$((half - 1))"
  proxy_cpus="$half-$((ncpu - 1))"
  workers=$((ncpu - half))
  layout="load tool and backend pinned to CPUs $load_cpus, each proxy pinned to CPUs $proxy_cpus (taskset); $workers proxy worker(s)"
else
  pin=none
  load_cpus="0-$((ncpu - 1))"
  proxy_cpus=$load_cpus
  workers=$ncpu
  layout="no pinning: load tool, backend and proxy share all $ncpu CPUs; $workers proxy worker(s)"
fi
on_load() { taskset -c "$load_cpus" "$@"; }
on_proxy() { taskset -c "$proxy_cpus" "$@"; }

# Descriptors: a proxy holding N idle connections needs 2N. Only the hard limit can be had
# (raising it needs CAP_SYS_RESOURCE), so the hold scenario is sized to fit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)

# ---- calibration: is the load tool the bottleneck? ------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

run_calibration() {
  local n=${rounds:-5} secs=3 i layout_name server_cpus
  ensure_peer iperf3 >/dev/null 2>&1 || true
  command -v iperf3 >/dev/null || die "iperf3 is not installed (apt-get install iperf3)"
  local report="$out_dir/calibration.md"
  {
    echo "# Load tool calibration ($(date -u +%FT%TZ), $(uname -r), $ncpu CPUs)"
    echo
    echo "Median of $n alternated runs of ${secs} s each. Bulk: one connection, 128 KiB writes."
    echo "RR: one connection, 64-byte ping-pong against \`ringway-load serve --mode echo\`."
    echo
    echo "| layout | iperf3 Gbit/s | ringway-load stream Gbit/s | ratio | pingpong req/s | ringway-load rr req/s | ratio |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
  } >"$report"
  for layout_name in split shared; do
    if [ "$layout_name" = split ]; then server_cpus=$proxy_cpus; else server_cpus=$load_cpus; fi
    [ "$layout_name" = split ] && [ "$pin" = none ] && continue
    local echo_port=$((port_base + 90)) sink_port=$((port_base + 91)) iperf_port=$((port_base + 92))
    check_ports_free "$echo_port" "$sink_port" "$iperf_port"
    taskset -c "$server_cpus" "$load" serve --mode echo --threads 1 \
      --target "127.0.0.1:$echo_port" 2>>"$out_dir/logs/calibration.log" & started+=($!)
    local echo_pid=$!
    taskset -c "$server_cpus" "$load" serve --mode sink --threads 1 \
      --target "127.0.0.1:$sink_port" 2>>"$out_dir/logs/calibration.log" & started+=($!)
    local sink_pid=$!
    wait_port "$echo_port" "$echo_pid" && wait_port "$sink_port" "$sink_pid" \
      || die "calibration backends did not start (see logs/calibration.log)"
    : >"$work/iperf" ; : >"$work/stream" ; : >"$work/pp" ; : >"$work/rr"
    # iperf3's server must not be probed with a bare connect (it takes that for a client), so
    # its readiness is read from the socket table instead.
    taskset -c "$server_cpus" iperf3 -s -p "$iperf_port" >/dev/null 2>&1 & started+=($!)
    local iperf_pid=$!
    for i in $(seq 1 100); do
      [ -n "$(ss -Hltn "sport = :$iperf_port" 2>/dev/null)" ] && break
      kill -0 "$iperf_pid" 2>/dev/null || die "iperf3 server did not start"
      sleep 0.1
    done
    for i in $(seq 1 "$n"); do
      on_load iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$secs" -J \
        | jq '.end.sum_sent.bits_per_second / 1e9' >>"$work/iperf"
      on_load "$load" stream --target "127.0.0.1:$sink_port" -c 1 -d "$secs" --json --no-progress \
        2>>"$out_dir/logs/calibration.log" | jq .gbit_per_s >>"$work/stream"
      on_load "$pingpong" 127.0.0.1 "$echo_port" "$secs" 64 | jq .requests_per_s >>"$work/pp"
      on_load "$load" rr --target "127.0.0.1:$echo_port" -c 1 -s 64 -d "$secs" --json \
        --no-progress 2>>"$out_dir/logs/calibration.log" | jq .requests_per_s >>"$work/rr"
      say "calibration $layout_name round $i: iperf3 $(tail -1 "$work/iperf") ringway-load $(tail -1 "$work/stream") Gbit/s; pingpong $(tail -1 "$work/pp") ringway-load $(tail -1 "$work/rr") req/s"
    done
    kill "$echo_pid" "$sink_pid" "$iperf_pid"; wait "$echo_pid" "$sink_pid" "$iperf_pid" 2>/dev/null || true
    local mi ms mp mr
    mi=$(median <"$work/iperf"); ms=$(median <"$work/stream")
    mp=$(median <"$work/pp"); mr=$(median <"$work/rr")
    local where="client CPUs $load_cpus, server CPUs $server_cpus"
    awk -v l="$layout_name ($where)" -v mi="$mi" -v ms="$ms" -v mp="$mp" -v mr="$mr" \
      'BEGIN {printf "| %s | %.2f | %.2f | %.3f | %.0f | %.0f | %.3f |\n", l, mi, ms, ms/mi, mp, mr, mr/mp}' \
      >>"$report"
    jq -n --arg layout "$layout_name" --arg where "$where" \
      --slurpfile iperf <(jq -s . "$work/iperf") --slurpfile stream <(jq -s . "$work/stream") \
      --slurpfile pp <(jq -s . "$work/pp") --slurpfile rr <(jq -s . "$work/rr") \
      '{layout: $layout, cpus: $where, iperf3_gbit: $iperf[0], load_stream_gbit: $stream[0],
        pingpong_rps: $pp[0], load_rr_rps: $rr[0]}' >"$out_dir/calibration-$layout_name.json"
  done
  {
    echo
    echo "Pass criteria (BENCH.md): stream ratio >= 0.90, rr ratio >= 1.00 (within noise)."
  } >>"$report"
  cat "$report"
}

run_micro() {
  local micro="$build_dir/bench/micro/ringway-micro"
  ninja -C "$build_dir" bench/micro/ringway-micro >/dev/null 2>&1 || true
  [ -x "$micro" ] || die "$micro does not exist yet (no micro-benchmarks are built)"
  "$micro" --benchmark_out="$out_dir/micro.json" --benchmark_out_format=json | tee "$out_dir/micro.txt"
}

case "$mode" in
  calibrate) run_calibration; exit 0 ;;
  micro) run_micro; exit 0 ;;
esac

# ---- scenario sizes ---------------------------------------------------------------------------
if [ "$mode" = quick ]; then
  rounds=${rounds:-1}; secs=1; warmup=0.3; hold_wanted=1000; hold_secs=1
else
  rounds=${rounds:-3}; secs=3; warmup=0.5; hold_wanted=10000; hold_secs=3
fi
# 2 descriptors per held connection in the proxy, plus listeners, logs and slack.
hold_max=$(((fd_limit - 200) / 2))
hold_conns=$((hold_wanted < hold_max ? hold_wanted : hold_max))
[ "$hold_conns" -lt "$hold_wanted" ] && note "hold sized to $hold_conns connections (not $hold_wanted): the descriptor hard limit is $fd_limit and cannot be raised here"
# HAProxy refuses to start when 2 x maxconn + its own descriptors exceed the limit.
maxconn=$((hold_conns + 20))
sources="127.0.0.2-127.0.0.254"  # spread client source addresses: ephemeral ports never run out

# name|command|backend(echo/sink)|extra arguments
scenarios=(
  "stream1|stream|sink|-c 1"
  "stream8|stream|sink|-c 8"
  "rr1|rr|echo|-c 1 -s 64"
  "rr32|rr|echo|-c 32 -s 64"
  "rr256|rr|echo|-c 256 -s 64"
  "crr32|crr|echo|-c 32 -s 64 --source-ips $sources"
  "hold|hold|echo|-c $hold_conns --keepalive --source-ips $sources"
)
if [ -n "$scenarios_arg" ]; then
  chosen=()
  for spec in "${scenarios[@]}"; do
    case ",$scenarios_arg," in *",${spec%%|*},"*) chosen+=("$spec") ;; esac
  done
  [ ${#chosen[@]} -gt 0 ] || die "--scenarios $scenarios_arg matches none of stream1,stream8,rr1,rr32,rr256,crr32,hold"
  scenarios=("${chosen[@]}")
fi

# ---- targets ----------------------------------------------------------------------------------
targets=()
IFS=, read -r -a wanted <<<"$targets_arg"
for t in "${wanted[@]}"; do
  case "$t" in
    haproxy) targets+=(haproxy haproxy-splice haproxy-splice-force) ;;
    ringway) targets+=(ringway ringway-copy) ;;
    direct|ringway-copy|ringway-oneshot|ringway-busypoll|haproxy-splice|haproxy-splice-force|nginx|socat) targets+=("$t") ;;
    *) die "unknown target '$t' (direct, ringway, ringway-copy, ringway-oneshot, ringway-busypoll, haproxy, haproxy-splice, haproxy-splice-force, nginx, socat)" ;;
  esac
done
# Each target once, in the order first named: `ringway` and `haproxy` bring in their variants,
# and a target listed twice would run twice per round under one name, which garbles its CPU and
# RSS columns (seen: 0.000 CPU-s/GiB).
deduped=()
for t in "${targets[@]}"; do
  [[ " ${deduped[*]} " == *" $t "* ]] || deduped+=("$t")
done
targets=("${deduped[@]}")

# Peers come from Debian; installed only when running as root, otherwise skipped with a note.
ensure_peer() {
  local pkgs=("$@") missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    note "skipped: ${missing[*]} not installed and not root (apt-get install ${missing[*]})"
    return 1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >"$work/apt.log" 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >"$work/apt.log" 2>&1; } || { note "skipped: installing ${missing[*]} failed"; return 1; }
}

declare -A echo_port sink_port echo_pid sink_pid
echo_port[direct]=$port_base; sink_port[direct]=$((port_base + 1))
i=1
for t in "${targets[@]}"; do
  [ "$t" = direct ] && continue
  echo_port[$t]=$((port_base + 10 * i)); sink_port[$t]=$((port_base + 10 * i + 1)); i=$((i + 1))
done

# Equivalent settings everywhere: connect timeout 5 s, idle timeout 3600 s, keepalive on both
# sides (60 s idle, 20 s interval, 2 probes where the proxy can set them), no logging, the same
# number of workers, listening on 127.0.0.1 only.
write_haproxy() {  # $1 = target name, $2 = "splice" (splice-auto), "force" (request+response) or ""
  local cfg="$work/$1.cfg"
  {
    echo "global"
    echo "  nbthread $workers"
    echo "  maxconn $maxconn"
    # Pipes cost two descriptors each and HAProxy reserves maxconn/4 of them by default, which
    # pushes it past the descriptor hard limit here (20,000); 64 pipes cover the streaming
    # scenarios (at most 8 connections, 2 directions each) and keep it just under.
    [ -n "$2" ] && echo "  maxpipes 64"
    # The stats socket lets the report show that splicing really happened (PipesUsed/Free).
    echo "  stats socket $work/$1.sock mode 600 level admin"
    echo "defaults"
    echo "  mode tcp"
    echo "  timeout connect 5s"
    echo "  timeout client 3600s"
    echo "  timeout server 3600s"
    echo "  option clitcpka"
    echo "  clitcpka-idle 60s"
    echo "  clitcpka-intvl 20s"
    echo "  clitcpka-cnt 2"
    echo "  option srvtcpka"
    echo "  srvtcpka-idle 60s"
    echo "  srvtcpka-intvl 20s"
    echo "  srvtcpka-cnt 2"
    [ "$2" = splice ] && echo "  option splice-auto"
    [ "$2" = force ] && echo "  option splice-request" && echo "  option splice-response"
    echo "frontend echo"
    echo "  bind 127.0.0.1:${echo_port[$1]}"
    echo "  default_backend echo"
    echo "backend echo"
    echo "  server echo 127.0.0.1:${echo_port[direct]}"
    echo "frontend sink"
    echo "  bind 127.0.0.1:${sink_port[$1]}"
    echo "  default_backend sink"
    echo "backend sink"
    echo "  server sink 127.0.0.1:${sink_port[direct]}"
  } >"$cfg"
  echo "$cfg"
}

write_nginx() {
  local dir="$work/nginx"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $workers;
worker_rlimit_nofile $fd_limit;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log crit;
events { worker_connections $((2 * maxconn + 100)); }
stream {
  access_log off;
  proxy_connect_timeout 5s;
  proxy_timeout 3600s;
  proxy_socket_keepalive on;
  server { listen 127.0.0.1:${echo_port[nginx]} so_keepalive=60s:20s:2 backlog=4096; proxy_pass 127.0.0.1:${echo_port[direct]}; }
  server { listen 127.0.0.1:${sink_port[nginx]} so_keepalive=60s:20s:2 backlog=4096; proxy_pass 127.0.0.1:${sink_port[direct]}; }
}
NGINX
  echo "$dir"
}

write_ringway() {  # $1 = target name
  local cfg="$work/$1.toml" name port backend
  echo -e "[settings]\nworkers = $workers\nlogLevel = \"notice\"" >"$cfg"
  [ "$1" = ringway-busypoll ] && echo 'busyPoll = "1ms"' >>"$cfg"
  echo >>"$cfg"
  for name in echo sink; do
    if [ "$name" = echo ]; then port=${echo_port[$1]}; backend=${echo_port[direct]}
    else port=${sink_port[$1]}; backend=${sink_port[direct]}; fi
    cat >>"$cfg" <<TOML
[[gateways]]
metadata = { name = "$name" }
bindAddress = "127.0.0.1"
bindPort = $port

[gateways.options]
tcpKeepalive = { keepaliveTime = "60s", keepaliveInterval = "20s", keepaliveProbes = 2 }

[gateways.tcpGateway.options.tcpProxySettings]
idleTimeout = "3600s"

[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = $maxconn

[[gateways.tcpGateway.tcpHosts]]
name = "$name"
destination.single.upstream = { name = "$name" }

[[upstreams]]
metadata = { name = "$name" }
static.hosts = [{ addr = "127.0.0.1", port = $backend }]

[upstreams.connectionConfig]
connectTimeout = "5s"
tcpKeepalive = { keepaliveTime = "60s", keepaliveInterval = "20s", keepaliveProbes = 2 }

[upstreams.circuitBreakers]
maxConnections = $maxconn

TOML
  done
  echo "$cfg"
}

# Starts target $1; sets echo_pid/sink_pid. Returns 1 (with a note) when it cannot run.
start_target() {
  local t=$1 pid cfg dir
  case "$t" in
    direct) return 0 ;;
    ringway|ringway-copy|ringway-oneshot|ringway-busypoll)
      local daemon="$build_dir/src/ringway" forwarding="" recv="${RINGWAY_RECV:-}"
      [ "$t" = ringway-copy ] && forwarding=copy
      [ "$t" = ringway-oneshot ] && recv=oneshot
      if ! ninja -C "$build_dir" src/ringway >"$work/build-ringway.log" 2>&1; then
        note "skipped ringway: the daemon does not build yet (see logs/build-ringway.log)"
        cp "$work/build-ringway.log" "$out_dir/logs/"
        return 1
      fi
      cfg=$(write_ringway "$t")
      cp "$cfg" "$out_dir/logs/$t.toml"
      local wrap=()
      # --profile: the daemon runs under perf for one run (see the run loop). cpu-clock, a
      # software event, also samples where no hardware PMU is exposed (VMs).
      [ -n "${perf_out:-}" ] && wrap=(perf record -e cpu-clock -F 999 -g -q -o "$perf_out" --)
      RINGWAY_FORWARDING=$forwarding RINGWAY_RECV=$recv on_proxy "${wrap[@]}" "$daemon" -c "$cfg" \
        >>"$out_dir/logs/$t.log" 2>&1 & pid=$!
      ;;
    haproxy|haproxy-splice|haproxy-splice-force)
      ensure_peer haproxy || return 1
      local how=""
      [ "$t" = haproxy-splice ] && how=splice
      [ "$t" = haproxy-splice-force ] && how=force
      cfg=$(write_haproxy "$t" "$how")
      cp "$cfg" "$out_dir/logs/"
      on_proxy haproxy -db -f "$cfg" >"$out_dir/logs/$t.log" 2>&1 & pid=$!
      ;;
    nginx)
      ensure_peer nginx libnginx-mod-stream || return 1
      dir=$(write_nginx)
      cp "$dir/nginx.conf" "$out_dir/logs/"
      on_proxy nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
        >"$out_dir/logs/nginx.log" 2>&1 & pid=$!
      ;;
    socat)
      ensure_peer socat || return 1
      # One socat per port (it forks a child per connection); -T is its idle timeout.
      local ka="keepalive,keepidle=60,keepintvl=20,keepcnt=2"
      on_proxy socat -T 3600 "TCP-LISTEN:${echo_port[socat]},bind=127.0.0.1,reuseaddr,fork,backlog=4096,$ka" \
        "TCP:127.0.0.1:${echo_port[direct]},$ka,connect-timeout=5" >"$out_dir/logs/socat-echo.log" 2>&1 &
      echo_pid[socat]=$!; started+=($!)
      on_proxy socat -T 3600 "TCP-LISTEN:${sink_port[socat]},bind=127.0.0.1,reuseaddr,fork,backlog=4096,$ka" \
        "TCP:127.0.0.1:${sink_port[direct]},$ka,connect-timeout=5" >"$out_dir/logs/socat-sink.log" 2>&1 &
      sink_pid[socat]=$!; started+=($!)
      ;;
  esac
  if [ "$t" != socat ]; then
    started+=("$pid"); echo_pid[$t]=$pid; sink_pid[$t]=$pid
  fi
  if ! wait_port "${echo_port[$t]}" "${echo_pid[$t]}" || ! wait_port "${sink_port[$t]}" "${sink_pid[$t]}"; then
    note "skipped $t: it did not listen within 10 s (see logs/)"
    return 1
  fi
  return 0
}

# Memory per idle connection is measured as growth over the process's resident memory just
# before the hold run; a process warmed by the earlier scenarios already holds pooled memory and
# shows about 0 (seen: 0.00 KiB for Ringway, 0.06 KiB for HAProxy). So every proxy is restarted
# fresh before each hold run.
restart_target() {
  local t=$1 p child
  [ "$t" = direct ] && return 0
  for p in $(printf '%s\n' "${echo_pid[$t]}" "${sink_pid[$t]}" | sort -u); do
    for child in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill "$child" 2>/dev/null || true; done
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  start_target "$t"
}

ensure_peer jq python3 gnuplot-nox >/dev/null 2>&1 || true  # gnuplot draws the chart
command -v jq >/dev/null && command -v python3 >/dev/null || die "bench.sh needs jq and python3"

all_ports=()
for t in direct "${targets[@]}"; do all_ports+=("${echo_port[$t]}" "${sink_port[$t]}"); done
check_ports_free "${all_ports[@]}"

# Backends: one echo (rr, crr, hold) and one sink (stream), on the load CPUs.
on_load "$load" serve --mode echo --keepalive --target "127.0.0.1:${echo_port[direct]}" \
  2>"$out_dir/logs/backend-echo.log" & started+=($!)
backend_echo=$!
on_load "$load" serve --mode sink --keepalive --target "127.0.0.1:${sink_port[direct]}" \
  2>"$out_dir/logs/backend-sink.log" & started+=($!)
backend_sink=$!
wait_port "${echo_port[direct]}" "$backend_echo" && wait_port "${sink_port[direct]}" "$backend_sink" \
  || die "backends did not start (see $out_dir/logs/backend-*.log)"

active=()
for t in "${targets[@]}"; do
  if start_target "$t"; then active+=("$t"); fi
done
[ ${#active[@]} -gt 0 ] || die "no target could run"
say "targets: ${active[*]}; $layout"

# ---- machine facts ----------------------------------------------------------------------------
version_of() {
  case "$1" in
    direct) echo "ringway-load (this tree)" ;;
    ringway|ringway-copy|ringway-oneshot|ringway-busypoll) "$build_dir/src/ringway" --version 2>&1 | head -1 || echo "ringway $(git rev-parse --short HEAD)" ;;
    haproxy|haproxy-splice|haproxy-splice-force) haproxy -v 2>&1 | head -1 ;;
    nginx) nginx -v 2>&1 | head -1 ;;
    socat) socat -V 2>&1 | grep -m1 'socat version' ;;
  esac
}
{
  jq -n --arg date "$(date -u +%FT%TZ)" --arg kernel "$(uname -r)" \
    --arg cpu "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" \
    --argjson cpus "$ncpu" --arg layout "$layout" --arg pin "$pin" --argjson workers "$workers" \
    --arg git "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --arg mode "$mode" \
    --argjson rounds "$rounds" --argjson seconds "$secs" --argjson warmup "$warmup" \
    --argjson hold "$hold_conns" --argjson fd_limit "$fd_limit" \
    --arg tw_reuse "$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null)" \
    --arg ports "$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' ' ')" \
    --arg memory "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" \
    '{date: $date, kernel: $kernel, cpu_model: $cpu, cpus: $cpus, memory: $memory,
      cpu_layout: $layout, pin: $pin, proxy_workers: $workers, git: $git, mode: $mode,
      rounds: $rounds, seconds_per_run: $seconds, warmup_s: $warmup, hold_connections: $hold,
      fd_limit: $fd_limit, tcp_tw_reuse: $tw_reuse, ip_local_port_range: $ports}'
} >"$work/facts.json"
versions="{}"
for t in "${active[@]}"; do
  versions=$(jq --arg t "$t" --arg v "$(version_of "$t")" '. + {($t): $v}' <<<"$versions")
done
notes_json=$(printf '%s\n' "${notes[@]+"${notes[@]}"}" | jq -R . | jq -s 'map(select(length > 0))')
jq --argjson v "$versions" --argjson n "$notes_json" '. + {versions: $v, notes: $n}' \
  "$work/facts.json" >"$out_dir/facts.json"

# ---- profiles (--profile) ----------------------------------------------------------------------
if [ "$profile" = 1 ]; then
  ensure_peer "${RINGWAY_BENCH_PACKAGES[@]}" || die "--profile needs perf (Debian's linux-perf)"
  command -v perf >/dev/null || die "--profile needs perf (Debian's linux-perf)"
  # perf record -p needs kernel.perf_event_paranoid <= 1 for another user's process, or root.
  paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
  [ "$(id -u)" -eq 0 ] || [ "$paranoid" -le 1 ] \
    || die "--profile: kernel.perf_event_paranoid is $paranoid; run as root or set it to 1"
  note "profiled run (--profile): perf record -g adds its own cost, so these figures are not for comparison"
  mkdir -p "$out_dir/profiles"
fi
# Stops target $1 started under perf: the daemon (perf's child) first, so that perf writes its
# data and exits; bounded, then perf itself is interrupted.
stop_profiled() {
  local p=${echo_pid[$1]} child i
  for child in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill "$child" 2>/dev/null || true; done
  for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -INT "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
# Writes $2.txt (the top 40 symbols, children included) and $2.folded (one line per distinct
# stack, frames root first separated by ';', then its sample count) from perf data file $1.
write_profile() {
  local data=$1 out=$2
  [ -s "$data" ] || { echo "no samples" >"$out.txt"; return 0; }
  perf report -i "$data" --stdio --children -g none --sort symbol --percent-limit 0.5 2>/dev/null \
    | grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' | head -40 >"$out.txt" || true
  perf script -i "$data" -F comm,ip,sym 2>/dev/null | python3 "$RINGWAY_ROOT/bench/tools/perf_fold.py" \
    >"$out.folded" || true
  rm -f "$data"
}

# ---- runs: targets alternated round by round --------------------------------------------------
start_s=$SECONDS
for round in $(seq 1 "$rounds"); do
  for spec in "${scenarios[@]}"; do
    IFS='|' read -r name cmd backend extra <<<"$spec"
    # Rotate the target order each round so no target always runs first or last.
    n=${#active[@]}
    for k in $(seq 0 $((n - 1))); do
      t=${active[$(((k + round - 1) % n))]}
      [ "$profile" = 1 ] && [ "${t%%-*}" = ringway ] && [ "$cmd" = hold ] \
        && perf_out="$work/perf-$round-$name-$t.data"
      if [ "$cmd" = hold ] && ! restart_target "$t"; then
        say "$name $t round $round: the target did not restart (see logs/)"
        perf_out=""
        continue
      fi
      if [ "$backend" = echo ]; then port=${echo_port[$t]}; pid=${echo_pid[$t]:-}
      else port=${sink_port[$t]}; pid=${sink_pid[$t]:-}; fi
      duration=$secs; w=$warmup
      [ "$cmd" = hold ] && { duration=$hold_secs; w=0; }
      pid_arg=()
      [ -n "$pid" ] && pid_arg=(--pid "$pid")
      file="$out_dir/runs/r$round-$name-$t"
      profiling=0
      if [ "$profile" = 1 ] && [ "${t%%-*}" = ringway ]; then
        # Attaching perf to a running process (-p) recorded no samples on the machine this was
        # written on, so the daemon is restarted under perf for this run alone (start_target
        # reads perf_out), and stopped after it so that perf writes its data.
        perf_out="$work/perf-$round-$name-$t.data"
        if [ "$cmd" = hold ] || restart_target "$t"; then
          profiling=1
          if [ "$backend" = echo ]; then pid=${echo_pid[$t]}; else pid=${sink_pid[$t]}; fi
          pid_arg=(--pid "$pid")
        fi
        perf_out=""
      fi
      # shellcheck disable=SC2086  # $extra is a word list on purpose
      if ! timeout $((duration + 120)) taskset -c "$load_cpus" "$load" "$cmd" \
          --target "127.0.0.1:$port" -d "$duration" -w "$w" $extra "${pid_arg[@]}" --json \
          --label "$name $t $round" >"$file.json" 2>"$file.log"; then
        say "$name $t round $round: ringway-load failed or found nothing to measure (see $file.log)"
      fi
      summary=$(jq -r 'if .command == "stream" then "\(.gbit_per_s) Gbit/s"
        elif .command == "hold" then "held \(.hold.held) pss/conn \(.hold.pss_kib_per_connection) KiB"
        else "\(.requests_per_s) /s p99 \(.latency_us.p99) us" end + "  errors \(.errors_total)"' \
        "$file.json" 2>/dev/null || echo "no result")
      say "round $round/$rounds $name $t: $summary"
      if [ "$profiling" = 1 ]; then
        stop_profiled "$t"
        write_profile "$work/perf-$round-$name-$t.data" "$out_dir/profiles/r$round-$name-$t"
        restart_target "$t" || say "$t did not restart after its profiled run (see logs/)"
      fi
      if [ "$cmd" = stream ] && [ -S "$work/$t.sock" ]; then
        # HAProxy's pipe pool after a bulk run: PipesUsed/PipesFree above 0 mean it spliced.
        pipes=$(python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show info\n")
print(b"".join(iter(lambda: s.recv(65536), b"")).decode())' "$work/$t.sock" 2>/dev/null \
          | grep -E '^Pipes(Used|Free):' | tr '\n' ' ')
        echo "round $round $name: $pipes" >>"$out_dir/logs/$t-pipes.txt"
      fi
    done
  done
done
say "runs took $((SECONDS - start_s)) s"

# ---- report -----------------------------------------------------------------------------------
python3 "$RINGWAY_ROOT/bench/tools/bench_report.py" "$out_dir"
say "results in $out_dir (results.md, bench-results.json, bench-results.png)"
