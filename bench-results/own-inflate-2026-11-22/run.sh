#!/bin/bash
# Alternating A/B of two gateway binaries (before and after the own inflater): two 60 s push
# cycles of NODES nodes with 0-20 s jitter and the prober (a scrape every 10 s, plain and gzip
# in turn, then a final scrape of each), as the showcase's breaking-point runs. Each run starts
# a fresh gateway with default flags (compression on).
#   OLD=path NEW=path run.sh NODES ROUNDS OUT
# Writes OUT/<nodes>-<old|new>-<round>/{lg.json,*.log};
# ../compressed-store-2026-11-22/table.py OUT prints the table.
# Env: LOADGEN, PORT.
set -u
N=$1; R=$2; OUT=$(realpath -m "$3")
cd "$(dirname "$0")/../.."   # the generator reads ../shared/data/ from the repository root
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19830}
for i in $(seq "$R"); do
  for v in old new; do
    if [ $v = old ]; then bin=$OLD; else bin=$NEW; fi
    dir=$OUT/$N-$v-$i; mkdir -p "$dir"
    "$bin" --web.listen-address 127.0.0.1:$PORT > "$dir/server.log" 2>&1 &
    pid=$!; sleep 1
    "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes "$N" --cycle 1m \
      --jitter 20s --cycles 2 --probe-interval 10s --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1
    kill $pid; wait $pid 2>/dev/null
    echo "$N $v round $i done"
  done
done
