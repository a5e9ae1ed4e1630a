#!/usr/bin/env python3
"""Prints the rows of README.md's table from the JSON reports in this directory."""
import json
import os

os.chdir(os.path.dirname(os.path.abspath(__file__)))
for f, desc in [("epoll-1-thread.json", "epoll loop, 1 thread"), ("epoll-2-threads.json", "epoll loops, 2 threads"),
                ("epoll-generator-under-perf.json", "epoll loop, 1 thread, gateway under perf")]:
    d = json.load(open(f))
    n = d["successes"]
    print(f"| {desc} | [{f}]({f}) | {n:,} | {d['pushes_per_s']:,.0f} | "
          f"{d['loadgen']['cpu_seconds'] / n * 1e6:.1f} µs | {d['server']['cpu_seconds'] / n * 1e6:.1f} µs |")
