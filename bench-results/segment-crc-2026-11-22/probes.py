"""Prints the prober's scrapes of each run in runs/ as a table: python3 probes.py"""
import glob, json, os

here = os.path.dirname(os.path.abspath(__file__))
runs = sorted(glob.glob(os.path.join(here, "runs", "*-*")), key=lambda d: (d.rsplit("-", 1)[1], d))
print("| run | " + " | ".join(f"t≈{t} s" for t in range(10, 100, 10)) + " |")
print("|---|" + "---:|" * 9)
for d in runs:
    r = json.load(open(os.path.join(d, "lg.json")))
    cells = []
    for p in r["probes"][:9]:
        kind = "gzip" if p["gzip"] else "plain"
        cells.append(f"{kind} {p['seconds']:.2f} s" if p["status"] == 200 else f"{kind} {p['status']}")
    print(f"| {os.path.basename(d)} | " + " | ".join(cells) + " |")
