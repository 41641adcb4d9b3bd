#!/usr/bin/env python3
"""Round-trip latency through Ringway with a backend that answers in two writes, with the
downstream socket's TCP_NODELAY on (Ringway's default since issue 10) and off (a gateway
socket option TCP_NODELAY = 0 restores the kernel default, Nagle on).

Why it matters: the proxy forwards the two halves of the answer as two sends; with Nagle on, the
second small segment waits until the first is acknowledged, i.e. for the client's delayed ACK.

Usage: bench/tools/two_writes.py --ringway build/src/ringway [--requests 200]
Prints one line per mode: p50 / p99 / max in microseconds. Loopback only; stops what it starts.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time


def backend(listener):
    """Answers each 64-byte request with 32 bytes, a 2 ms pause, then 32 more bytes."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def serve(c):
            with c:
                while True:
                    data = b""
                    while len(data) < 64:
                        chunk = c.recv(64 - len(data))
                        if not chunk:
                            return
                        data += chunk
                    c.sendall(data[:32])
                    time.sleep(0.002)  # two separate segments, as an application doing two writes
                    c.sendall(data[32:])

        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def run(ringway, backend_port, nodelay, requests):
    option = ""
    if not nodelay:
        option = ('[[gateways.options.socketOptions]]\ndescription = "Nagle on"\n'
                  'level = "IPPROTO_TCP"\nname = "TCP_NODELAY"\nintValue = 0\n'
                  'state = "STATE_PREBIND"\n')
    toml = f"""[settings]
workers = 1
drainTimeout = "1s"
[[gateways]]
metadata = {{ name = "tcp" }}
bindAddress = "127.0.0.1"
bindPort = 0
{option}[gateways.tcpGateway.options.connectionLimit]
maxActiveConnections = 10
[[gateways.tcpGateway.tcpHosts]]
destination.single.upstream = {{ name = "two" }}
[[upstreams]]
metadata = {{ name = "two" }}
static.hosts = [{{ addr = "127.0.0.1", port = {backend_port} }}]
"""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml)
        path = f.name
    proc = subprocess.Popen([ringway, "-c", path], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 10
        while time.time() < deadline and port is None:
            line = proc.stderr.readline()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        if port is None:
            raise RuntimeError("ringway did not start")
        threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        msg = b"x" * 64
        for _ in range(requests):
            t = time.perf_counter()
            c.sendall(msg)
            got = b""
            while len(got) < 64:
                got += c.recv(64 - len(got))
            rtts.append((time.perf_counter() - t) * 1e6)
        c.close()
        rtts.sort()
        return rtts[len(rtts) // 2], rtts[len(rtts) * 99 // 100], rtts[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringway", required=True)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    threading.Thread(target=backend, args=(listener,), daemon=True).start()
    port = listener.getsockname()[1]
    for nodelay in (True, False):
        p50, p99, mx = run(args.ringway, port, nodelay, args.requests)
        print(f"downstream TCP_NODELAY {'on ' if nodelay else 'off'}: "
              f"p50 {p50:.0f} us, p99 {p99:.0f} us, max {mx:.0f} us "
              f"({args.requests} requests, backend answers 32 B + 2 ms + 32 B)")
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
