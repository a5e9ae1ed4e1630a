#!/bin/bash
# sysc.sh TAG [gateway flags]: a 10 s small-push run (one push in flight per connection) with
# `perf stat` counting the gateway's system calls and context switches from 3 s to 8 s.
# Writes OUT/TAG/{lg.json,stat.txt,*.log} (OUT defaults to the current directory).
set -u
TAG=$1; shift
BIN=${BIN:-/work/target-rel/release/ringgate}
dir=${OUT:-.}/$TAG; mkdir -p $dir
$BIN --web.listen-address 127.0.0.1:19811 "$@" > $dir/server.log 2>&1 &
pid=$!; sleep 1
(sleep 3; perf stat -e 'syscalls:sys_enter_membarrier,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,context-switches' -p $pid -o $dir/stat.txt -- sleep 5 >/dev/null 2>&1) & ppid=$!
${LOADGEN:-/work/target-loadgen/release/ringgate-loadgen} --target 127.0.0.1:19811 --server-pid $pid --seed 1 --mode small --duration 10s --probe-interval 0 --no-final-probe --out $dir/lg.json > $dir/loadgen.log 2>&1
wait $ppid
kill $pid; wait $pid 2>/dev/null
python3 -c "
import json
d=json.load(open('$dir/lg.json')); print('$TAG', round(d['pushes_per_s']), 'per 5s:', round(d['pushes_per_s']*5))"
grep -E "syscalls|context" $dir/stat.txt
