#!/usr/bin/env python3
"""Folds `perf script -F comm,ip,sym` output (recorded with -g) into one line per distinct stack:
"comm;root;...;leaf count", the input of flame-graph tools (flamegraph.pl, speedscope, inferno).
Debian ships no flame-graph package, and this is all scripts/bench.sh --profile needs of one."""
import collections
import re
import sys

OFFSET = re.compile(r"\+0x[0-9a-f]+$")


def main() -> None:
    counts: collections.Counter[str] = collections.Counter()
    comm = None
    frames: list[str] = []

    def flush() -> None:
        if comm is not None and frames:
            counts[";".join([comm] + frames[::-1])] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
        elif line[0] in " \t":
            parts = line.split(None, 1)  # "ip symbol (dso)"
            sym = parts[1].rsplit(" (", 1)[0].strip() if len(parts) > 1 else "[unknown]"
            frames.append(OFFSET.sub("", sym).replace(";", ":") or "[unknown]")
        else:
            flush()
            comm, frames = line.split()[0] if line.split() else "?", []
    flush()
    for stack, n in counts.most_common():
        print(f"{stack} {n}")


if __name__ == "__main__":
    main()
