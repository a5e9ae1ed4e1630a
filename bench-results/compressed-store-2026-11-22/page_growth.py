#!/usr/bin/env python3
"""How fast this VM backs a growing process with fresh memory: map 1 GiB at a time, write every
byte (memset), keep it, ten times; prints MB/s per GiB. With an argument, each mapping asks
for transparent huge pages (MADV_HUGEPAGE) first. A gateway's store grows this way during
the first push cycle at a new scale.

Usage: python3 page_growth.py [huge]
"""
import ctypes, mmap, time, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
huge = len(sys.argv) > 1
maps=[]
for i in range(10):
    n = 1<<30
    m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge: m.madvise(mmap.MADV_HUGEPAGE)
    buf = (ctypes.c_char * n).from_buffer(m)
    t0 = time.perf_counter(); libc.memset(ctypes.addressof(buf), 1, n); dt = time.perf_counter() - t0
    maps.append((m,buf))
    print(i, round(n/1e6/dt), 'MB/s', flush=True)
