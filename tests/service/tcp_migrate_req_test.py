#!/usr/bin/env python3
"""What net.ipv4.tcp_migrate_req does for a reload that REPLACES a listener.

A reload that changes a gateway's PREBIND socket options opens a new listen socket beside the
old one (SO_REUSEPORT) and retires the old one: it accepts what is queued, then closes it. A
connection that reaches the old socket's queue (or is still in SYN_RECV on it) between the
last accept and close() is reset, unless tcp_migrate_req=1 lets the kernel move it to another
socket of the reuseport group. This test measures how many, with the sysctl at 0 and then 1:
a connect loop (one 64-byte echo exchange per connection) runs while the config alternates
between two keep-alive settings and Ringway is reloaded (SIGHUP) several times.

Everything runs in a network namespace this test creates (unshare), with its own loopback and
its own tcp_migrate_req: the host is untouched. Exits 77 with the reason where that is not
permitted. Asserts: every reload completed and replaced both workers' listeners, nothing refused
in either mode, nothing lost with tcp_migrate_req=1; prints the figures of both modes (a reset
with 0 is the window this measures, so it is printed, not failed).

Usage: tcp_migrate_req_test.py RINGWAY_BIN HANDOVER_LOAD_PY
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from service_util import SCALE, free_port, wait_for

CLONE_NEWNET = 0x40000000
RELOADS = 12
CLIENT_THREADS = 12


def skip(why):
    print("skip: %s" % why)
    sys.exit(77)


def enter_private_netns():
    """Before any thread exists: the whole test, and every process it starts, is inside."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        skip("cannot create a network namespace: %s" % os.strerror(ctypes.get_errno()))
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        skip("ip (iproute2) missing: cannot bring the namespace's loopback up")
    subprocess.run([ip, "link", "set", "lo", "up"], check=True)
    if not os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req"):
        skip("this kernel has no net.ipv4.tcp_migrate_req (Linux >= 5.14)")


def set_migrate_req(value):
    with open("/proc/sys/net/ipv4/tcp_migrate_req", "w") as f:
        f.write(str(value))



def config(gw_port, echo_port, keepidle):
    # Keep-alive options at STATE_PREBIND: a change cannot be applied to a listening socket,
    # so every reload opens a new listener and retires the old one.
    opts = ""
    for desc, level, name, value in (("keep-alive", 1, 9, 1), ("idle", 6, 4, keepidle),
                                     ("interval", 6, 5, 15), ("count", 6, 6, 4)):
        opts += ('[[gateways.options.socketOptions]]\ndescription = "%s"\nlevel = %d\n'
                 'name = %d\nintValue = %d\nstate = "STATE_PREBIND"\n' % (desc, level, name, value))
    return """[settings]
workers = 2
drainTimeout = "2s"

[[gateways]]
metadata = {{ name = "tcp" }}
bindAddress = "127.0.0.1"
bindPort = {gw}
{opts}
[[gateways.tcpGateway.tcpHosts]]
name = "one"
destination.single.upstream = {{ name = "echo" }}

[[upstreams]]
metadata = {{ name = "echo" }}
static.hosts = [{{ addr = "127.0.0.1", port = {echo} }}]
""".format(gw=gw_port, echo=echo_port, opts=opts)


