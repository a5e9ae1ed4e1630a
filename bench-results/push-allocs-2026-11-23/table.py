"""Prints the tables of this directory's README from the files run.sh wrote: python3 table.py OUT"""
import glob, json, os, re, sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
print("| build | pushes counted | malloc | calloc | realloc | free | allocations per push |")
print("|---|---:|---:|---:|---:|---:|---:|")
for which in ("old", "new"):
    n = json.load(open(f"{out}/allocs-{which}.json"))["successes"]
    c = {}
    for line in open(f"{out}/allocs-{which}.txt"):
        m = re.match(r"\s*([\d,]+)\s+probe_libc:(\w+)", line)
        if m:
            c[m.group(2)] = int(m.group(1).replace(",", ""))
    allocs = c["malloc"] + c["calloc"] + c["realloc"]
    print(f"| {which} | {n:,} | {c['malloc']/n:.1f} | {c['calloc']/n:.1f} | {c['realloc']/n:.2f} | "
          f"{c['free']/n:.1f} | {allocs/n:.1f} |")
print()
print("| run | pushes | pushes/s | gateway CPU per push | generator CPU per push |")
print("|---|---:|---:|---:|---:|")
def key(p):
    m = re.search(r"rate-(old|new)-(\d+)\.json$", p)
    return (int(m.group(2)), m.group(1) != "old")
for p in sorted(glob.glob(f"{out}/rate-*.json"), key=key):
    r = json.load(open(p))
    n = r["successes"]
    print(f"| {os.path.basename(p)[5:-5]} | {n:,} | {r['pushes_per_s']:,.0f} | "
          f"{r['server']['cpu_seconds']/n*1e6:.1f} µs | {r['loadgen']['cpu_seconds']/n*1e6:.1f} µs |")
