#!/bin/bash
# run.sh [OUT]: 10 min at 1,000 nodes (jitter 20 s, prober every 10 s) with a poller reading RSS and the pool gauges every 30 s.
BIN=${BIN:-/work/target-rel/release/ringgate}
LG=${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen}
PORT=${PORT:-19840}; D=$(realpath -m "${1:-$(dirname "$0")}"); mkdir -p "$D"
cd "$(dirname "$0")/../.."   # the generator reads ../shared/data/ from the repository root
$BIN --web.listen-address 127.0.0.1:$PORT > $D/server.log 2>&1 & pid=$!
sleep 1
( while kill -0 $pid 2>/dev/null; do
    sleep 30
    rss=$(awk '/VmRSS/{print $2*1024}' /proc/$pid/status)
    g=$(curl -s -m 20 http://127.0.0.1:$PORT/metrics | grep -E '^ringgate_(buffer_pool|gzip_segment_bytes|stored_bytes)' | tr '\n' ';')
    echo "$(date +%s) rss=$rss $g"
  done ) > $D/poll.log 2>&1 &
$LG --target 127.0.0.1:$PORT --server-pid $pid --seed 1 --nodes 1000 --cycle 1m --jitter 20s --duration 10m --probe-interval 10s --no-final-probe --out $D/lg.json > $D/loadgen.log 2>&1
kill $pid; wait $pid 2>/dev/null
