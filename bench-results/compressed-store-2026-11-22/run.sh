#!/bin/bash
# Alternating A/B of --store.compression off and on on one gateway binary: two 60 s push
# cycles of NODES nodes with 0-20 s jitter and the prober (a scrape every 10 s, plain and gzip
# in turn), as the showcase's breaking-point runs. Each run starts a fresh gateway.
#   run.sh NODES ROUNDS OUT
# Writes OUT/<nodes>-<off|on>-<round>/{lg.json,*.log}; table.py prints the table.
# Env: BIN (default /work/target-rel/release/ringgate), LOADGEN, PORT.
set -u
N=$1; R=$2; OUT=$(realpath -m "$3")
cd "$(dirname "$0")/../.."   # the generator reads ../shared/data/ from the repository root
BIN=${BIN:-/work/target-rel/release/ringgate}
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19820}
for i in $(seq "$R"); do
  for comp in off on; do
    dir=$OUT/$N-$comp-$i; mkdir -p "$dir"
    "$BIN" --web.listen-address 127.0.0.1:$PORT --store.compression $comp > "$dir/server.log" 2>&1 &
    pid=$!; sleep 1
    "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes "$N" --cycle 1m \
      --jitter 20s --cycles 2 --probe-interval 10s --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1
    kill $pid; wait $pid 2>/dev/null
    echo "$N $comp round $i done"
  done
done
