#!/bin/bash
# Small pushes (one in flight per connection, 64 connections, 10 s) against one gateway
# build, alternating the generator's event loops between SCHED_BATCH and SCHED_OTHER
# (`--small-sched batch|normal`), each run on a fresh gateway. Writes <sched>-<n>.json and
# prints the table of README.md.
# usage: bash run.sh GATEWAY_BIN [ROUNDS]   (loadgen from /work/target-loadgen)
set -u
BIN=$1; ROUNDS=${2:-3}
DIR=$(cd "$(dirname "$0")" && pwd)
LG=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
run() { # SCHED OUT
    "$BIN" --web.listen-address 127.0.0.1:19840 >/dev/null 2>&1 &
    local p=$!
    sleep 1
    "$LG" --target 127.0.0.1:19840 --server-pid $p --seed 1 --mode small --duration 10s \
        --probe-interval 0 --no-final-probe --small-sched "$1" --out "$2" >/dev/null 2>&1
    kill $p; wait $p 2>/dev/null
}
{ date -u +%FT%TZ; uname -r; nproc; grep -m1 "model name" /proc/cpuinfo; } > "$DIR/machine.txt"
for i in $(seq 1 "$ROUNDS"); do
    run batch "$DIR/batch-$i.json"
    run normal "$DIR/normal-$i.json"
done
python3 "$DIR/table.py"
