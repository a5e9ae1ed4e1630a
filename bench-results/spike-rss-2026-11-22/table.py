"""Prints peak RSS against the stored exposition for the runs in runs/: python3 table.py"""
import glob, json, os

here = os.path.dirname(os.path.abspath(__file__))
print("| round | build | success | max latency | peak RSS | stored exposition (final plain scrape) | ratio | gateway CPU |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
rows = []
for d in glob.glob(os.path.join(here, "runs", "*-*")):
    tag, rnd = os.path.basename(d).rsplit("-", 1)
    r = json.load(open(os.path.join(d, "lg.json")))
    store = max(p["bytes"] for p in r["probes"] if not p["gzip"] and p["status"] == 200)
    rss = r["server"]["peak_rss_bytes"]
    rows.append((int(rnd), tag, r["success_rate"], r["latency_s"]["max"], rss, store, r["server"]["cpu_seconds"]))
for rnd, tag, ok, mx, rss, store, cpu in sorted(rows):
    print(f"| {rnd} | {tag} | {100 * ok:.1f} % | {mx:.2f} s | {rss / 1e9:.2f} GB | {store / 1e9:.2f} GB | {rss / store:.3f}x | {cpu:.1f} s |")
