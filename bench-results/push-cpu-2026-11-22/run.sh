#!/bin/bash
# Alternating A/B of two gateway builds at N nodes without the prober: per run, a fresh
# gateway, `ringgate-loadgen --nodes N --cycle 1m --jitter 20s --cycles 2 --probe-interval 0`,
# and `perf stat -e page-faults,task-clock` on the gateway over the second push window
# (61-83 s). Writes OUT/<tag>-<round>/{lg.json,stat.txt}; table.py prints the table.
# PROBE=10s runs the prober as the showcase does (a scrape every 10 s, plain and gzip in turn).
# Usage (from anywhere; OUT is made absolute): run.sh NODES ROUNDS OUT TAG1 BIN1 TAG2 BIN2
set -u
N=$1; R=$2; OUT=$(realpath -m "$3"); shift 3
# The load generator reads ../shared/data/ relative to the repository root.
cd "$(dirname "$0")/../.."
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19810}
TAGS=("$1" "$3"); BINS=("$2" "$4")
for i in $(seq "$R"); do
  for k in 0 1; do
    tag=${TAGS[$k]}; bin=${BINS[$k]}
    dir=$OUT/$tag-$i; mkdir -p "$dir"
    "$bin" --web.listen-address 127.0.0.1:$PORT > "$dir/server.log" 2>&1 &
    pid=$!; sleep 1
    "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes "$N" --cycle 1m \
      --jitter 20s --cycles 2 --probe-interval ${PROBE:-0} --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1 &
    lg=$!
    sleep 61; perf stat -e page-faults,task-clock -p $pid -o "$dir/stat.txt" -- sleep 22 > /dev/null 2>&1
    wait $lg; kill $pid; wait $pid 2>/dev/null
    echo "$tag round $i done"
  done
done
