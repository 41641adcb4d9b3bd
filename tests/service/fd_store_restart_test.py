#!/usr/bin/env python3
"""Restart through a stand-in for systemd's fd store, without systemd (so it also runs the
sanitizer build): this test binds the notify socket itself and keeps what Ringway stores.

  1. Ringway runs with NOTIFY_SOCKET set; 20 long-lived sessions stream both ways through it.
  2. The restart hint is queued as the unit's ExecStop hook does (SIGUSR2, sigqueue, root,
     value = FileDescriptorStoreMax), then SIGTERM: Ringway must store its listen sockets, every
     session's sockets and the state (FDSTORE=1, one fd per message, FDPOLL=0) and exit at once.
  3. Connections made while no Ringway runs wait in the stored listen sockets' backlog.
  4. A second Ringway gets the stored fds as systemd passes them (LISTEN_FDS, LISTEN_FDNAMES,
     LISTEN_PID): it must resume every session, answer the waiting connections, and remove
     everything it took from the store (FDSTOREREMOVE=1).
Asserts every session byte-exact with no reset, every waiting connection answered, the store
empty at the end, and no sanitizer report from either process; prints the figures. Exits 77 when not root (the hint must come from uid 0).

Usage: fd_store_restart_test.py RINGWAY_BIN HANDOVER_LOAD_PY
"""
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from service_util import SCALE, free_port, wait_for

SESSIONS = 20
WAITING = 5
STORE_MAX = 65536


class sigval(ctypes.Union):
    _fields_ = [("sival_int", ctypes.c_int), ("sival_ptr", ctypes.c_void_p)]


def sigqueue(pid, sig, value):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, sigval]
    if libc.sigqueue(pid, sig, sigval(sival_int=value)) != 0:
        raise OSError(ctypes.get_errno(), "sigqueue")



