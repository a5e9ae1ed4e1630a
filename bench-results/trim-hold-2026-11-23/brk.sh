#!/bin/bash
# 5,000-node stress run without perf: BIN TAG NODES
BIN=$1; TAG=$2; N=$3
LG=${LG:-/work/target-loadgen/release/ringgate-loadgen}; NE=${NE:-/work/shared/data/node-exporter-2cpu.prom}
env $ENVS $BIN --web.listen-address 127.0.0.1:19861 >$TAG.server.log 2>&1 &
PID=$!
sleep 1
$LG --target 127.0.0.1:19861 --server-pid $PID --seed 1 --nodes $N --cycle 60s --jitter 20s --cycles 2 \
    --probe-interval 10s --node-exporter-file $NE --out $TAG.json > $TAG.log 2>&1
echo "$TAG minflt $(awk "{print \$10}" /proc/$PID/stat)" >> minflt.txt; kill $PID; wait $PID 2>/dev/null
python3 - "$TAG.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
print(sys.argv[1], 'ok %d/%d' % (d['successes'], d['pushes']), 'p99 %.2f' % d['latency_s']['p99'], 'cycles', ['%.2f' % c['latency_s']['p99'] for c in d['by_cycle']], 'cpu', d['server']['cpu_seconds'], 'lg', d['loadgen']['cpu_seconds'])
PY
python3 - "$TAG.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
prev=0
print(' '.join('%d:%.1f' % (round(s['t']), s['cpu_seconds']-p) for s,p in zip(d['series'], [0]+[x['cpu_seconds'] for x in d['series']])), 'rss', '%.2f' % (d['server']['peak_rss_bytes']/1e9))
print(' '.join('%.0f%s:%.1f' % (p['t'], 'g' if p['gzip'] else 'p', p['seconds']) for p in d['probes']))
PY
