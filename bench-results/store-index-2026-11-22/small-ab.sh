#!/bin/bash
# Alternating A/B of two gateway builds in the small-push rate test, one push in flight per
# connection (the showcase's `small` scenario, 8 s instead of 10): per run a fresh gateway with
# default flags, then `ringgate-loadgen --mode small --duration 8s` against it. Writes
# OUT/<tag>-<round>.json and prints a line per run.
# Usage (from anywhere): small-ab.sh ROUNDS OUT TAG1 BIN1 TAG2 BIN2 (FIRST=K numbers rounds from K)
set -u
R=$1; OUT=$(realpath -m "$2"); shift 2
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19510}
TAGS=("$1" "$3"); BINS=("$2" "$4")
mkdir -p "$OUT"
for i in $(seq "${FIRST:-1}" $((${FIRST:-1} + R - 1))); do
  for k in 0 1; do
    tag=${TAGS[$k]}; bin=${BINS[$k]}
    "$bin" --web.listen-address 127.0.0.1:$PORT --log.level warn > /dev/null 2>&1 &
    pid=$!; sleep 1
    "$LOADGEN" --target 127.0.0.1:$PORT --mode small --duration 8s --probe-interval 0 --no-final-probe \
      --server-pid $pid --out "$OUT/$tag-$i.json" > /dev/null 2>&1
    kill $pid; wait $pid 2>/dev/null
    python3 - "$OUT/$tag-$i.json" "$tag" "$i" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = d['successes']
print(f"| {sys.argv[3]} | {sys.argv[2]} | {d['pushes_per_s']:,.0f} | {d['server']['cpu_seconds'] / n * 1e6:.2f} µs | {d['loadgen']['cpu_seconds'] / n * 1e6:.2f} µs |")
PY
  done
done
