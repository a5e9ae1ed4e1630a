#!/bin/bash
# Alternating A/B of --http.connection-steering hash and cpu on one gateway binary.
#   run.sh small ROUNDS OUT          10 s of ~100-byte PUTs, one in flight per connection
#                                    (the showcase's one-at-a-time small-push run)
#   run.sh stress NODES ROUNDS OUT   two 60 s push cycles with 0-20 s jitter and the prober
#                                    (a scrape every 10 s, plain and gzip in turn), as the
#                                    showcase's breaking-point runs
# Each run: a fresh gateway, the generator, then the gateway's per-shard accept counts.
# Writes OUT/<mode>-<steering>-<round>/{lg.json,accepted.txt,*.log}; table.py prints the table.
# Env: BIN (default /work/target-rel/release/ringgate), LOADGEN, PORT.
set -u
MODE=$1; shift
if [ "$MODE" = stress ]; then N=$1; shift; fi
R=$1; OUT=$(realpath -m "$2")
cd "$(dirname "$0")/../.."   # the generator reads ../shared/data/ from the repository root
BIN=${BIN:-/work/target-rel/release/ringgate}
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19820}
for i in $(seq "$R"); do
  for steer in hash cpu; do
    dir=$OUT/$MODE-$steer-$i; mkdir -p "$dir"
    "$BIN" --web.listen-address 127.0.0.1:$PORT --http.connection-steering $steer > "$dir/server.log" 2>&1 &
    pid=$!; sleep 1
    if [ "$MODE" = small ]; then
      "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --mode small --duration 10s \
        --probe-interval 0 --no-final-probe --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1
    else
      "$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes "$N" --cycle 1m \
        --jitter 20s --cycles 2 --probe-interval 10s --out "$dir/lg.json" > "$dir/loadgen.log" 2>&1
    fi
    curl -s 127.0.0.1:$PORT/metrics | grep -E '^ringgate_(connections_accepted_total|connection_steering)' > "$dir/accepted.txt"
    kill $pid; wait $pid 2>/dev/null
    echo "$MODE $steer round $i done"
  done
done
