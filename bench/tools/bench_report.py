#!/usr/bin/env python3
"""Turns the per-run JSON of scripts/bench.sh into the comparison: medians of the rounds, ratios
to `direct` and to the best peer, proxy CPU seconds per GiB / 100k requests / 1k connections,
memory per idle connection. Writes results.md, bench-results.json and bench-results.png (gnuplot).

Usage: bench_report.py OUT_DIR   (OUT_DIR holds runs/*.json and facts.json)
"""
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys

PEERS = ["haproxy", "haproxy-splice", "haproxy-splice-force", "nginx", "socat"]
ORDER = ["direct", "ringway", "ringway-copy", "ringway-oneshot", "ringway-busypoll"] + PEERS
GIB = float(1 << 30)

# name -> (kind, headline metric label, CPU unit label, work units per run)
SCENARIOS = {
    "stream1": ("stream", "Gbit/s", "CPU s/GiB", lambda r: (r["bytes_sent"] + r["bytes_received"]) / GIB),
    "stream8": ("stream", "Gbit/s", "CPU s/GiB", lambda r: (r["bytes_sent"] + r["bytes_received"]) / GIB),
    "rr1": ("rr", "req/s", "CPU s/100k req", lambda r: r["requests"] / 1e5),
    "rr32": ("rr", "req/s", "CPU s/100k req", lambda r: r["requests"] / 1e5),
    "rr256": ("rr", "req/s", "CPU s/100k req", lambda r: r["requests"] / 1e5),
    "crr32": ("crr", "conn/s", "CPU s/1k conn", lambda r: r["requests"] / 1e3),
    "hold": ("hold", "KiB/idle conn (PSS)", None, None),
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load_runs(out_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "runs", "*.json"))):
        try:
            with open(path) as f:
                run = json.load(f)
        except (OSError, ValueError):
            continue  # a run that printed nothing is reported through its log and the errors
        scenario, target, _round = run["label"].split()
        runs.setdefault((scenario, target), []).append(run)
    return runs


def summarize(scenario, runs):
    kind, _, _, units_of = SCENARIOS[scenario]
    s = {"rounds": len(runs), "errors": sum(r["errors_total"] for r in runs)}
    causes = {}
    for r in runs:
        for cause, count in r["errors"].items():
            if count:
                causes[cause] = causes.get(cause, 0) + count
    s["error_causes"] = causes
    if kind == "stream":
        s["value"] = median([r["gbit_per_s"] for r in runs])
    elif kind in ("rr", "crr"):
        s["value"] = median([r["requests_per_s"] for r in runs])
        s["p50_us"] = median([r["latency_us"]["p50"] for r in runs])
        s["p99_us"] = median([r["latency_us"]["p99"] for r in runs])
        s["p99_9_us"] = median([r["latency_us"]["p99_9"] for r in runs])
    else:
        s["held"] = median([r["hold"]["held"] for r in runs])
        s["requested"] = runs[0]["hold"]["requested"]
        with_target = [r for r in runs if "target_process" in r]
        s["value"] = median([r["hold"]["pss_kib_per_connection"] for r in with_target])
        s["rss_kib_per_connection"] = median([r["hold"]["rss_kib_per_connection"] for r in with_target])
        s["fds_per_connection"] = median([r["hold"]["fds_per_connection"] for r in with_target])
    procs = [r["target_process"] for r in runs if "target_process" in r]
    if procs:
        s["cpu_s"] = median([p["cpu_s"] for p in procs])
        s["peak_rss_mib"] = median([max(p["rss_max_kib"], p["hwm_kib"]) / 1024 for p in procs])
        if units_of:
            per_unit = [r["target_process"]["cpu_s"] / units_of(r) for r in runs
                        if "target_process" in r and units_of(r) > 0]
            s["cpu_per_unit"] = median(per_unit)
    return s


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, digits=2):
    if value is None:
        return "—"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def build(out_dir):
    runs = load_runs(out_dir)
    with open(os.path.join(out_dir, "facts.json")) as f:
        facts = json.load(f)
    targets = [t for t in ORDER if any(k[1] == t for k in runs)]
    results = {}
    for scenario in SCENARIOS:
        per_target = {t: summarize(scenario, runs[(scenario, t)]) for t in targets
                      if (scenario, t) in runs}
        if not per_target:
            continue
        lower_is_better = SCENARIOS[scenario][0] == "hold"
        peers = [per_target[t] for t in PEERS if t in per_target
                 and per_target[t].get("value") is not None]
        pick = min if lower_is_better else max
        best_value = pick((p["value"] for p in peers), default=None)
        best_cpu = min((p["cpu_per_unit"] for p in peers if p.get("cpu_per_unit")), default=None)
        direct = per_target.get("direct", {}).get("value")
        for s in per_target.values():
            s["vs_direct"] = None if lower_is_better else ratio(s.get("value"), direct)
            s["vs_best_peer"] = ratio(s.get("value"), best_value)
            s["cpu_vs_best_peer"] = ratio(s.get("cpu_per_unit"), best_cpu)
        results[scenario] = per_target
    return facts, targets, results


