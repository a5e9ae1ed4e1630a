#!/bin/bash
# Alternating A/B of two gateway builds: bash run.sh OLD NEW ROUNDS > ab.txt
OLD=$1; NEW=$2; R=${3:-3}
for r in $(seq $R); do
  bash "$(dirname "$0")/gzs.sh" "$OLD" old$r 2000 6
  bash "$(dirname "$0")/gzs.sh" "$NEW" new$r 2000 6
done
