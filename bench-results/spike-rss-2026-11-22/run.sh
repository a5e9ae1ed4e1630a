#!/bin/bash
# Alternating A/B of two gateway builds in the showcase's spike scenario: per run, a fresh
# gateway and `ringgate-loadgen --nodes N --cycle 1m --jitter 0 --cycles 2 --probe-interval 10s`
# (the prober scrapes every 10 s, plain and gzip in turn). Writes OUT/<tag>-<round>/lg.json;
# table.py prints peak RSS against the stored exposition.
# Usage (from anywhere; OUT is made absolute): run.sh NODES ROUNDS OUT TAG1 BIN1 TAG2 BIN2
set -u
N=$1; R=$2; OUT=$(realpath -m "$3"); shift 3
cd "$(dirname "$0")/../.."
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19811}
TAGS=("$1" "$3"); BINS=("$2" "$4")
for i in $(seq "$R"); do
  for k in 0 1; do
    tag=${TAGS[$k]}; bin=${BINS[$k]}
    dir=$OUT/$tag-$i; mkdir -p "$dir"
    "$bin" --web.listen-address 127.0.0.1:$PORT > "$dir/server.log" 2>&1 &
    pid=$!; sleep 1
    "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes "$N" --cycle 1m \
      --jitter 0 --cycles 2 --probe-interval 10s --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1
    kill $pid; wait $pid 2>/dev/null
    echo "$tag round $i done"
  done
done
