#!/usr/bin/env python3
"""Prints the A/B table of run.sh's reports: python3 table.py DIR..."""
import glob, json, os, sys

print("| run | pushes ok | p99 | p99 cycle 1 | p99 cycle 2 | max | peak RSS | gateway CPU | plain scrapes (s) | gzip scrapes (s) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for d in sys.argv[1:]:
    for f in sorted(glob.glob(os.path.join(d, "*", "lg.json"))):
        r = json.load(open(f))
        cyc = [c["latency_s"]["p99"] for c in r["by_cycle"]]
        plain = [f"{p['seconds']:.1f}" for p in r["probes"] if not p["gzip"] and p["status"] == 200]
        gz = [f"{p['seconds']:.1f}" for p in r["probes"] if p["gzip"] and p["status"] == 200]
        print(f"| {os.path.basename(os.path.dirname(f))} | {r['successes']}/{r['pushes']} | {r['latency_s']['p99']:.2f} s "
              f"| {cyc[0]:.2f} s | {cyc[1]:.2f} s | {r['latency_s']['max']:.2f} s | {r['server']['peak_rss_bytes'] / 1e9:.2f} GB "
              f"| {r['server']['cpu_seconds']:.1f} s | {' '.join(plain)} | {' '.join(gz)} |")
