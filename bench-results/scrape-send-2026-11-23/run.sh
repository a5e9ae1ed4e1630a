#!/bin/bash
# Alternating A/B of the CPU a 1,000-node scrape costs the shards: OLD and NEW gateway binaries,
# ROUNDS rounds, each a fresh gateway filled by one push cycle and then scraped five times
# plain and five times gzip (mech.py).
#   OLD=path NEW=path run.sh ROUNDS
set -eu
cd "$(dirname "$0")"
for i in $(seq "$1"); do
  for v in old new; do
    if [ $v = old ]; then bin=$OLD; else bin=$NEW; fi
    python3 mech.py "$bin" "mech-$i-$v.json" > /dev/null
    echo "round $i $v done"
  done
done
python3 table.py
