#!/usr/bin/env python3
# Writes README.md from the three JSON reports beside it: python3 table.py (from this directory
# or anywhere). Figures come from the files; nothing is typed by hand.
import datetime, json, os
here = os.path.dirname(os.path.abspath(__file__))
runs = [
    ("before.json", "0226475: one copy of each family name, HELP text and grouping key per group and family", ""),
    ("after.json", "83453df (0226475 + interning; built from the working tree before it was committed)", ""),
    ("after-in-flight-16MiB.json", "the same binary with --push.max-in-flight 16MiB", "--push.max-in-flight 16MiB"),
]
rows = []
for name, what, flags in runs:
    d = json.load(open(os.path.join(here, name)))
    s, l = d["server"], d["latency_s"]
    store = max(p["bytes"] for p in d["probes"] if not p["gzip"])
    gz = max(p["seconds"] for p in d["probes"] if p["gzip"])
    when = datetime.datetime.fromtimestamp(d["started_unix"], datetime.timezone.utc)
    rows.append(f"| [{name}]({name}) | {what} | {when:%Y-%m-%d %H:%M} UTC | {d['success_rate'] * 100:.1f} % | "
                f"{l['p99']:.2f} s | {l['max']:.2f} s | {s['peak_rss_bytes'] / 1e9:.3f} GB | {s['vm_hwm_bytes'] / 1e9:.3f} GB | "
                f"{s['peak_rss_bytes'] / store:.3f}x of {store / 1e9:.2f} GB | {s['rss_end_bytes'] / 1e9:.3f} GB | "
                f"{gz:.2f} s | {s['cpu_seconds']:.1f} s |")
with open(os.path.join(here, "README.md"), "w") as f:
    f.write("""# The 1,000-node spike before and after sharing names, HELP texts and grouping keys

Each push used to leave, for every family of the group, its own heap copy of the family name
(twice: in the family and as the group's map key), of the HELP text, and of the grouping key
(in the scrape index). At 1,000 nodes that is about 2.9 million small allocations, for the same
few hundred strings. The store now interns them (`src/store.rs`, `Interner`) and the grouping
key is reference-counted (`src/grouping.rs`).

Command, run back to back on this machine (`machine.txt`) with the release builds of the two
commits, from the repository root:

```
bash bench-results/spike-interning-2026-11-22/spike.sh /work/target-base/release/ringgate /tmp/spike-base.json
bash bench-results/spike-interning-2026-11-22/spike.sh /work/target-rel/release/ringgate /tmp/spike-intern.json
bash bench-results/spike-interning-2026-11-22/spike.sh /work/target-rel/release/ringgate /tmp/spike-intern16.json --push.max-in-flight 16MiB
```

`spike.sh` starts the gateway and runs the load generator's 1,000-node spike (jitter 0, two
60 s cycles, the prober scraping every 10 s, alternating plain and gzip); the JSON reports were
then copied here. The table is written by `python3 table.py` from them.

| report | build | run | success | p99 | max | peak RSS | VmHWM | peak RSS / store | RSS at the end | slowest gzip scrape | server CPU |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
""")
    f.write("\n".join(rows) + "\n")
    f.write("""
Halving `--push.max-in-flight` made no difference beyond the run-to-run noise, so the default
stays at 32MiB.
""")
