#!/usr/bin/env bash
# Instructions per parsed body, counted by callgrind: a figure the machine's speed (which
# varies 2-3x within an hour on this VM) does not move.
#
#   OLD=/path/parse_render-old NEW=/path/parse_render-new bash ir.sh OUT
#
# For each text bench and build, runs the bench executable under callgrind for 2 s of
# criterion's profiling mode and divides the instructions (Ir, inclusive) of
# `ringgate::text::parse_with_limit` called from the timed loop by the number of those calls.
set -euo pipefail
OUT=$1
mkdir -p "$OUT"
printf '%-28s %14s %14s %8s\n' bench old-Ir/body new-Ir/body change
for b in text_node_exporter_loadgen text_gpu_8 text_node_exporter_794cpu; do
    declare -A ir=()
    for which in old new; do
        bin=$OLD; [ "$which" = new ] && bin=$NEW
        cg="$OUT/callgrind-$b-$which.out"
        valgrind --tool=callgrind --callgrind-out-file="$cg" "$bin" --bench "$b" --profile-time 2 >/dev/null 2>&1
        ir[$which]=$(callgrind_annotate --inclusive=yes --tree=caller "$cg" 2>/dev/null \
            | grep -B8 '\*  .*src/text.rs:ringgate::text::parse_with_limit' | grep 'Bencher<M>::iter' \
            | sed 's/,//g' | awk '{ n = $NF; gsub(/[()x]/, "", n); printf "%.0f", $1 / n }')
        rm -f "$cg"
    done
    printf '%-28s %14s %14s %7.1f%%\n' "$b" "${ir[old]}" "${ir[new]}" \
        "$(awk -v a="${ir[old]}" -v b="${ir[new]}" 'BEGIN { print (b - a) * 100 / a }')"
done
