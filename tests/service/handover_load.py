#!/usr/bin/env python3
"""Load for the real-systemd test: an echo upstream, a paced connect loop (one 64-byte echo
exchange per connection) and N long-lived sessions streaming a per-session byte pattern both
ways, checked byte for byte. Runs until the file STOP_FILE exists (or --max-seconds), then sends
FIN on every long-lived session, reads to EOF and prints one JSON line of figures.

Usage: handover_load.py --echo-port-file F            (echo server: writes its port, runs)
       handover_load.py --target HOST:PORT --stop-file F [--rate 600] [--sessions 100]
"""
import argparse
import errno
import json
import multiprocessing
import os
import selectors
import socket
import sys
import time


def echo_server(port_file):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                c, _ = srv.accept()
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                continue
            s.setblocking(True)  # echo small chunks back synchronously: bounded by the window
            try:
                s.sendall(data)
            except OSError:
                pass
            s.setblocking(False)


PERIOD = 65521  # prime: a session's stream never lines up with chunk or buffer sizes
_ONE = bytes(((k * 7 + k // 251) & 0xFF) for k in range(PERIOD))
_BASE = _ONE + _ONE[:70000]


def pattern(i, pos, n):
    """n bytes of session i's stream from offset pos: a cyclic pattern, shifted per session."""
    start = (pos + i * 997) % PERIOD
    return _BASE[start:start + n]


def connect_loop(host, port, rate, stop, out):
    ok = refused = reset = 0
    start = time.monotonic()
    i = 0
    while not stop.is_set() and time.monotonic() - start < 120:
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        i += 1
        try:
            s = socket.create_connection((host, port), timeout=3)
        except ConnectionRefusedError:
            refused += 1
            continue
        except OSError:
            reset += 1
            continue
        try:
            s.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                d = s.recv(64 - len(got))
                if not d:
                    break
                got += d
            if got == b"x" * 64:
                ok += 1
            else:
                reset += 1
        except OSError:
            reset += 1
        finally:
            s.close()
    out.put(dict(ok=ok, refused=refused, reset=reset, seconds=time.monotonic() - start))


def streams(host, port, n, stop_file, max_seconds, ready_file=None):
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=3)
        s.setblocking(False)
        socks.append(s)
    # Each session proves it is forwarded (one echoed chunk) before the caller is told to go on.
    for i, s in enumerate(socks):
        s.setblocking(True)
        s.sendall(pattern(i, 0, 1024))
        got = b""
        while len(got) < 1024:
            d = s.recv(1024 - len(got))
            if not d:
                raise SystemExit("session %d ended before its first echo" % i)
            got += d
        if got != pattern(i, 0, 1024):
            raise SystemExit("session %d: first echo differs" % i)
        s.setblocking(False)
    sent = [1024] * n
    recv = [1024] * n
    if ready_file:
        open(ready_file, "w").close()
    bad = [False] * n
    done = [False] * n
    resets = 0
    fin = False
    start = time.monotonic()
    deadline = start + max_seconds
    while time.monotonic() < deadline + 30:
        if not fin and (os.path.exists(stop_file) or time.monotonic() > deadline):
            for i, s in enumerate(socks):
                if not done[i]:
                    s.shutdown(socket.SHUT_WR)
            fin = True
        if all(done):
            break
        for i, s in enumerate(socks):
            if done[i]:
                continue
            if not fin and sent[i] - recv[i] < 65536:
                try:
                    sent[i] += s.send(pattern(i, sent[i], 1024))
                except BlockingIOError:
                    pass
                except OSError:
                    resets += 1
                    done[i] = True
                    continue
            while True:
                try:
                    d = s.recv(16384)
                except BlockingIOError:
                    break
                except OSError:
                    resets += 1
                    done[i] = True
                    break
                if not d:
                    done[i] = True
                    break
                if d != pattern(i, recv[i], len(d)):
                    bad[i] = True
                recv[i] += len(d)
        time.sleep(0.02)
    exact = sum(1 for i in range(n) if done[i] and not bad[i] and recv[i] == sent[i] and fin)
    return dict(sessions=n, byte_exact=exact, resets=resets, bytes_each_way=sum(recv))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--echo-port-file")
    p.add_argument("--target")
    p.add_argument("--stop-file")
    p.add_argument("--rate", type=int, default=600)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--max-seconds", type=float, default=60)
    p.add_argument("--ready-file", help="created once every long-lived session is forwarded")
    a = p.parse_args()
    if a.echo_port_file:
        echo_server(a.echo_port_file)
        return
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    # The connect loop runs in its own process: in a thread it would share the interpreter lock
    # with the streams and fall short of its rate.
    if a.rate <= 0:  # long-lived sessions only (the caller runs its own connect loop)
        print(json.dumps(streams(host, port, a.sessions, a.stop_file, a.max_seconds,
                                 a.ready_file)))
        return
    stop = multiprocessing.Event()
    out = multiprocessing.Queue()
    loop = multiprocessing.Process(target=connect_loop, args=(host, port, a.rate, stop, out))
    loop.start()
    try:
        figures = streams(host, port, a.sessions, a.stop_file, a.max_seconds)
    finally:
        stop.set()
        figures_loop = out.get(timeout=30)
        loop.join()
    figures["loop"] = figures_loop
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
