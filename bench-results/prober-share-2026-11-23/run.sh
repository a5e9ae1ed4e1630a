#!/bin/bash
# One 5,000-node run of gateway BIN (default flags): two 60 s push cycles with 0-20 s jitter,
# with the prober (a scrape every 10 s, plain and gzip in turn; PROBE=10s, the default) or
# without it (PROBE=0). threads.py samples every second the CPU of each gateway thread, of the
# generator, and the machine's steal and softirq time.
#   run.sh BIN OUT [PROBE]
# With PERF=1 it also records the gateway with perf over the second push window (t=59-80 s)
# into OUT/perf.data.
set -u
BIN=$1; OUT=$(realpath -m "$2"); PROBE=${3:-10s}
HERE=$(cd "$(dirname "$0")" && pwd)
LOADGEN=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19830}
mkdir -p "$OUT"
cd "$HERE/../.."   # the generator reads ../shared/data/ from the repository root
"$BIN" --web.listen-address 127.0.0.1:$PORT > "$OUT/server.log" 2>&1 & pid=$!
sleep 1
python3 "$HERE/threads.py" $pid "$OUT/threads.txt" & spid=$!
if [ "${PERF:-0}" = 1 ]; then
  ( sleep 59; perf record -F 499 -g -p $pid -o "$OUT/perf.data" -- sleep 21 > "$OUT/perf.log" 2>&1 ) & perfpid=$!
fi
"$LOADGEN" --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes 5000 --cycle 1m --jitter 20s \
  --cycles 2 --probe-interval "$PROBE" --out "$OUT/lg.json" > "$OUT/loadgen.log" 2>&1
[ "${PERF:-0}" = 1 ] && wait $perfpid
kill $pid; wait $pid 2>/dev/null; wait $spid
