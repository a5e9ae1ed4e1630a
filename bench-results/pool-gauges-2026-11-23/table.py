#!/usr/bin/env python3
"""RSS against the pool gauges from run.sh's poll.log: python3 table.py [poll.log]"""
import re, sys

path = sys.argv[1] if len(sys.argv) > 1 else "poll.log"
rows = []
for line in open(path):
    m = re.match(r"(\d+) rss=(\d+) (.*)", line.strip())
    if not m:
        continue
    vals = {k: float(v) for k, v in re.findall(r"([a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)", m[3])}
    pools = sum(v for k, v in vals.items() if k.startswith("ringgate_buffer_pool"))
    rows.append((int(m[1]), int(m[2]), pools, vals.get("ringgate_gzip_segment_bytes", 0)))
print("| t | RSS | pools (sum of the gauges) | RSS - pools | gzip segments |")
print("|---:|---:|---:|---:|---:|")
for t, rss, pools, seg in rows:
    print(f"| {t - rows[0][0] + 30} s | {rss / 1e6:.1f} MB | {pools / 1e6:.1f} MB | {(rss - pools) / 1e6:.1f} MB | {seg / 1e6:.1f} MB |")
