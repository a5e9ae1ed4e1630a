#!/usr/bin/env bash
# Where the CPU of a small push goes, gateway and generator together, kernel and user space.
#
#   GW=/path/ringgate LG=/path/ringgate-loadgen bash run.sh ROUNDS OUT
#
# Each round starts the gateway afresh (default flags: 2 shards, 127.0.0.1:19881), fills it
# with a 2 s small-push run (so that the measured pushes replace existing groups, as in the
# showcase), then records every CPU with `perf record -a -e cpu-clock` (999 Hz) during a 4 s
# small-push run, one push at a time per connection (the showcase's small-push settings):
# OUT/round-N.json (the generator's report) and OUT/round-N.txt (`perf report --sort
# comm,dso`). The table: python3 table.py OUT.
set -euo pipefail
ROUNDS=$1; OUT=$2
mkdir -p "$OUT"
small() { # PID SECONDS OUTFILE
    "$LG" --target 127.0.0.1:19881 --server-pid "$1" --seed 1 --mode small --duration "$2" \
        --probe-interval 0 --no-final-probe --out "$3" >/dev/null 2>&1
}
for r in $(seq 1 "$ROUNDS"); do
    "$GW" --web.listen-address 127.0.0.1:19881 >/dev/null 2>&1 &
    gw=$!
    sleep 1
    small $gw 2s "$OUT/fill-$r.json"
    perf record -a -e cpu-clock -F 999 -o "$OUT/perf-$r.data" -- sleep 4.5 >/dev/null 2>&1 &
    pp=$!
    sleep 0.2
    small $gw 4s "$OUT/round-$r.json"
    wait $pp
    kill $gw; wait $gw || true
    perf report -i "$OUT/perf-$r.data" --no-children --sort comm,dso -g none 2>/dev/null >"$OUT/round-$r.txt"
    rm -f "$OUT/perf-$r.data" "$OUT/fill-$r.json"
done
