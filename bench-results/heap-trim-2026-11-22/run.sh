#!/usr/bin/env bash
# What a heap trim costs and returns at 1,000 nodes: one 2-cycle 1,000-node run of the load
# generator (prober scraping every 10 s, alternating gzip), then the gateway's heap-trim
# counters. Binaries as built by bench/showcase.sh (release, LTO) from the commit in built-from.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
cd "$out/../.."   # the load generator finds ../shared/data from the repository root
port=39111
/work/target-bench/release/ringgate --web.listen-address 127.0.0.1:$port 2>"$out/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
/work/target-loadgen/release/ringgate-loadgen --target 127.0.0.1:$port --server-pid $pid --seed 1 --nodes 1000 \
    --cycle 1m --jitter 20s --cycles 2 --probe-interval 10s --out "$out/loadgen.json" 2>"$out/loadgen.log"
curl -s http://127.0.0.1:$port/metrics | grep -E '^ringgate_(heap_trim|scrapes_total|stored_bytes)' >"$out/metrics.txt"
