#!/usr/bin/env bash
# Where ringgate's RSS beyond the stored exposition goes: runs one showcase scenario (default:
# the 1,000-node spike, 2 cycles of 60 s) against a fresh ringgate under several glibc malloc
# settings (GLIBC_TUNABLES; the binary is unchanged), and at the end of each run asks glibc
# itself, through gdb, for its arena statistics (malloc_stats: bytes obtained from the system
# against bytes in use by live allocations) before stopping the gateway.
#
# Usage: bash bench/profile_memory.sh [OUT_DIR] [-- LOADGEN ARGS...]
#   OUT_DIR defaults to bench-results/profiles/memory-<UTC date-time>
#   LOADGEN ARGS default to: --nodes 1000 --cycle 60s --jitter 0 --cycles 2 (the prober scrapes every 10 s by default)
# Needs the binaries bench/showcase.sh builds (RINGGATE_TARGET_DIR, LOADGEN_TARGET_DIR) and gdb.
set -euo pipefail
cd "$(dirname "$0")/.."
RG="${RINGGATE_TARGET_DIR:-/work/target-bench}/release/ringgate"
LG="${LOADGEN_TARGET_DIR:-/work/target-loadgen}/release/ringgate-loadgen"
out="${1:-bench-results/profiles/memory-$(date -u +%Y-%m-%dT%H%MZ)}"
shift || true
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--nodes 1000 --cycle 60s --jitter 0 --cycles 2)
mkdir -p "$out"

# name:GLIBC_TUNABLES:extra load-generator args. "no_scrapes" turns the prober off, to see
# what the scrapes' snapshots (which keep the groups they reference alive) cost.
all_variants=(
    "default::"
    "mmap_threshold_128k:glibc.malloc.mmap_threshold=131072:"
    "arena_max_1:glibc.malloc.arena_max=1:"
    "no_scrapes::--probe-interval 0 --no-final-probe"
)
variants=()
for v in "${all_variants[@]}"; do
    if [ -z "${VARIANTS:-}" ] || [[ ",$VARIANTS," == *",${v%%:*},"* ]]; then variants+=("$v"); fi
