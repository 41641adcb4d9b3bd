#!/usr/bin/env bash
# Ringway under a real systemd: systemd as PID 1 in a container booted from this machine's own
# /usr (systemd-nspawn --volatile=yes: an empty tmpfs root with the host's /usr), entered with
# nsenter. It shares the host's network, so the load runs here against 127.0.0.1.
#   start    READY only when accepting: a connection made as `systemctl start` returns works;
#   reload   under load (a connect loop at 600/s, 100 long-lived sessions streaming both ways):
#            0 refused, 0 reset, every session byte-exact, MainPID changed, one ringway process;
#   restart  `systemctl restart` under the same load: listeners and sessions go through systemd's
#            fd store (FDSTORE=1) to the next process, with the same zero figures, and the gap
#            between the old process storing and the new one resuming printed;
#   watchdog the unit's WatchdogSec never fired (no restart, Result=success);
#   stop     drains: a session open at `systemctl stop` keeps forwarding until it ends;
#   restart with an invalid config drains too (the errors logged with file:line:col).
# Exits 77 with the reason when the container cannot be booted here.
# The echo upstream and the connect loop are ringway-load (serve --mode echo; crr, one
# connection at a time, each a 64-byte echo exchange); the long-lived sessions are
# handover_load.py.
# Usage: systemd_container_test.sh RINGWAY_BIN UNIT_IN SOURCE_ROOT RINGWAY_LOAD_BIN
set -euo pipefail
bin=$1 unit_in=$2 root=$3 load_bin=$4
scale=${RINGWAY_TIMEOUT_SCALE:-1}
load="$root/tests/service/handover_load.py"

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to boot a container"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn missing (Debian package systemd-container)"
command -v nsenter >/dev/null || skip "nsenter missing (util-linux)"
command -v python3 >/dev/null || skip "python3 missing (the load driver)"
# A sanitizer build cannot run as the unit's DynamicUser under its sandbox (ProtectSystem,
# SystemCallFilter): ExecStartPre's --check already fails there. This test is about systemd's
# behaviour, which the plain build exercises; the sanitizers run the handover in integration-reload.
if grep -q __asan_init "$bin" 2>/dev/null; then skip "built with AddressSanitizer"; fi

