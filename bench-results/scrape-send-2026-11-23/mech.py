# mech.py BIN OUT [PORT]: fill a gateway with 1,000 nodes (one push cycle, no prober), then time five
# plain and five gzip scrapes with curl, one after another, and count the CPU each thread class
# used during each: the shard executors (the first two threads the gateway starts) and the
# others (glommio's blocking threads), from /proc/<pid>/task/*/stat.
import json, os, subprocess, sys, time
BIN, OUT = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 19850
LG = os.environ.get('LOADGEN', '/work/target-loadgen/release/ringgate-loadgen')
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
hz = os.sysconf('SC_CLK_TCK')
srv = subprocess.Popen([BIN, '--web.listen-address', f'127.0.0.1:{PORT}'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
subprocess.run([LG, '--target', f'127.0.0.1:{PORT}', '--server-pid', str(srv.pid), '--seed', '1', '--nodes', '1000',
                '--cycle', '1m', '--jitter', '10s', '--cycles', '1', '--probe-interval', '0', '--no-final-probe',
                '--out', os.path.abspath(OUT[:-5] + '.fill.json')], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
def threads():
    d = {}
    for t in os.listdir(f'/proc/{srv.pid}/task'):
        f = open(f'/proc/{srv.pid}/task/{t}/stat').read()
        f = f[f.rindex(')') + 2:].split()
        d[int(t)] = (int(f[11]) + int(f[12])) / hz
    return d
rows = []
time.sleep(2)
for gz in [False, True] * 5:
    before = threads(); t0 = time.time()
    args = ['curl', '-s', '-o', '/dev/null', '-w', '%{size_download}', f'http://127.0.0.1:{PORT}/metrics']
    if gz: args[1:1] = ['-H', 'Accept-Encoding: gzip']
    size = int(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    wall = time.time() - t0
    after = threads()
    tids = sorted(after)
    shards = tids[1:3]
    sh = sum(after[t] - before.get(t, 0) for t in shards)
    other = sum(after[t] - before.get(t, 0) for t in tids if t not in shards)
    rows.append({'gzip': gz, 'bytes': size, 'seconds': round(wall, 3), 'shard_cpu_s': round(sh, 2), 'blocking_cpu_s': round(other, 2)})
    print(rows[-1], flush=True)
    time.sleep(1)
srv.terminate(); srv.wait()
json.dump({'binary': BIN, 'rows': rows}, open(OUT, 'w'), indent=1)
