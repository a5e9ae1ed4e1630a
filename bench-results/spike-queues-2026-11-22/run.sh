#!/usr/bin/env bash
# The 1,000-node spike (every push at the cycle start, 2 cycles, prober every 10 s alternating
# plain and gzip) against two builds of ringgate, back to back on this machine:
#   before: dbe7392 (scrapes and pushes share the default task queue, no in-flight limit)
#   after:  the commit given as $1 (default HEAD)
# Writes <build>.json (the load generator's report) and README.md (generated, not edited).
# Run from the repository root: bash bench-results/spike-queues-2026-11-22/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench-results/spike-queues-2026-11-22
after=$(git rev-parse --short "${1:-HEAD}")
work=/tmp/spike-queues
mkdir -p "$work"
build() { # commit -> path of its release binary
    local c=$1 dir=$work/src-$1
    rm -rf "$dir" && mkdir -p "$dir"
    git archive "$c" | tar -x -C "$dir"
    (cd "$dir" && CARGO_TARGET_DIR=$work/target-$c cargo build --release --quiet 2>&1 | tail -3) >&2
    echo "$work/target-$c/release/ringgate"
}
before_bin=$(build dbe7392)
after_bin=$(build "$after")
(cd loadgen && CARGO_TARGET_DIR=$work/target-loadgen cargo build --release --quiet)
lg=$work/target-loadgen/release/ringgate-loadgen
port=19810
for pair in "before:$before_bin" "after:$after_bin"; do
    name=${pair%%:*}; bin=${pair#*:}
    "$bin" --web.listen-address 127.0.0.1:$port > "$work/$name.server.log" 2>&1 &
    pid=$!
    sleep 1
    "$lg" --target 127.0.0.1:$port --server-pid $pid --seed 1 --nodes 1000 --cycle 1m --jitter 0s \
        --cycles 2 --probe-interval 10s --out "$out/$name.json" > "$work/$name.loadgen.log" 2>&1
    kill $pid; wait $pid 2>/dev/null || true
    sleep 2
done
python3 "$out/report.py" "$out" "$after"
