#!/usr/bin/env bash
# Allocations per small push, and the small-push rate, for two gateway builds.
#
#   OLD=/path/ringgate-old NEW=/path/ringgate-new bash run.sh ROUNDS OUT
#
# 1. Allocations: each build is started afresh (2 shards, 127.0.0.1:19851), filled by a 3 s
#    small-push run (so that the counted pushes replace existing groups, as in the rate test),
#    then `perf stat` counts glibc's malloc/calloc/realloc/free (uprobes; `perf probe -x libc
#    -a malloc ...`, as root; removed again before step 2) over a 4 s small-push run. Uprobes slow the gateway to a few
#    thousand pushes/s: these runs count, they do not time. Writes OUT/allocs-{old,new}.txt
#    (perf's output) and OUT/allocs-{old,new}.json (the load generator's report).
# 2. Rate: ROUNDS rounds of 10 s small-push runs, old then new, each on a fresh gateway
#    (127.0.0.1:19850): OUT/rate-{old,new}-N.json.
# The table: python3 table.py OUT.
set -euo pipefail
ROUNDS=$1; OUT=$2
LG=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
mkdir -p "$OUT"
perf probe -l 2>/dev/null | grep -q probe_libc:malloc || \
    perf probe -x /lib/x86_64-linux-gnu/libc.so.6 -a malloc -a free -a calloc -a realloc >/dev/null 2>&1

small() { # PORT PID SECONDS OUTFILE
    "$LG" --target "127.0.0.1:$1" --server-pid "$2" --seed 1 --mode small --duration "$3" \
        --probe-interval 0 --no-final-probe --out "$4" >/dev/null 2>&1
}

for which in old new; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    "$bin" --web.listen-address 127.0.0.1:19851 >/dev/null 2>&1 &
    pid=$!
    sleep 1
    small 19851 $pid 3s "$OUT/fill-$which.json"
    perf stat -e probe_libc:malloc,probe_libc:calloc,probe_libc:realloc,probe_libc:free \
        -p $pid -o "$OUT/allocs-$which.txt" &
    pp=$!
    sleep 0.5
    small 19851 $pid 4s "$OUT/allocs-$which.json"
    sleep 0.5
    kill -INT $pp; wait $pp || true
    kill $pid; wait $pid || true
done

perf probe -d 'probe_libc:*' >/dev/null 2>&1 || true

for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        bin=$OLD; [ "$which" = new ] && bin=$NEW
        "$bin" --web.listen-address 127.0.0.1:19850 >/dev/null 2>&1 &
        pid=$!
        sleep 1
        small 19850 $pid 10s "$OUT/rate-$which-$r.json"
        kill $pid; wait $pid || true
    done
done
