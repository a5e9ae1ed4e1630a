#!/bin/bash
# Gateway CPU per scrape of a filled store, gzip and plain, scrapes back to back.
#   LG=/path/ringgate-loadgen NE=/path/node-exporter-2cpu.prom bash gzs.sh GATEWAY TAG NODES SCRAPES
# Starts GATEWAY (default flags, 127.0.0.1:19873), fills it with NODES nodes (one 10 s cycle,
# 5 s jitter, no prober), then makes SCRAPES gzip scrapes and SCRAPES plain ones with curl,
# one after another, and prints the gateway's CPU time (utime + stime from /proc) and the
# wall time per scrape.
BIN=$1; TAG=$2; N=${3:-2000}; K=${4:-6}
LG=${LG:-/work/target-loadgen/release/ringgate-loadgen}; NE=${NE:-/work/shared/data/node-exporter-2cpu.prom}
TMP=$(mktemp -d)
$BIN --web.listen-address 127.0.0.1:19873 >/dev/null 2>&1 &
gw=$!; sleep 1
$LG --target 127.0.0.1:19873 --server-pid $gw --seed 1 --nodes $N --cycles 1 --cycle 10s --jitter 5s \
    --probe-interval 0 --no-final-probe --node-exporter-file $NE --out $TMP/fill.json >/dev/null 2>&1
sleep 2
cpu() { awk '{print $14+$15}' /proc/$gw/stat; }
for enc in gzip plain; do
  c0=$(cpu); t0=$(date +%s.%N)
  for i in $(seq $K); do
    if [ $enc = gzip ]; then curl -s -H 'Accept-Encoding: gzip' -o /dev/null http://127.0.0.1:19873/metrics; else curl -s -o /dev/null http://127.0.0.1:19873/metrics; fi
  done
  c1=$(cpu); t1=$(date +%s.%N)
  echo "$TAG $enc cpu/scrape $(echo "($c1-$c0)/100/$K" | bc -l | cut -c1-5) s wall/scrape $(echo "($t1-$t0)/$K" | bc -l | cut -c1-5) s"
done
kill $gw; wait $gw 2>/dev/null
rm -rf $TMP
