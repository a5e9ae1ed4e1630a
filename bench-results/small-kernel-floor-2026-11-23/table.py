"""Microseconds of CPU per small push, by side and by kernel or user space, from run.sh's files.

The samples of `perf record -a` cover the whole 4.5 s window (idle included); the pushes are
those of the 4 s run inside it, so the figures per push are a little high, the same for
every part. "floor" is the rate two CPUs would reach if user space cost nothing: 2 s of CPU
per second divided by the kernel time per push of both sides together.
"""
import glob, json, os, re, sys

out = sys.argv[1]
print("| round | pushes/s | gateway kernel µs | gateway user µs | generator kernel µs | generator user µs | idle µs | floor pushes/s |")
print("|---|---|---|---|---|---|---|---|")
for txt in sorted(glob.glob(os.path.join(out, "round-*.txt"))):
    n = os.path.basename(txt)[6:-4]
    rep = json.load(open(os.path.join(out, f"round-{n}.json")))
    pushes = rep["successes"]
    total = None
    parts = {}
    for line in open(txt):
        m = re.match(r"# Event count \(approx\.\): (\d+)", line)
        if m:
            total = int(m.group(1)) / 1e9  # cpu-clock counts nanoseconds
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+(\S+)", line)
        if m:
            pct, comm, dso = float(m.group(1)), m.group(2), m.group(3)
            side = "gw" if comm.startswith("ringgate-shard") else "lg" if comm.startswith("small-loop") else \
                "idle" if comm == "swapper" else "other"
            space = "k" if dso == "[kernel.kallsyms]" else "u"
            parts[(side, space)] = parts.get((side, space), 0) + pct / 100
    us = lambda side, space: parts.get((side, space), 0) * total / pushes * 1e6
    kern = us("gw", "k") + us("lg", "k")
    rate = rep["pushes_per_s"]
    idle = us("idle", "k") + us("idle", "u")
    print(f"| {n} | {rate:,.0f} | {us('gw','k'):.1f} | {us('gw','u'):.1f} | {us('lg','k'):.1f} | {us('lg','u'):.1f} | {idle:.1f} | {2e6/kern:,.0f} |")