def markdown(facts, targets, results):
    lines = [f"# Ringway comparison benchmark ({facts['date']})", ""]
    lines += [
        f"- kernel {facts['kernel']}, {facts['cpus']} CPUs ({facts.get('cpu_model') or 'unknown model'}), "
        f"{facts.get('memory', '?')}; git {facts['git']}; mode {facts['mode']}",
        f"- CPU sharing: {facts['cpu_layout']}",
        f"- {facts['rounds']} round(s), {facts['seconds_per_run']} s measured per run after "
        f"{facts['warmup_s']} s warmup; hold: {facts['hold_connections']} connections; "
        f"fd limit {facts['fd_limit']}; tcp_tw_reuse {facts['tcp_tw_reuse']}",
        "- values are medians of the rounds; errors are summed over all rounds (whole runs);",
        "  × direct = value / direct's; × best peer = value / best of haproxy, haproxy-splice, haproxy-splice-force, nginx,"
        " socat; CPU is the proxy's utime+stime (all threads and children) over the measured window",
        "",
        "| target | version |", "| --- | --- |",
    ]
    lines += [f"| {t} | {facts['versions'].get(t, '')} |" for t in targets]
    for n in facts.get("notes", []):
        lines.append(f"\nNote: {n}")
    for scenario, per_target in results.items():
        kind, label, cpu_label, _ = SCENARIOS[scenario]
        lines += ["", f"## {scenario}", ""]
        if kind == "hold":
            lines += [f"| target | held | {label} | × best peer | KiB/conn (RSS) | fds/conn | peak RSS MiB | errors |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        else:
            lat = " p50 µs | p99 µs |" if kind != "stream" else ""
            lines += [f"| target | {label} | × direct | × best peer |{lat} {cpu_label} | CPU × best peer | peak RSS MiB | errors |",
                      "| --- " * (8 + (2 if lat else 0)) + "|"]
        for t in targets:
            s = per_target.get(t)
            if s is None:
                continue
            errors = str(s["errors"]) + ("" if not s["error_causes"] else " (" + ", ".join(
                f"{k} {v}" for k, v in s["error_causes"].items()) + ")")
            if kind == "hold":
                held = f"{fmt(s['held'], 0)}/{s['requested']}"
                lines.append(f"| {t} | {held} | {fmt(s.get('value'))} | {fmt(s['vs_best_peer'])} | "
                             f"{fmt(s.get('rss_kib_per_connection'))} | {fmt(s.get('fds_per_connection'))} | "
                             f"{fmt(s.get('peak_rss_mib'), 1)} | {errors} |")
            else:
                digits = 2 if kind == "stream" else 0
                lat = f" {fmt(s['p50_us'], 1)} | {fmt(s['p99_us'], 1)} |" if kind != "stream" else ""
                lines.append(f"| {t} | {fmt(s['value'], digits)} | {fmt(s['vs_direct'])} | "
                             f"{fmt(s['vs_best_peer'])} |{lat} {fmt(s.get('cpu_per_unit'), 3)} | "
                             f"{fmt(s['cpu_vs_best_peer'])} | {fmt(s.get('peak_rss_mib'), 1)} | {errors} |")
    return "\n".join(lines) + "\n"


def chart(out_dir, targets, results):
    """Two panels: throughput relative to direct per scenario, and proxy CPU per unit of work
    relative to the cheapest peer. Drawn only when gnuplot is installed."""
    if not shutil.which("gnuplot"):
        return False
    proxies = [t for t in targets if t != "direct"]
    scenarios = [s for s in results if SCENARIOS[s][0] != "hold"]
    if not proxies or not scenarios:
        return False
    data = os.path.join(out_dir, "bench-results.dat")
    with open(data, "w") as f:
        f.write("scenario " + " ".join(proxies) + " " + " ".join(p + "_cpu" for p in proxies) + "\n")
        for s in scenarios:
            row = [results[s].get(p, {}).get("vs_direct") for p in proxies]
            cpu = [results[s].get(p, {}).get("cpu_vs_best_peer") for p in proxies]
            f.write(s + " " + " ".join("NaN" if v is None else f"{v:.4f}" for v in row + cpu) + "\n")
    n = len(proxies)
    script = f"""
set terminal pngcairo noenhanced size 1200,900 font ',10'
set output '{os.path.join(out_dir, "bench-results.png")}'
set multiplot layout 2,1 title 'Ringway vs peers (median of rounds; see results.md)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside right top
set grid ytics
set yrange [0:*]
set ylabel 'throughput / direct'
set title 'Throughput relative to direct (higher is better)'
plot for [i=2:{n + 1}] '{data}' using i:xtic(1) title columnheader(i)
set ylabel 'CPU per unit / cheapest peer'
set title 'Proxy CPU seconds per GiB, 100k requests or 1k connections, relative to the cheapest peer (lower is better)'
plot for [i={n + 2}:{2 * n + 1}] '{data}' using i:xtic(1) title columnheader(i)
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
        return True
    except (OSError, subprocess.SubprocessError) as error:
        print(f"bench_report: gnuplot failed: {error}", file=sys.stderr)
        return False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    facts, targets, results = build(out_dir)
    calibration = []
    for path in sorted(glob.glob(os.path.join(out_dir, "calibration-*.json"))):
        with open(path) as f:
            calibration.append(json.load(f))
    text = markdown(facts, targets, results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "bench-results.json"), "w") as f:
        json.dump({"facts": facts, "targets": targets, "scenarios": results,
                   "calibration": calibration}, f, indent=2)
    chart(out_dir, targets, results)
    print(text)


if __name__ == "__main__":
    main()
