#!/usr/bin/env bash
# Checks the systemd unit as far as this machine can run it (PID 1 here is not systemd):
#  1. `systemd-analyze verify` accepts the unit, with ExecStart pointing at the built binary and
#     the man pages it names resolvable;
#  2. every system call the daemon makes while it starts, forwards a session and drains (traced
#     with strace -f) is allowed by the unit's SystemCallFilter (groups expanded with
#     `systemd-analyze syscall-filter`), so the filter cannot kill it, io_uring included.
# Exits 77 (skipped) when systemd-analyze or strace is missing.
# Usage: systemd_unit_test.sh RINGWAY_BIN UNIT_IN SOURCE_ROOT ECHO_BIN
set -euo pipefail
bin=$1 unit_in=$2 root=$3 echo_bin=$4
scale=${RINGWAY_TIMEOUT_SCALE:-1}

command -v systemd-analyze >/dev/null || { echo "skip: systemd-analyze not installed"; exit 77; }
command -v strace >/dev/null || { echo "skip: strace not installed"; exit 77; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# ---- 1. systemd-analyze verify ----------------------------------------------------------
mkdir -p "$work/man/man1" "$work/man/man5" "$work/etc/ringway"
cp "$root/doc/ringway.1" "$work/man/man1/"
cp "$root/doc/ringway.toml.5" "$work/man/man5/"
cp "$root/conf/ringway.toml" "$work/etc/ringway/ringway.toml"
sed -e "s|@bindir@/ringway|$bin|g" -e "s|@sysconfdir@|$work/etc|g" "$unit_in" >"$work/ringway.service"
man_flag=()
command -v man >/dev/null || man_flag=(--man=no)
if ! out=$(MANPATH="$work/man" systemd-analyze verify "${man_flag[@]}" "$work/ringway.service" 2>&1); then
  echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1
fi
if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify printed:"; echo "$out"; exit 1; fi
echo "ok: systemd-analyze verify"

# ---- 2. the system calls the daemon makes vs the unit's filter ---------------------------
# Expands a filter group (recursively) to syscall names.
expand() {
  systemd-analyze syscall-filter "$1" | awk 'NR>1 && $1 !~ /^#/ && NF {print $1}' | while read -r s; do
    case "$s" in @*) expand "$s" ;; *) echo "$s" ;; esac
  done
}
allow=() deny=()
while read -r line; do
  value=${line#SystemCallFilter=}
  if [ "${value#\~}" != "$value" ]; then deny+=(${value#\~}); else allow+=($value); fi
done < <(grep '^SystemCallFilter=' "$work/ringway.service")
for g in "${allow[@]}"; do expand "$g"; done | sort -u >"$work/allowed"
for g in "${deny[@]}"; do expand "$g"; done | sort -u >"$work/denied"
[ -s "$work/allowed" ] || { echo "FAIL: could not expand the allow list"; exit 1; }

"$echo_bin" serve --mode echo --listen 127.0.0.1:0 >"$work/echo.out" 2>&1 &
pids+=($!)
echo_port=
for _ in $(seq 1 $((50 * scale))); do
  echo_port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$work/echo.out" | grep -oE '[0-9]+$' | head -1 || true)
  [ -n "$echo_port" ] && break; sleep 0.1
done
[ -n "$echo_port" ] || { echo "FAIL: echo backend did not start"; cat "$work/echo.out"; exit 1; }

cat >"$work/ringway.toml" <<TOML
[settings]
workers = 2
drainTimeout = "2s"
admin = { bindAddress = "127.0.0.1", bindPort = 0 }
[[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = 0
options.tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }
tcpGateway.options.connectionLimit.maxActiveConnections = 100
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }
[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = $echo_port }]
connectionConfig.tcpKeepalive = { keepaliveTime = 60, keepaliveInterval = 20, keepaliveProbes = 2 }
TOML
strace -f -qq -o "$work/trace" "$bin" -c "$work/ringway.toml" 2>"$work/ringway.err" &
pids+=($!)
strace_pid=$!
port=
for _ in $(seq 1 $((100 * scale))); do
  port=$(grep -oE 'gateway default\.tcp listening on 127\.0\.0\.1:[0-9]+' "$work/ringway.err" | grep -oE '[0-9]+$' | head -1 || true)
  grep -qE '\bready$' "$work/ringway.err" && [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: ringway did not start"; cat "$work/ringway.err"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'ping\n' >&3
read -r -t $((5 * scale)) reply <&3 || true
exec 3>&-
[ "$reply" = ping ] || { echo "FAIL: no echo through ringway (got '$reply')"; cat "$work/ringway.err"; exit 1; }
kill -TERM "$(pgrep -P "$strace_pid" -x ringway || echo "$strace_pid")"
wait "$strace_pid" || true

awk '{ l = $0; sub(/^[0-9]+ +/, "", l); if (match(l, /^[a-z_0-9]+\(/)) print substr(l, 1, RLENGTH - 1) }' \
  "$work/trace" | sort -u >"$work/used"
grep -qx io_uring_setup "$work/used" || { echo "FAIL: trace shows no io_uring_setup"; exit 1; }
bad=0
while read -r s; do
  if ! grep -qx "$s" "$work/allowed" || grep -qx "$s" "$work/denied"; then
    echo "FAIL: system call $s is not allowed by the unit's SystemCallFilter"; bad=1
  fi
done <"$work/used"
[ "$bad" -eq 0 ] || exit 1
echo "ok: $(wc -l <"$work/used") distinct system calls, all allowed by the filter (io_uring included)"
