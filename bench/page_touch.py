#!/usr/bin/env python3
"""How fast this machine hands a process fresh memory: map anonymous memory, write every
byte once (memset through ctypes, so Python adds nothing per page), unmap; in one process and
in two at once. The first write to each page of a new mapping faults, and the kernel zeroes a
page for it; on a VM whose host takes back the memory the guest frees (free page reporting
through virtio-balloon), the host must also find and map a page. A gateway's store grows this
way when groups are pushed for the first time, so this rate bounds how fast the first push
cycle of a large cluster can be taken in.

Usage: python3 bench/page_touch.py [--mib 2048] [--rounds 3] [--out FILE.json]
Prints one line per measurement and a JSON summary.
"""

import argparse
import ctypes
import json
import mmap
import multiprocessing
import os
import platform
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.memset.restype = ctypes.c_void_p


def touch(nbytes, again):
    """MB/s of the first write to `nbytes` of fresh memory; with `again`, the same size is
    mapped a second time right after the first is unmapped (pages the process just gave back,
    before the host can take them), and that second rate is returned as well."""
    rates = []
    for _ in range(2 if again else 1):
        m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        buf = (ctypes.c_char * nbytes).from_buffer(m)
        t0 = time.perf_counter()
        libc.memset(ctypes.addressof(buf), 1, nbytes)
        dt = time.perf_counter() - t0
        del buf
        m.close()
        rates.append(nbytes / 1e6 / dt)
    return rates


def worker(args):
    nbytes, again = args
    return touch(nbytes, again)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=2048, help="MiB each process maps and writes (default 2048)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pause", type=float, default=5.0, help="seconds between measurements (default 5)")
    p.add_argument("--out", help="also write the JSON summary here")
    a = p.parse_args()
    nbytes = a.mib << 20
    rows = []
    for r in range(a.rounds):
        for procs in (1, 2):
            time.sleep(a.pause)
            with multiprocessing.Pool(procs) as pool:
                res = pool.map(worker, [(nbytes, True)] * procs)
            first = [x[0] for x in res]
            again = [x[1] for x in res]
            row = {
                "round": r + 1,
                "processes": procs,
                "mib_each": a.mib,
                "first_touch_mb_s_each": [round(x, 1) for x in first],
                "first_touch_mb_s_total": round(sum(first), 1),
                "retouch_mb_s_each": [round(x, 1) for x in again],
            }
            rows.append(row)
            print(
                f"round {r + 1}, {procs} process(es) x {a.mib} MiB: first touch "
                f"{' + '.join(f'{x:.0f}' for x in first)} MB/s; mapped again at once: "
                f"{' + '.join(f'{x:.0f}' for x in again)} MB/s",
                flush=True,
            )
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "thp": open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip(),
        "runs": rows,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