class FakeStore:
    """The notify socket: FDSTORE=1 / FDSTOREREMOVE=1 by FDNAME, BARRIER=1 answered."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.fds = {}
        self.messages = {"store": 0, "remove": 0, "barrier": 0, "other": 0}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 16)
            except socket.timeout:
                continue
            fields = dict(l.split("=", 1) for l in msg.decode().split("\n") if "=" in l)
            with self.lock:
                if fields.get("BARRIER") == "1":
                    self.messages["barrier"] += 1
                    for f in fds:
                        os.close(f)  # closing it is the answer
                elif fields.get("FDSTORE") == "1" and len(fds) == 1:
                    self.messages["store"] += 1
                    name = fields.get("FDNAME", "stored")
                    if name in self.fds:
                        os.close(self.fds[name])
                    self.fds[name] = fds[0]
                elif fields.get("FDSTOREREMOVE") == "1":
                    self.messages["remove"] += 1
                    f = self.fds.pop(fields.get("FDNAME", ""), None)
                    if f is not None:
                        os.close(f)
                else:
                    self.messages["other"] += 1
                    for f in fds:
                        os.close(f)

    def snapshot(self):
        with self.lock:
            return dict(self.fds)

    def close(self):
        self.stop.set()
        self.thread.join()
        for f in self.fds.values():
            os.close(f)
        self.sock.close()



def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    ringway, load_py = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("skip: the restart hint is honoured only when queued by root")
        return 77
    work = tempfile.mkdtemp(prefix="ringway-fdstore-")
    store = FakeStore(os.path.join(work, "notify"))
    procs = []
    waiting = []
    try:
        port_file = os.path.join(work, "echo.port")
        procs.append(subprocess.Popen([sys.executable, load_py, "--echo-port-file", port_file]))
        if not wait_for(lambda: os.path.exists(port_file), 10):
            raise SystemExit("FAIL: the echo upstream did not start")
        gw_port = free_port()
        cfg = os.path.join(work, "ringway.toml")
        with open(cfg, "w") as f:
            f.write('[settings]\nworkers = 2\ndrainTimeout = "5s"\n\n[[gateways]]\n'
                    'metadata = { name = "tcp" }\nbindAddress = "127.0.0.1"\nbindPort = %d\n'
                    '[[gateways.tcpGateway.tcpHosts]]\nname = "one"\n'
                    'destination.single.upstream = { name = "echo" }\n\n[[upstreams]]\n'
                    'metadata = { name = "echo" }\n'
                    'static.hosts = [{ addr = "127.0.0.1", port = %d }]\n'
                    % (gw_port, int(open(port_file).read())))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(work, "notify"))
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC"):
            env.pop(k, None)
        log1 = os.path.join(work, "first.log")
        first = subprocess.Popen([ringway, "-c", cfg], env=env, stdout=open(log1, "w"),
                                 stderr=subprocess.STDOUT)
        procs.append(first)
        if not wait_for(lambda: "ready" in open(log1).read(), 15):
            raise SystemExit("FAIL: ringway did not start:\n" + open(log1).read())
        stop_file, ready_file = os.path.join(work, "stop"), os.path.join(work, "ready")
        load = subprocess.Popen([sys.executable, load_py, "--target", "127.0.0.1:%d" % gw_port,
                                 "--stop-file", stop_file, "--rate", "0", "--sessions",
                                 str(SESSIONS), "--max-seconds", str(60 * SCALE),
                                 "--ready-file", ready_file], stdout=subprocess.PIPE)
        procs.append(load)
        if not wait_for(lambda: os.path.exists(ready_file), 20):
            raise SystemExit("FAIL: the long-lived sessions did not start")
        time.sleep(0.5)

        # 2. As ExecStop=+ringway --before-stop does at a restart, then systemd's SIGTERM.
        sigqueue(first.pid, signal.SIGUSR2, STORE_MAX)
        time.sleep(0.1)  # systemd sends SIGTERM after the hook has exited
        t0 = time.monotonic()
        first.send_signal(signal.SIGTERM)
        if wait_for(lambda: first.poll() is not None, 10) is None:
            raise SystemExit("FAIL: ringway did not exit after storing:\n" + open(log1).read())
        exit_ms = (time.monotonic() - t0) * 1000
        stored = store.snapshot()
        if "ringway-state" not in stored:
            raise SystemExit("FAIL: no state in the store (%d fds):\n%s"
                             % (len(stored), open(log1).read()))

        # 3. Nobody accepts now: these wait in the stored listen sockets' backlog.
        for i in range(WAITING):
            s = socket.create_connection(("127.0.0.1", gw_port), timeout=10 * SCALE)
            s.sendall(b"waiting%02d" % i)
            waiting.append(s)

        # 4. The next process, given the store as systemd passes it.
        names = sorted(stored)
        srcs = [stored[n] for n in names]

        def as_listen_fds():
            high = [fcntl.fcntl(f, fcntl.F_DUPFD, 1000) for f in srcs]
            for i, f in enumerate(high):
                os.dup2(f, 3 + i)  # inheritable, as systemd passes them

        env2 = dict(env, LISTEN_FDS=str(len(names)), LISTEN_FDNAMES=":".join(names))
        log2 = os.path.join(work, "second.log")
        t1 = time.monotonic()
        second = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', ringway,
                                   "-c", cfg], env=env2, stdout=open(log2, "w"),
                                  stderr=subprocess.STDOUT, preexec_fn=as_listen_fds,
                                  pass_fds=list(range(3, 3 + len(names))))
        procs.append(second)
        if not wait_for(lambda: "restart: resumed" in open(log2).read(), 15):
            raise SystemExit("FAIL: the second process did not resume:\n" + open(log2).read())
        resume_ms = (time.monotonic() - t1) * 1000
        answered = 0
        for i, s in enumerate(waiting):
            s.settimeout(10 * SCALE)
            got = b""
            while len(got) < 9:
                chunk = s.recv(9 - len(got))
                if not chunk:
                    break
                got += chunk
            answered += got == b"waiting%02d" % i
        time.sleep(0.5)  # the sessions stream through the second process for a while
        open(stop_file, "w").close()
        out, _ = load.communicate(timeout=60 * SCALE)
        figures = json.loads(out.decode().strip().splitlines()[-1])
        left = wait_for(lambda: len(store.snapshot()) == 0, 5)
        remaining = len(store.snapshot())
        second.send_signal(signal.SIGTERM)
        wait_for(lambda: second.poll() is not None, 10)
        text1, text2 = open(log1).read(), open(log2).read()
        stored_line = [l for l in text1.splitlines() if "stored with systemd" in l]
        resumed_line = [l for l in text2.splitlines() if "restart: resumed" in l]
        print("[ measured ] fd store restart: %d fds stored (%d FDSTORE messages, %d barrier), "
              "first process exited %.0f ms after SIGTERM; second resumed in %.0f ms; "
              "long-lived %d/%d byte-exact, %d reset, %.1f MiB each way; %d/%d connections made "
              "in the gap answered; %d fds left in the store (%d FDSTOREREMOVE)"
              % (len(stored), store.messages["store"], store.messages["barrier"], exit_ms,
                 resume_ms, figures["byte_exact"], figures["sessions"], figures["resets"],
                 figures["bytes_each_way"] / 2**20, answered, WAITING, remaining,
                 store.messages["remove"]))
        for line in stored_line + resumed_line:
            print("[ measured ]   " + line.strip())
        failed = []
        if figures["byte_exact"] != SESSIONS or figures["resets"] != 0:
            failed.append("long-lived sessions not carried intact")
        if answered != WAITING:
            failed.append("connections made in the gap not answered")
        if not left:
            failed.append("the second process left %d fds in the store" % remaining)
        if not stored_line or not resumed_line:
            failed.append("the logs do not show the store and the resume")
        text2 = open(log2).read()  # after the second process exited: its sanitizer report
        for name, text in (("first", text1), ("second", text2)):
            if "Sanitizer" in text or "runtime error" in text:
                failed.append("the %s process reported a sanitizer error" % name)
        for f in failed:
            print("FAIL: " + f)
        if failed:
            print(text1[-3000:])
            print(text2[-3000:])
        return 1 if failed else 0
    finally:
        for s in waiting:
            s.close()
        for p in reversed(procs):  # each by its pid
            if p.poll() is None:
                p.kill()
                p.wait()
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
