#!/bin/bash
# usage: spike.sh BINARY OUT.json [extra ringgate flags]
BIN=$1; OUT=$2; shift 2
cd /work/main
pkill -f "ringgate --web.listen-address 127.0.0.1:1980" ; sleep 0.5
$BIN --web.listen-address 127.0.0.1:19800 "$@" >/tmp/spike-server.log 2>&1 &
sleep 1
P=$!
( while kill -0 $P 2>/dev/null; do echo "$(date +%s.%N | cut -c1-14) $(awk '/VmRSS/{print $2}' /proc/$P/status)"; sleep 0.25; done ) > /tmp/spike-rss.txt &
/work/target-loadgen/release/ringgate-loadgen --target 127.0.0.1:19800 --server-pid $P --seed 1 --nodes 1000 --cycle 1m --jitter 0s --cycles 2 --probe-interval 10s --out $OUT > /tmp/spike-lg.log 2>&1
curl -s 127.0.0.1:19800/metrics | grep -E "^ringgate_(store_bytes|heap_trim|gzip_segment_bytes|push_budget)" 
kill $P; wait $P 2>/dev/null
python3 - "$OUT" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
s=d['server']; l=d['latency_s']
print('success',d['success_rate'],'p99',l.get('p99'),'max',l.get('max'))
print('peak_rss',s['peak_rss_bytes']/1e9,'hwm',s['vm_hwm_bytes']/1e9,'end',s['rss_end_bytes']/1e9,'cpu',s['cpu_seconds'])
for p in d['probes']: print(' probe t=%.0f gzip=%s %.2fs %d'%(p['t'],p['gzip'],p['seconds'],p['bytes']))
for x in d['series']: print(' t=%.0f rss=%.2f p99=%s'%(x['t'],x['rss_bytes']/1e9,x['window_p99_s']))
PY
