#!/bin/bash
# usage: run.sh BIN NODES OUTDIR [ringgate flags]
BIN=$1; N=$2; OUT=$3; shift 3
mkdir -p $OUT
cd /work/main
pkill -f "ringgate --web.listen-address 127.0.0.1:1981"; sleep 0.5
$BIN --web.listen-address 127.0.0.1:19810 "$@" >$OUT/server.log 2>&1 &
P=$!
sleep 1
/work/target-loadgen/release/ringgate-loadgen --target 127.0.0.1:19810 --server-pid $P --seed 1 --nodes $N --cycle 1m --jitter 20s --cycles 2 --probe-interval 10s --out $OUT/lg.json > $OUT/lg.log 2>&1 &
L=$!
if [ -n "$PERF" ]; then sleep 62; perf record -e cpu-clock -F 499 ${PERFG:--g} -p $P -o $OUT/perf.data -- sleep ${PERFT:-58} >/dev/null 2>&1; fi
wait $L
kill $P; wait $P 2>/dev/null
python3 - "$OUT/lg.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
s=d['server']; l=d['latency_s']
print('success',d['success_rate'],'p50',l.get('p50'),'p99',l.get('p99'),'max',l.get('max'))
print('peak_rss',s['peak_rss_bytes']/1e9,'cpu',s['cpu_seconds'], 'lg cpu', d.get('loadgen',{}).get('cpu_seconds'))
for p in d['probes']: print(' probe t=%.0f gzip=%s %.2fs %d'%(p['t'],p['gzip'],p['seconds'],p['bytes']))
PY