done
port=19391
{
    echo "# bench/profile_memory.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), ringgate $(sha256sum "$RG" | cut -c1-16)"
    echo "# loadgen args: ${args[*]}"
    echo "# ringgate built from: $(cat "$RG.built-from" 2>/dev/null || echo unknown)"
} >> "$out/commands.txt"
[ -n "${SUMMARY_ONLY:-}" ] && variants=()
for v in "${variants[@]}"; do
    name=${v%%:*}
    rest=${v#*:}
    tun=${rest%%:*}
    extra=${rest#*:}
    port=$((port + 1))
    echo "== $name (GLIBC_TUNABLES=$tun)" >&2
    env ${tun:+GLIBC_TUNABLES=$tun} "$RG" --web.listen-address "127.0.0.1:$port" > "$out/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/-/ready" > /dev/null 2>&1 && break
        sleep 0.2
    done
    cmd=("$LG" --target "127.0.0.1:$port" --server-pid "$pid" --seed 1 "${args[@]}" $extra --out "$out/$name.json")
    echo "${tun:+GLIBC_TUNABLES=$tun }$RG --web.listen-address 127.0.0.1:$port &" >> "$out/commands.txt"
    echo "${cmd[*]}" >> "$out/commands.txt"
    timeout 900 "${cmd[@]}" 2> "$out/$name.loadgen.log" || true
    # glibc's own view, printed on the gateway's stderr (its log): per arena and in total,
    # "system bytes" (obtained from the kernel) and "in use bytes" (live allocations).
    grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" > "$out/$name.proc-status.txt"
    curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ringgate_(store|group)' > "$out/$name.self-metrics.txt" || true
    # Then malloc_trim(0): returns free pages anywhere in the heap to the kernel. A large drop in
    # RSS means the memory beyond the live allocations is whole free pages left by a transient
    # peak of live data, not fragmentation inside pages.
    timeout 120 gdb -p "$pid" -batch -ex 'call (void) malloc_stats()' -ex 'call (int) malloc_trim(0)' \
        > "$out/$name.gdb.log" 2>&1 || true
    grep -E '^VmRSS' "/proc/$pid/status" | sed 's/VmRSS/VmRSS_after_malloc_trim/' >> "$out/$name.proc-status.txt"
    kill -TERM "$pid"
    wait "$pid" || true
    sed -n '/^Arena 0:/,$p' "$out/$name.server.log" > "$out/$name.malloc-stats.txt" || true
done
python3 - "$out" "${all_variants[@]}" <<'EOF'
import json, os, re, sys
out, variants = sys.argv[1], sys.argv[2:]
rows = []
for v in variants:
    name, tun, extra = v.split(":", 2)
    if not os.path.exists(f"{out}/{name}.json"):
        continue
    r = json.load(open(f"{out}/{name}.json"))
    st = open(f"{out}/{name}.proc-status.txt").read()
    trim = re.search(r"VmRSS_after_malloc_trim:\s*(\d+) kB", st)
    stored = next((p["bytes"] for p in r["probes"] if p["phase"] == "final" and not p["gzip"] and p["status"] == 200), None)
    ms = open(f"{out}/{name}.malloc-stats.txt").read()
    sm = open(f"{out}/{name}.self-metrics.txt").read()
    rendered = sum(int(x) for x in re.findall(r"^ringgate_stored_bytes\{[^}]*\} (\d+)", sm, re.M)) or None
    tot = re.search(r"Total \(incl. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", ms)
    arenas = len(re.findall(r"^Arena \d+:", ms, re.M))
    rows.append({"variant": name, "GLIBC_TUNABLES": tun, "loadgen_extra": extra, "success_rate": r["success_rate"],
                 "rss_after_malloc_trim_bytes": int(trim.group(1)) * 1024 if trim else None,
                 "p99_s": r["latency_s"]["p99"], "max_s": r["latency_s"]["max"],
                 "peak_rss_bytes": r["server"]["peak_rss_bytes"], "rss_end_bytes": r["server"]["rss_end_bytes"],
                 "stored_exposition_bytes": stored, "stored_rendered_bytes_self_metrics": rendered,
                 "malloc_system_bytes": int(tot.group(1)) if tot else None,
                 "malloc_in_use_bytes": int(tot.group(2)) if tot else None, "arenas": arenas,
                 "server_cpu_s": r["server"]["cpu_seconds"]})
json.dump(rows, open(f"{out}/summary.json", "w"), indent=1)
with open(f"{out}/README.md", "w") as f:
    f.write("# Memory profile: where RSS beyond the stored exposition goes\n\n")
    f.write("Generated by `bench/profile_memory.sh` (commands in `commands.txt`); glibc's arena statistics "
            "at the end of each run are in `*.malloc-stats.txt`.\n\n")
    f.write("| variant | GLIBC_TUNABLES / extra loadgen args | success | p99 | max | peak RSS | RSS at end | malloc: from the system | malloc: in use | RSS after malloc_trim(0) | arenas | stored exposition (final scrape) | rendered bytes held (ringgate_stored_bytes) | peak RSS / rendered bytes | server CPU |\n")
    f.write("|---|---|" + "---:|" * 13 + "\n")
    g = lambda b: "–" if b is None else f"{b / 1e9:.2f} GB"
    for x in rows:
        ratio = f"{x['peak_rss_bytes'] / x['stored_rendered_bytes_self_metrics']:.2f}×" if x["stored_rendered_bytes_self_metrics"] else "–"
        f.write(f"| {x['variant']} | `{x['GLIBC_TUNABLES'] or x['loadgen_extra'] or '(none)'}` | {x['success_rate'] * 100:.1f} % | {x['p99_s']:.3f} s | "
                f"{x['max_s']:.3f} s | {g(x['peak_rss_bytes'])} | {g(x['rss_end_bytes'])} | {g(x['malloc_system_bytes'])} | "
                f"{g(x['malloc_in_use_bytes'])} | {g(x['rss_after_malloc_trim_bytes'])} | {x['arenas']} | {g(x['stored_exposition_bytes'])} | {g(x['stored_rendered_bytes_self_metrics'])} | {ratio} | {x['server_cpu_s']:.1f} s |\n")
    f.write("\nRSS after malloc_trim(0) is only measured in runs made after that step was added (– otherwise).\n")
print(open(f"{out}/README.md").read())
EOF
