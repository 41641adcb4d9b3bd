#!/usr/bin/env python3
"""Figures of one reload/restart run of systemd_container_test.sh: the long-lived sessions'
JSON (handover_load.py) and the connect loop's (ringway-load crr --json). Prints one line; with
--check, exits 1 unless: 0 connect errors, >= 500 connections/s, every session byte-exact."""
import json
import sys

args = sys.argv[1:]
check = args and args[0] == "--check"
if check:
    args = args[1:]
f = json.load(open(args[0]))
c = json.load(open(args[1]))
if not check:
    print("long-lived %d/%d byte-exact, %d reset, %.1f MiB each way; connect loop %d at %.0f/s, "
          "errors %s" % (f["byte_exact"], f["sessions"], f["resets"], f["bytes_each_way"] / 2**20,
                         c["requests"], c["requests_per_s"], c["errors"]))
    sys.exit(0)
ok = (c["errors_total"] == 0 and c["requests_per_s"] >= 500 and f["resets"] == 0
      and f["byte_exact"] == f["sessions"])
sys.exit(0 if ok else 1)
