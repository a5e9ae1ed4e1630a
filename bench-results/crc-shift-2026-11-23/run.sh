#!/usr/bin/env bash
# Deflating a store's segments with two builds of the gzip criterion bench, alternating.
#
#   OLD=/path/gzip-bench-old NEW=/path/gzip-bench-new bash run.sh ROUNDS OUT
#
# A build's bench executable is what `cargo bench --bench gzip --no-run` prints
# (target/release/deps/gzip-<hash>); copy it aside before building the other commit.
# Each round runs `gzip/segments_made_whole_store` (1,000 node-exporter groups, 272 MB of
# exposition, one deflate segment per family and group, with its CRC and CRC shift) for 3 s
# with old, then new: OUT/{old,new}-N.txt.
set -euo pipefail
ROUNDS=$1; OUT=$2
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        bin=$OLD; [ "$which" = new ] && bin=$NEW
        "$bin" --bench segments_made --warm-up-time 1 --measurement-time 3 --noplot >"$OUT/$which-$r.txt" 2>&1
    done
done
grep -H "time:" "$OUT"/*.txt
