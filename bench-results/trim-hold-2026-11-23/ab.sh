#!/bin/bash
# Alternating 5,000-node runs of one build with exp.diff applied: A (default) and T (heap
# trims held until no large push has come for 2 s). Writes A1..A3/T1..T3.json here and the
# summaries to stdout.   bash ab.sh /path/ringgate-built-with-exp.diff > ab.txt
set -eu
BIN=$1
cd "$(dirname "$0")"
for i in 1 2 3; do
  ENVS="RINGGATE_EXP_X=1" ./brk.sh "$BIN" A$i 5000
  ENVS="RINGGATE_EXP_TRIM_QUIET_MS=2000" ./brk.sh "$BIN" T$i 5000
done
