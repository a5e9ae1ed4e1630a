#!/bin/bash
# The gateway's profile in the second push window at NODES nodes, with the prober.
#   LG=/path/ringgate-loadgen NE=/path/node-exporter-2cpu.prom bash window.sh GATEWAY TAG NODES
# Starts GATEWAY (default flags, 127.0.0.1:19861), runs the stress test (2 cycles of 60 s,
# 20 s jitter, a probe every 10 s, seed 1) and records the gateway with
# `perf record -e cpu-clock -F 499` from 61 s to 80 s after the start (the second window).
# Writes TAG.json (the generator's report) and TAG.perf.data; the symbol table here came from
#   perf report -i TAG.perf.data --no-children --sort sym -g none --percent-limit 0.2
BIN=$1; TAG=$2; N=$3
LG=${LG:-/work/target-loadgen/release/ringgate-loadgen}; NE=${NE:-/work/shared/data/node-exporter-2cpu.prom}
$BIN --web.listen-address 127.0.0.1:19861 >$TAG.server.log 2>&1 &
PID=$!
sleep 1
(sleep 61; perf record -e cpu-clock -F 499 -p $PID -o $TAG.perf.data -- sleep 19 >/dev/null 2>&1) &
$LG --target 127.0.0.1:19861 --server-pid $PID --seed 1 --nodes $N --cycle 60s --jitter 20s --cycles 2 \
    --probe-interval 10s --node-exporter-file $NE --out $TAG.json > $TAG.log 2>&1
wait %2 2>/dev/null
kill $PID; wait $PID 2>/dev/null
