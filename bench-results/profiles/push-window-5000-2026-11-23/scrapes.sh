#!/usr/bin/env bash
# The gateway's profile while a 1,000-node store is scraped back to back, without pushes.
#   LG=/path/ringgate-loadgen NE=/path/node-exporter-2cpu.prom bash scrapes.sh GATEWAY OUT
# Fills GATEWAY (default flags, 127.0.0.1:19872) with 1,000 nodes (one 10 s cycle, 5 s
# jitter), then records it with `perf record -e cpu-clock -F 999 -g` while the generator runs
# one 20 s cycle of four nodes with a probe every 100 ms (scrapes back to back, alternating
# plain and gzip). OUT/probe.json is that run's report; the symbol table here came from
#   perf report -i OUT/perf.data --no-children --sort sym -g none --percent-limit 0.2
set -euo pipefail
GW=$1; OUT=$2
LG=${LG:-/work/target-loadgen/release/ringgate-loadgen}; NE=${NE:-/work/shared/data/node-exporter-2cpu.prom}
mkdir -p $OUT
"$GW" --web.listen-address 127.0.0.1:19872 >"$OUT/gateway.log" 2>&1 &
gw=$!
sleep 1
$LG --target 127.0.0.1:19872 --server-pid $gw --seed 1 --nodes 1000 --cycles 1 --cycle 10s --jitter 5s \
    --probe-interval 0 --no-final-probe --node-exporter-file "$NE" --out "$OUT/fill.json" >/dev/null 2>&1
perf record -e cpu-clock -F 999 -g -p $gw -o $OUT/perf.data 2>/dev/null >/dev/null &
pp=$!
$LG --target 127.0.0.1:19872 --server-pid $gw --seed 1 --nodes 4 --cycles 1 --cycle 20s --jitter 20s \
    --probe-interval 100ms --no-final-probe --node-exporter-file "$NE" --out "$OUT/probe.json" >/dev/null 2>&1
kill -INT $pp; wait $pp || true
kill $gw; wait $gw || true
