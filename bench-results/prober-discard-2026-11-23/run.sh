#!/usr/bin/env bash
# CPU of the load generator's prober per GB scraped, for two loadgen builds, alternating.
#   GW=/path/ringgate OLD=/path/loadgen-old NEW=/path/loadgen-new bash run.sh ROUNDS OUT
# One gateway (2 shards, 127.0.0.1:19871) is filled with 1,000 nodes (one 10 s cycle, 5 s
# jitter, no probes), then each round runs old, then new, for one 20 s cycle of four
# nodes (20 s jitter) with a probe every 100 ms, so that scrapes run back to back,
# alternating plain and gzip:
# OUT/{old,new}-N.json. The table: python3 table.py OUT.
set -euo pipefail
ROUNDS=$1; OUT=$2
NE=${NODE_EXPORTER_FILE:-../shared/data/node-exporter-2cpu.prom}
mkdir -p "$OUT"
"$GW" --web.listen-address 127.0.0.1:19871 >"$OUT/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null' EXIT
sleep 1
"$NEW" --target 127.0.0.1:19871 --server-pid $gw --seed 1 --nodes 1000 --cycles 1 --cycle 10s --jitter 5s \
    --probe-interval 0 --no-final-probe --node-exporter-file "$NE" --out "$OUT/fill.json" >/dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        lg=$OLD; [ "$which" = new ] && lg=$NEW
        "$lg" --target 127.0.0.1:19871 --server-pid $gw --seed 1 --nodes 4 --cycles 1 --cycle 20s --jitter 20s \
            --probe-interval 100ms --no-final-probe --node-exporter-file "$NE" --out "$OUT/$which-$r.json" >/dev/null 2>&1
    done
done
