#!/usr/bin/env python3
"""Prints README.md's table from the JSON reports in this directory (written by run.sh)."""
import glob
import json
import os

os.chdir(os.path.dirname(os.path.abspath(__file__)))
print("| run | pushes | pushes/s | p99 | generator CPU per push | gateway CPU per push |")
print("|---|---:|---:|---:|---:|---:|")
runs = sorted(glob.glob("*-[0-9]*.json"), key=lambda f: (int(f.rsplit("-", 1)[1].split(".")[0]), f))
for f in runs:
    d = json.load(open(f))
    n = d["successes"]
    print(f"| {f[:-5]} ({d['config']['sched']}) | {n:,} | {d['pushes_per_s']:,.0f} | "
          f"{d['latency_s']['p99'] * 1e3:.2f} ms | "
          f"{d['loadgen']['cpu_seconds'] / n * 1e6:.1f} µs | {d['server']['cpu_seconds'] / n * 1e6:.1f} µs |")
