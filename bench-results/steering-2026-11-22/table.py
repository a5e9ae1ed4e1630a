#!/usr/bin/env python3
"""Prints the A/B table of run.sh's reports: python3 table.py DIR (a run.sh OUT directory)."""
import json, os, re, sys

root = sys.argv[1]
rows = []
for name in sorted(os.listdir(root), key=lambda n: (n.split('-')[-1].zfill(3), n)):
    path = os.path.join(root, name, 'lg.json')
    if not os.path.exists(path):
        continue
    d = json.load(open(path))
    acc = open(os.path.join(root, name, 'accepted.txt')).read()
    split = [int(v) for v in re.findall(r'^ringgate_connections_accepted_total\{shard="\d+"\} (\d+)', acc, re.M)]
    steer = [int(v) for v in re.findall(r'^ringgate_connection_steering\{shard="\d+"\} (\d+)', acc, re.M)]
    ok = d['successes']
    cells = [name, f"{d['success_rate']:.4f}"]
    if d['mode'] == 'small':
        cells += [f"{d['pushes_per_s']:,.0f}", f"{d['server']['cpu_seconds'] / ok * 1e6:.2f}",
                  f"{d['loadgen']['cpu_seconds'] / ok * 1e6:.2f}"]
    else:
        cyc = d.get('by_cycle') or []
        cells += [f"{d['latency_s']['p99']:.3f}"] + [f"{c['latency_s']['p99']:.3f}" for c in cyc[:2]]
        cells += [f"{d['latency_s']['max']:.2f}", f"{d['server']['cpu_seconds']:.1f}",
                  f"{d['server']['peak_rss_bytes'] / 1e9:.2f}"]
    cells += ['/'.join(map(str, split)), '/'.join(map(str, steer))]
    rows.append((d['mode'], cells))
heads = {
    'small': ['run', 'success', 'pushes/s', 'gateway CPU µs/push', 'generator CPU µs/push'],
    'stress': ['run', 'success', 'p99 s', 'p99 cycle 1', 'p99 cycle 2', 'max s', 'gateway CPU s', 'peak RSS GB'],
}
mode = rows[0][0] if rows else 'small'
head = heads[mode] + ['accepted per shard', 'steering per shard at the end']
print('| ' + ' | '.join(head) + ' |')
print('|' + '---|' * len(head))
for _, cells in rows:
    print('| ' + ' | '.join(cells) + ' |')
