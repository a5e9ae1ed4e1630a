#!/bin/bash
# Back-to-back runs of two gateway builds at 2,000 nodes (2 cycles of 60 s, 20 s jitter,
# prober every 10 s), alternating A B A B, each on a fresh gateway. Writes <label>-<n>.json.
# usage: bash ab.sh BIN_A LABEL_A BIN_B LABEL_B [ROUNDS]
set -u
A=$1; LA=$2; B=$3; LB=$4; ROUNDS=${5:-2}
DIR=$(cd "$(dirname "$0")" && pwd)
cd "$DIR/../.."
run() { # BIN OUT
    "$1" --web.listen-address 127.0.0.1:19830 >/dev/null 2>&1 &
    local p=$!
    sleep 1
    /work/target-loadgen/release/ringgate-loadgen --target 127.0.0.1:19830 --server-pid $p --seed 1 \
        --nodes 2000 --cycle 1m --jitter 20s --cycles 2 --probe-interval 10s --out "$2" >/dev/null 2>&1
    kill $p; wait $p 2>/dev/null
}
for i in $(seq 1 "$ROUNDS"); do
    run "$A" "$DIR/$LA-$i.json"
    run "$B" "$DIR/$LB-$i.json"
done
python3 "$DIR/table.py"
