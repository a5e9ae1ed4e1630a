#!/usr/bin/env bash
# Parse + render of the text bodies with two builds of the parse_render criterion bench,
# alternating.
#
#   OLD=/path/parse_render-old NEW=/path/parse_render-new bash run.sh ROUNDS OUT
#
# A build's bench executable is what `cargo bench --bench parse_render --no-run` prints
# (target/release/deps/parse_render-<hash>); copy it aside before building the other commit.
# Each round runs the three text benches (the load generator's node-exporter and GPU pushes,
# and the per-CPU-scaled capture) for 3 s with old, then new, and writes criterion's
# bencher-format lines (ns per body) to OUT/{old,new}-N.txt; the table is printed at the end.
set -euo pipefail
ROUNDS=$1; OUT=$2
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        bin=$OLD; [ "$which" = new ] && bin=$NEW
        "$bin" --bench 'text_node_exporter_loadgen|text_gpu_8|text_node_exporter_794cpu' --warm-up-time 1 \
            --measurement-time 3 --noplot --output-format bencher 2>/dev/null | grep '^test' >"$OUT/$which-$r.txt"
    done
done
printf '%-5s %-5s %14s %14s %14s\n' round build node-loadgen gpu-8 node-794cpu
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        f="$OUT/$which-$r.txt"
        v() { awk -v b="$1" '$2 == "parse_render/" b { printf "%.0f us", $5 / 1000 }' "$f"; }
        printf '%-5s %-5s %14s %14s %14s\n' "$r" "$which" "$(v text_node_exporter_loadgen)" "$(v text_gpu_8)" \
            "$(v text_node_exporter_794cpu)"
    done
done
