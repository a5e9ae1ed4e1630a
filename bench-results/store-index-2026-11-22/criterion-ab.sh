#!/bin/bash
# Alternating criterion runs of one bench in two checkouts, each with its own target directory
# (one shared directory lets cargo keep the other checkout's binary: same crate, older sources).
# Prints the point estimate of each run.
# Usage: criterion-ab.sh BENCH ROUNDS DIR_A TARGET_A DIR_B TARGET_B [criterion filter]
set -u
B=$1; R=$2; DA=$3; TA=$4; DB=$5; TB=$6; F=${7:-}
for i in $(seq "$R"); do
  for k in A B; do
    if [ $k = A ]; then d=$DA; t=$TA; else d=$DB; t=$TB; fi
    est=$(cd "$d" && CARGO_TARGET_DIR=$t cargo bench --bench "$B" -- --noplot --measurement-time 4 $F 2>&1 \
      | grep "time:" | head -1 | awk '{print $4, $5}')
    echo "| $i | $(git -C "$d" rev-parse --short HEAD) | $est |"
  done
done
