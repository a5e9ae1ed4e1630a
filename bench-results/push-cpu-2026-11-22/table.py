"""Prints a table of README.md from the runs in one directory here: python3 table.py [runs|probe-runs]."""
import glob, json, os, re, sys

here = os.path.dirname(os.path.abspath(__file__))
rows = []
for d in sorted(glob.glob(os.path.join(here, sys.argv[1] if len(sys.argv) > 1 else 'runs', '*-*'))):
    tag, rnd = os.path.basename(d).rsplit('-', 1)
    r = json.load(open(os.path.join(d, 'lg.json')))
    cpu = [w['cpu_seconds'] for w in r['series']]
    t = [w['t'] for w in r['series']]
    # Windows of 10 s: the first push window is 0-20 s (and its tail), the second 60-80 s.
    at = lambda s: max(c for tt, c in zip(t, cpu) if tt <= s + 0.5)
    first, second = at(30), at(80) - at(50)
    stat = open(os.path.join(d, 'stat.txt')).read()
    pf = int(re.search(r'([\d,]+)\s+page-faults', stat).group(1).replace(',', ''))
    rows.append((int(rnd), tag, r['success_rate'], r['latency_s']['p99'], first, second, pf,
                 r['server']['peak_rss_bytes']))
rows.sort()
print('| round | build | success | p99 | gateway CPU, cycle 1 (0-30 s) | gateway CPU, cycle 2 (50-80 s) | page faults, 61-83 s | peak RSS |')
print('|---:|---|---:|---:|---:|---:|---:|---:|')
for rnd, tag, ok, p99, a, b, pf, rss in rows:
    print(f'| {rnd} | {tag} | {100*ok:.1f} % | {p99*1000:.0f} ms | {a:.2f} s | {b:.2f} s | {pf:,} | {rss/1e9:.2f} GB |')
