"""Helpers shared by the Python service tests (fd_store_restart_test.py, tcp_migrate_req_test.py),
imported from the scripts' own directory."""

import os
import socket
import time

# RINGWAY_TIMEOUT_SCALE stretches every bounded wait (sanitized builds run slower).
SCALE = int(os.environ.get("RINGWAY_TIMEOUT_SCALE", "1"))


def free_port():
    """A loopback port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, seconds):
    """pred()'s first true value within `seconds` (scaled), polled every 20 ms; else None."""
    deadline = time.monotonic() + seconds * SCALE
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None