class Loop:
    """A bounded connect loop: each connection sends 64 bytes and expects them back."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "refused": 0, "reset": 0, "timeout": 0, "other": 0}
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(CLIENT_THREADS)]

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def run(self, i):
        payload = bytes([i]) * 64
        deadline = time.monotonic() + 120 * SCALE
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=3 * SCALE) as s:
                    s.sendall(payload)
                    got = b""
                    while len(got) < 64:
                        chunk = s.recv(64 - len(got))
                        if not chunk:
                            raise ConnectionResetError("EOF before the echo")
                        got += chunk
                    self.count("ok" if got == payload else "other")
            except ConnectionRefusedError:
                self.count("refused")
            except (ConnectionResetError, BrokenPipeError):
                self.count("reset")
            except socket.timeout:
                self.count("timeout")
            except OSError:
                self.count("other")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()



def reap(pid, seconds):
    """True once `pid` (our child) has exited; SIGKILL after `seconds`."""
    if wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, seconds):
        return True
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def run_mode(migrate_req, ringway, work, echo_port):
    set_migrate_req(migrate_req)
    gw_port = free_port()
    cfg = os.path.join(work, "ringway-%d.toml" % migrate_req)
    log_path = os.path.join(work, "ringway-%d.log" % migrate_req)
    with open(cfg, "w") as f:
        f.write(config(gw_port, echo_port, 60))
    log = open(log_path, "w")
    # New processes are started with CLONE_PARENT: each becomes our child too, reaped below.
    proc = subprocess.Popen([ringway, "-c", cfg], stdout=log, stderr=subprocess.STDOUT)
    pid = proc.pid
    children = [pid]
    text = lambda: open(log_path).read()
    try:
        if not wait_for(lambda: "ready" in text(), 10):
            raise SystemExit("FAIL: ringway did not start:\n" + text())
        reloads = 0
        with Loop(gw_port) as loop:
            time.sleep(0.5)
            for k in range(RELOADS):
                with open(cfg, "w") as f:
                    f.write(config(gw_port, echo_port, 45 if k % 2 == 0 else 60))
                before = len(text())
                os.kill(pid, signal.SIGHUP)
                m = wait_for(lambda: re.search(r"reload: pid (\d+) took over", text()[before:]), 10)
                if not m:
                    raise SystemExit("FAIL: reload %d did not complete:\n%s" % (k, text()[before:]))
                reap(pid, 5)
                pid = int(m.group(1))
                children.append(pid)
                reloads += 1
                time.sleep(0.4)
            time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        reap(pid, 10)
        retired = re.findall(r"retired a listener .*\((\d+) queued connections taken\)", text())
        return dict(loop.counts, reloads=reloads,
                    listeners_retired=len(retired), queued_taken=sum(int(n) for n in retired))
    finally:
        log.close()
        for p in children:  # whatever is still running, by its pid
            try:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    ringway, load_py = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        skip("needs root for a network namespace")
    enter_private_netns()
    work = tempfile.mkdtemp(prefix="ringway-migrate-")
    port_file = os.path.join(work, "echo.port")
    echo = subprocess.Popen([sys.executable, load_py, "--echo-port-file", port_file])
    try:
        if not wait_for(lambda: os.path.exists(port_file), 10):
            raise SystemExit("FAIL: the echo upstream did not start")
        echo_port = int(open(port_file).read())
        figures = {m: run_mode(m, ringway, work, echo_port) for m in (0, 1)}
    finally:
        echo.kill()
        echo.wait()
        shutil.rmtree(work, ignore_errors=True)
    for m, f in figures.items():
        print("[ measured ] tcp_migrate_req=%d: %d reloads replacing the listener, connect loop "
              "%d ok, %d refused, %d reset, %d timed out, %d other; %d listeners retired, %d "
              "queued connections taken at retirement"
              % (m, f["reloads"], f["ok"], f["refused"], f["reset"], f["timeout"], f["other"],
                 f["listeners_retired"], f["queued_taken"]))
    failed = []
    for m, f in figures.items():
        if f["reloads"] != RELOADS:
            failed.append("tcp_migrate_req=%d: %d of %d reloads" % (m, f["reloads"], RELOADS))
        if f["ok"] == 0:
            failed.append("tcp_migrate_req=%d: the connect loop never got an echo" % m)
        if f["listeners_retired"] != 2 * RELOADS:  # 2 workers: every reload replaced both
            failed.append("tcp_migrate_req=%d: %d listeners retired, not %d"
                          % (m, f["listeners_retired"], 2 * RELOADS))
        if f["refused"] != 0:
            failed.append("tcp_migrate_req=%d: %d refused" % (m, f["refused"]))
    if figures[1]["reset"] + figures[1]["other"] + figures[1]["timeout"] != 0:
        failed.append("tcp_migrate_req=1: connections lost while listeners were replaced")
    for f in failed:
        print("FAIL: " + f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
