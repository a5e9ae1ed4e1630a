#!/bin/bash
# Profile the gateway in push window 1 (2-19 s) and window 2 (62-79 s) of one 5,000-node run.
BIN=$1; TAG=$2; N=${3:-5000}
LG=${LG:-/work/target-loadgen/release/ringgate-loadgen}; NE=${NE:-/work/shared/data/node-exporter-2cpu.prom}
$BIN --web.listen-address 127.0.0.1:19861 >$TAG.server.log 2>&1 &
PID=$!
sleep 1
(sleep 2; perf record -e cpu-clock -F 499 -g -p $PID -o $TAG.w1.perf.data -- sleep 17 >/dev/null 2>&1;
 sleep 43; perf record -e cpu-clock -F 499 -g -p $PID -o $TAG.w2.perf.data -- sleep 17 >/dev/null 2>&1) &
$LG --target 127.0.0.1:19861 --server-pid $PID --seed 1 --nodes $N --cycle 60s --jitter 20s --cycles 2 \
    --probe-interval 10s --node-exporter-file $NE --out $TAG.json > $TAG.log 2>&1
wait %2 2>/dev/null
kill $PID; wait $PID 2>/dev/null
python3 - "$TAG.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
print(sys.argv[1], 'ok %d/%d' % (d['successes'], d['pushes']), 'p99 %.2f' % d['latency_s']['p99'], 'cycles', ['%.2f' % c['latency_s']['p99'] for c in d['by_cycle']], 'cpu', d['server']['cpu_seconds'], 'lg', d['loadgen']['cpu_seconds'])
prev=0
for s in d['series']:
    print(round(s['t']), s['window_pushes'], s['window_p99_s'], round(s['rss_bytes']/1e9,2), round(s['cpu_seconds']-prev,1)); prev=s['cpu_seconds']
for p in d['probes']: print(round(p['t'],1), p['gzip'], p['bytes'], round(p['seconds'],1))
PY
