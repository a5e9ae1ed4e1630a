# threads.py PID OUT: every second until process PID exits, one line of the CPU-seconds each of
# its threads used (by thread id; the gateway's shard executors are its first two threads,
# glommio's blocking threads the later ones), the load generator's (LG=, found by name), and the
# machine's idle, steal and softirq seconds (over both CPUs) from /proc/stat. glommio's shards
# wait for io_uring, which the kernel counts as iowait, not idle.
import os, sys, time
pid = int(sys.argv[1]); out = open(sys.argv[2], 'w'); lg = True
hz = os.sysconf('SC_CLK_TCK')
def threads(p):
    d = {}
    try:
        for t in os.listdir(f'/proc/{p}/task'):
            try:
                s = open(f'/proc/{p}/task/{t}/stat').read()
                name = s[s.index('(')+1:s.rindex(')')]
                f = s[s.rindex(')')+2:].split()
                d[(name, t)] = (int(f[11]) + int(f[12])) / hz
            except Exception: pass
    except Exception: pass
    return d
def cpu():
    f = open('/proc/stat').readline().split()[1:]
    return [int(x) / hz for x in f]
t0 = time.time(); prev = threads(pid); pc = cpu()
lgpid = None
while os.path.exists(f'/proc/{pid}'):
    time.sleep(1)
    if lgpid is None and lg:
        try: lgpid = int(os.popen(f'pgrep -x ringgate-loadge').read().split()[0])
        except Exception: pass
    cur = threads(pid); c = cpu()
    by = {}
    for k, v in cur.items():
        n = k[0]
        key = k[1]
        by.setdefault(key, 0.0); by[key] += v - prev.get(k, v)
    d = [a - b for a, b in zip(c, pc)]
    # user nice system idle iowait irq softirq steal
    if lgpid:
        try:
            f = open(f'/proc/{lgpid}/stat').read(); f = f[f.rindex(')')+2:].split(); v = (int(f[11]) + int(f[12])) / hz
            by['LG'] = v - getattr(sys, 'lgprev', v); sys.lgprev = v
        except Exception: pass
    out.write('%.0f %s | idle=%.2f steal=%.2f softirq=%.2f\n' % (time.time() - t0, ' '.join('%s=%.2f' % (k, v) for k, v in sorted(by.items()) if v > 0.01), d[3], d[7], d[6]))
    out.flush(); prev = cur; pc = c
