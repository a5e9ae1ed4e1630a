"""Prints the table of README.md from the JSON reports in this directory."""
import glob, json, os
here = os.path.dirname(os.path.abspath(__file__))
print("| run | pushes ok | p50 | p99 | max | gateway CPU | load generator CPU | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for f in sorted(glob.glob(os.path.join(here, "*.json")), key=lambda p: (os.path.basename(p).split("-")[-1], p)):
    d = json.load(open(f))
    l, s = d["latency_s"], d["server"]
    print(f"| {os.path.basename(f)[:-5]} | {d['successes']:,}/{d['pushes']:,} | {l['p50']*1e3:.1f} ms | {l['p99']*1e3:.1f} ms "
          f"| {l['max']*1e3:.0f} ms | {s['cpu_seconds']:.1f} s | {d['loadgen']['cpu_seconds']:.1f} s | {s['peak_rss_bytes']/1e9:.2f} GB |")
