import json, sys, glob, os
out = sys.argv[1]
print("| run | scrapes | GB scraped | prober CPU-s | prober CPU-s per GB | gateway CPU-s per GB |")
print("|---|---|---|---|---|---|")
for f in sorted(glob.glob(os.path.join(out, "*-*.json")), key=lambda f: (f.split('-')[-1], f)):
    r = json.load(open(f))
    pr = [p for p in r["probes"] if p.get("status") == 200]
    gb = sum(p["bytes"] for p in pr) / 1e9
    lg = r["loadgen"]["cpu_seconds"]
    sv = r["server"]["cpu_seconds"]
    name = os.path.basename(f)[:-5]
    print(f"| {name} | {len(pr)} | {gb:.2f} | {lg:.2f} | {lg/gb:.3f} | {sv/gb:.3f} |")