work=$(mktemp -d)
machine="ringway-test-$$"
nspawn_pid= echo_pid= load_pid= crr_pid=
cleanup() {
  # Everything by its pid: the load, the echo backend, then the container (SIGTERM asks nspawn
  # to shut it down; SIGKILL after 10 s).
  for p in $load_pid $crr_pid $echo_pid; do kill "$p" 2>/dev/null || true; done
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --keep-unit and --register=no: no host systemd/machined is needed (PID 1 here is not systemd).
# systemd.firstboot=off: the empty /etc would otherwise make firstboot wait for a console.
systemd-nspawn --directory=/ --volatile=yes --register=no --keep-unit --boot --console=passive \
  --machine="$machine" -- systemd.firstboot=off >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
pid1=
for _ in $(seq 1 $((100 * scale))); do
  # nspawn's child that runs systemd (an intermediate child may show up first).
  pid1=$(ps -o pid=,comm= --ppid "$nspawn_pid" 2>/dev/null | awk '$2 == "systemd" {print $1}' | head -1 || true)
  [ -n "$pid1" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$pid1" ] || skip "the container did not start: $(tail -3 "$work/nspawn.log" | tr '\n' ' ')"
in_ct() { nsenter -t "$pid1" -a -- "$@"; }
state=
for _ in $(seq 1 $((120 * scale))); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.5
done
case "$state" in running|degraded) ;; *) skip "the container's systemd did not boot (state '$state')" ;; esac
echo "ok: container booted (systemd $(in_ct systemctl --version | head -1 | awk '{print $2}'), state $state)"
# Name service as on a Debian 12 host: libnss-systemd (priority standard, installed by default)
# puts "systemd" in nsswitch.conf, which resolves DynamicUser= users; the container's empty /etc
# has none. (It does not make the system bus usable for a dynamic uid: dbus-daemon refuses those
# since systemd 250.4, systemd#22737. The unit's ExecStop=+ hook asks PID 1 instead.)
if ls /usr/lib/*/libnss_systemd.so.2 >/dev/null 2>&1; then
  printf 'passwd: files systemd\ngroup: files systemd\nshadow: files\nhosts: files\n' |
    in_ct sh -c 'cat > /etc/nsswitch.conf'
  nss_note="nss-systemd resolves the DynamicUser"
else
  nss_note="no libnss-systemd here: the DynamicUser has no name"
fi
# The system bus: Ringway's fallback when no ExecStop hook told it the job type.
in_ct systemctl start dbus.socket >/dev/null 2>&1 || echo "note: no dbus in the container"
echo "ok: name service: $nss_note"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$load_bin" serve --mode echo --target 127.0.0.1:0 >"$work/echo.out" 2>&1 &
echo_pid=$!
echo_port=
for _ in $(seq 1 $((50 * scale))); do
  echo_port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$work/echo.out" | grep -oE '[0-9]+$' | head -1 || true)
  [ -n "$echo_port" ] && break; sleep 0.1
done
[ -n "$echo_port" ] || { echo "FAIL: echo backend did not start"; cat "$work/echo.out"; exit 1; }
gw_port=$(free_port)
admin_port=$(free_port)

# Install the binary, the unit (from conf/ringway.service.in, unchanged but for paths) and a
# config inside the container.
in_ct mkdir -p /opt/ringway/bin /etc/ringway
in_ct sh -c 'cat > /opt/ringway/bin/ringway && chmod 755 /opt/ringway/bin/ringway' <"$bin"
sed -e "s|@bindir@|/opt/ringway/bin|g" -e "s|@sysconfdir@|/etc|g" "$unit_in" |
  in_ct sh -c 'cat > /etc/systemd/system/ringway.service'
cat >"$work/ringway.toml" <<EOF
[settings]
workers = 2
drainTimeout = "20s"
admin = { bindAddress = "127.0.0.1", bindPort = $admin_port }

[[gateways]]
metadata = { name = "tcp" }
bindAddress = "127.0.0.1"
bindPort = $gw_port
[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 100000
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = { name = "echo" }

[[upstreams]]
metadata = { name = "echo" }
static.hosts = [{ addr = "127.0.0.1", port = $echo_port }]
EOF
in_ct sh -c 'cat > /etc/ringway/ringway.toml' <"$work/ringway.toml"
in_ct systemctl daemon-reload

fail() {
  echo "FAIL: $*"
  echo "--- Ringway's own log:"
  in_ct journalctl -u ringway -t ringway --no-pager -n 60 || true
  echo "--- PID 1 about the unit and its fd store:"
  in_ct journalctl _PID=1 --no-pager -o cat |
    grep -E 'ringway.service: (Added|Trying|Got|Cannot|Failed|Changed|Job|Received|Releasing)' |
    grep -vE 'STATUS=|WATCHDOG=1' | tail -60 || true
  exit 1
}
main_pid() { in_ct systemctl show -p MainPID --value ringway; }
ringway_count() { in_ct pgrep -x ringway | wc -l; }

# ---- start: READY only once accepting ----------------------------------------------------
in_ct systemctl start ringway || fail "systemctl start"
python3 - "$gw_port" <<'EOF' || fail "a connection made as soon as 'systemctl start' returned failed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"ready"); assert s.recv(5) == b"ready"
EOF
echo "ok: start (MainPID $(main_pid)); a connection right after start is forwarded"

# ---- reload and restart under load ---------------------------------------------------------
# A gauge of the running process's admin endpoint (empty while it does not answer).
metric() {
  python3 - "$admin_port" "$1" <<'EOF' 2>/dev/null || true
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1], timeout=2).read().decode()
for line in body.splitlines():
    if line.split("{")[0].split(" ")[0] == sys.argv[2]:
        print(int(float(line.rsplit(" ", 1)[1])))
        break
EOF
}
fd_count() { in_ct sh -c "ls /proc/$1/fd | wc -l"; }
pid1_fds() { ls "/proc/$pid1/fd" | wc -l; }
baseline_fds=$(fd_count "$(main_pid)")

run_under_load() {  # $1: reload|restart
  rm -f "$work/stop"
  rm -f "$work/ready"
  python3 "$load" --target "127.0.0.1:$gw_port" --stop-file "$work/stop" --rate 0 \
    --sessions 100 --max-seconds $((30 * scale)) --ready-file "$work/ready" >"$work/$1.json" &
  load_pid=$!
  for _ in $(seq 1 $((200 * scale))); do [ -f "$work/ready" ] && break; sleep 0.05; done
  [ -f "$work/ready" ] || fail "the long-lived sessions did not start"
  # Four connections at a time, each a new connection per 64-byte exchange, for 5 s.
  "$load_bin" crr --target "127.0.0.1:$gw_port" -c 4 -t 2 -d 5 --timeout 3 --json --no-progress \
    >"$work/$1.crr.json" 2>/dev/null &
  crr_pid=$!
  sleep 1.5
  local before; before=$(main_pid)
  local pid1_before; pid1_before=$(pid1_fds)
  local t0; t0=$(date +%s%N)
  in_ct systemctl "$1" ringway || fail "systemctl $1"
  local took=$(( ($(date +%s%N) - t0) / 1000000 ))
  # The new process counts the long-lived sessions it took over (plus loop connections).
  local active=
  for _ in $(seq 1 $((50 * scale))); do
    active=$(metric ringway_downstream_connections_active); [ -n "$active" ] && break; sleep 0.1
  done
  wait "$crr_pid" || fail "the connect loop failed during $1"
  crr_pid=
  touch "$work/stop"
  wait "$load_pid" || fail "the load driver failed during $1"
  load_pid=
  local after; after=$(main_pid)
  local n; n=$(ringway_count)
  # At rest again: no session left, and the new process holds as many fds as a fresh start.
  local rest=
  for _ in $(seq 1 $((100 * scale))); do
    rest=$(metric ringway_downstream_connections_active); [ "$rest" = 0 ] && break; sleep 0.1
  done
  local fds; fds=$(fd_count "$after")
  local pid1_after; pid1_after=$(pid1_fds)
  local fig; fig=$(python3 "$root/tests/service/handover_figures.py" "$work/$1.json" "$work/$1.crr.json")
  echo "[ measured ] $1: systemctl $1 took ${took} ms, MainPID $before -> $after, ringway processes $n, $fig"
  echo "[ measured ] $1: new process: sessions active ${active:-?} just after, ${rest:-?} at rest; fds ${fds} at rest (${baseline_fds} after a fresh start); PID 1 fds ${pid1_before} before, ${pid1_after} after"
  if [ "$1" = restart ]; then
    local stored resumed added
    stored=$(in_ct journalctl -u ringway --no-pager -o cat | grep -E 'restart: .* stored with systemd' | tail -1 || true)
    resumed=$(in_ct journalctl -u ringway --no-pager -o cat | grep -E 'restart: resumed' | tail -1 || true)
    added=$(in_ct journalctl _PID=1 --no-pager -o cat | grep -cE 'ringway.service: Added fd .* to fd store' || true)
    echo "[ measured ] restart: old process: ${stored:-nothing stored}"
    echo "[ measured ] restart: new process: ${resumed:-nothing resumed}"
    echo "[ measured ] restart: PID 1 logged ${added} fds added to its fd store"
    [ -n "$stored" ] && [ -n "$resumed" ] || fail "restart did not go through the fd store"
  fi
  python3 "$root/tests/service/handover_figures.py" --check "$work/$1.json" "$work/$1.crr.json" \
    || fail "$1 under load: $fig"
  [ "$n" -eq 1 ] || fail "$n ringway processes after $1"
  [ "$before" != "$after" ] || fail "MainPID unchanged after $1"
  [ "$(in_ct systemctl is-active ringway)" = active ] || fail "not active after $1"
  [ -n "$active" ] && [ "$active" -ge 100 ] ||
    fail "the new process counts ${active:-no} sessions after $1, not the 100 taken over"
  [ "$rest" = 0 ] || fail "sessions active ${rest:-?} at rest after $1"
  [ "$fds" -eq "$baseline_fds" ] || fail "the new process holds $fds fds at rest, a fresh one $baseline_fds"
  # The store released what the new process took: PID 1 does not keep 200 session sockets.
  [ "$pid1_after" -lt $((pid1_before + 50)) ] || fail "PID 1 holds $pid1_after fds after $1 ($pid1_before before)"
}
run_under_load reload
echo "ok: reload under load"
# PID 1's debug log names every fd it adds to the store (systemd-analyze log-level).
in_ct systemd-analyze log-level debug
run_under_load restart
in_ct systemd-analyze log-level info
echo "ok: restart under load"

# ---- watchdog: never fired ----------------------------------------------------------------
[ "$(in_ct systemctl show -p NRestarts --value ringway)" = 0 ] || fail "the service was restarted by systemd"
[ "$(in_ct systemctl show -p Result --value ringway)" = success ] || fail "Result is not success"
echo "ok: watchdog ($(in_ct systemctl show -p WatchdogUSec --value ringway)) never fired"

# ---- stop drains ----------------------------------------------------------------------------
# One session open while `systemctl "$@"` runs: it must keep forwarding until it ends on its own
# (a drain), however long the command takes. Prints how long the command took.
with_session_open() {
  rm -f "$work/stopping"
  python3 - "$gw_port" "$work/stopping" <<'EOF' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
open(sys.argv[2], "w").close()
time.sleep(1.5)  # the systemctl command has been sent meanwhile
for i in range(10):
    s.sendall(b"drain%d" % i)
    assert s.recv(16) == b"drain%d" % i
    time.sleep(0.1)
s.shutdown(socket.SHUT_WR)
assert s.recv(16) == b""
EOF
  local client=$!
  for _ in $(seq 1 50); do [ -f "$work/stopping" ] && break; sleep 0.1; done
  local t0; t0=$(date +%s%N)
  in_ct systemctl "$@" ringway >/dev/null 2>&1 && cmd_rc=0 || cmd_rc=$?
  cmd_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  wait "$client" || fail "the session open during 'systemctl $*' was not drained"
}
with_session_open stop
[ "$cmd_rc" -eq 0 ] || fail "systemctl stop failed"
echo "[ measured ] stop: systemctl stop took ${cmd_ms} ms with one session open (it ended on its own)"
[ "$(ringway_count)" -eq 0 ] || fail "ringway still running after stop"
echo "ok: stop drains"

# ---- restart with an invalid config: drains ---------------------------------------------------
# The next start would fail at ExecStartPre= and systemd would release the store with the
# sessions in it: the old process checks the file first, logs why, and drains instead.
in_ct systemctl start ringway || fail "systemctl start (before the invalid restart)"
printf '\n[settings]\nworkers = "two"\n' | in_ct sh -c 'cat >> /etc/ringway/ringway.toml'
with_session_open restart
[ "$cmd_rc" -ne 0 ] || fail "systemctl restart succeeded with an invalid config"
invalid=$(in_ct journalctl -u ringway -t ringway --no-pager -o cat | grep -E '^restart: .*is invalid' | tail -1 || true)
located=$(in_ct journalctl -u ringway -t ringway --no-pager -o cat | grep -cE '^restart: /etc/ringway/ringway.toml:[0-9]+:[0-9]+' || true)
echo "[ measured ] restart with an invalid config: systemctl restart took ${cmd_ms} ms and failed (rc $cmd_rc); the session open was drained; logged: ${invalid:-nothing}"
[ -n "$invalid" ] && [ "$located" -gt 0 ] || fail "the invalid config was not reported with file:line:col at restart"
[ "$(ringway_count)" -eq 0 ] || fail "ringway running after a restart with an invalid config"
echo "ok: restart with an invalid config drains"
