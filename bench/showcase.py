#!/usr/bin/env python3
"""The showcase driver (issue 5), called by bench/showcase.sh after it built the binaries.

Runs the matrix against 127.0.0.1 only, each scenario on a fresh gateway process:

  ringgate   ringgate at 10, 100, 250, 500, 750, 1000 nodes, 0-20 s jitter
  official   /usr/bin/prometheus-pushgateway --persistence.file= (default flags otherwise)
             at the same scales, stopping after the first scale with success < 50 % or no
             answer on /metrics
  official-nocheck   the same with --push.disable-consistency-check
  spike      ringgate at 1000 nodes, jitter 0
  breaking   ringgate at 2000, 5000, 7500, 10000, ... until success < 100 % or p99 > 1 s, or
             until the gateway's peak RSS would pass --max-ram-fraction of RAM (estimated
             from the largest peak RSS per node of the runs so far); then --refine bisection
             steps between the last pass and the first failure
  soak       ringgate at 1000 nodes for --soak (default 30m)
  small      --mode small (~100-byte PUTs on keep-alive connections) against all three, once
             with one push in flight per connection and once pipelined (--small-pipeline,
             default 16 in flight per connection)

The ladder scales run interleaved (ringgate N, official N, official-nocheck N, then the next
N) so that the gateways are compared under the same background load. Every scenario writes
the load generator's raw JSON report to <out>/<scenario>.json, its stderr and the gateway's
log to <out>/logs/, and one entry to <out>/manifest.json (commands, start and end, load
average, machine-wide busy CPU seconds, why it stopped). Then bench/report.py is run.

Python 3.11 standard library only.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGW = "/usr/bin/prometheus-pushgateway"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Bytes of /metrics per node, measured (DESIGN.md: 17-19 MB per 10 nodes); replaced by the
# figure of the largest ringgate run once one has finished.
EXPO_PER_NODE = 1.8e6


def parse_dur(s):
    s = s.strip()
    for suf, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * mult
    return float(s)


def fmt_dur(secs):
    secs = float(secs)
    if secs >= 60 and secs % 60 == 0:
        return f"{int(secs // 60)}m"
    return f"{secs:g}s"


def log(msg):
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def busy_cpu_seconds():
    """Machine-wide busy CPU seconds so far (every process: user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001 - informational only
        return f"({e})"


class Showcase:
    def __init__(self, args):
        self.a = args
        self.have_pgw = os.access(PGW, os.X_OK)
        if not self.have_pgw and any(self.want(g) for g in ("small", "official", "official-nocheck")):
            # A showcase without the official gateway is not the side-by-side it claims to be:
            # stop before writing anything rather than skip half of it.
            sys.exit(f"showcase: {PGW} is missing (Debian's prometheus-pushgateway; bench/showcase.sh "
                     "installs it); to run ringgate alone, say so with --only ringgate,spike,soak,breaking")
        self.out = args.out
        os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)
        self.rg = os.path.join(args.ringgate_target_dir, "release", "ringgate")
        self.lg = os.path.join(args.loadgen_target_dir, "release", "ringgate-loadgen")
        for b in (self.rg, self.lg):
            if not os.access(b, os.X_OK):
                sys.exit(f"showcase: {b} missing; run bench/showcase.sh (it builds it)")
        self.mem_total = meminfo()["MemTotal"]
        self.rss_cap = int(self.mem_total * args.max_ram_fraction)
        # Peak RSS per node of ringgate's 1,000-node-or-larger stress runs so far (the largest
        # ratio seen): with the store compressed, RSS is well under the exposition's bytes, so the
        # breaking-point search estimates memory from this once it has a figure.
        self.rss_per_node = 0.0
        self.manifest_path = os.path.join(self.out, "manifest.json")
        self.manifest = {
            "tool": "bench/showcase.py",
            "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "bash bench/showcase.sh " + shlex.join(sys.argv[1:]),
            "quick": args.quick,
            "options": {k: v for k, v in vars(args).items()},
            "machine": self.machine(),
            "binaries": {
                "ringgate": {"path": self.rg, "sha256": sha256(self.rg), "version": sh(f"{self.rg} --version")},
                "ringgate-loadgen": {"path": self.lg, "sha256": sha256(self.lg)},
                "pushgateway": {"path": PGW, "version": sh(f"{PGW} --version 2>&1 | head -1") if self.have_pgw else None},
            },
            "git": {
                "commit": sh(f"git -C {shlex.quote(ROOT)} rev-parse HEAD"),
                "worktree_src_dirty": sh(f"git -C {shlex.quote(ROOT)} status --porcelain -- src Cargo.toml Cargo.lock loadgen") != "",
                "built_from": os.environ.get("SHOWCASE_BUILD_SRC", "(not built by this run: --no-build)"),
            },
            "scenarios": [],
        }
        self.save()

    def machine(self):
        mi = meminfo()
        return {
            "lscpu": sh("lscpu"),
            "uname_r": sh("uname -r"),
            "uname_a": sh("uname -a"),
            "mem_total_bytes": mi["MemTotal"],
            "mem_available_bytes": mi.get("MemAvailable"),
            "free_h": sh("free -h"),
            "nproc": os.cpu_count(),
            "rustc": sh("rustc --version"),
            "os_release": sh(". /etc/os-release && echo $PRETTY_NAME"),
            "loadavg_at_start": loadavg(),
        }

    def save(self):
        tmp = self.manifest_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.manifest, f, indent=1)
        os.replace(tmp, self.manifest_path)

    # ---- one scenario -------------------------------------------------------------------

    def server_cmd(self, gateway, port):
        if gateway == "ringgate":
            return [self.rg, "--web.listen-address", f"127.0.0.1:{port}"]
        cmd = [PGW, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
        if gateway == "official-nocheck":
            cmd.append("--push.disable-consistency-check")
        return cmd

    def wait_ready(self, proc, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.2)
        return False

    def run(self, name, group, gateway, lg_args, budget_s, meta):
        """Runs one scenario; returns (manifest entry, parsed report or None)."""
        entry = {"name": name, "group": group, "gateway": gateway, **meta}
        json_rel = f"{name}.json"
        json_path = os.path.join(self.out, json_rel)
        port = free_port()
        srv_cmd = self.server_cmd(gateway, port)
        srv_log = open(os.path.join(self.out, "logs", f"{name}.server.log"), "wb")
        lg_log_path = os.path.join(self.out, "logs", f"{name}.loadgen.log")
        mem_before = meminfo()
        entry.update(
            started_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            server_cmd=shlex.join(srv_cmd),
            loadavg_before=loadavg(),
            mem_available_before=mem_before.get("MemAvailable"),
        )
        log(f"{name}: starting {gateway} on 127.0.0.1:{port}")
        srv = subprocess.Popen(srv_cmd, stdout=srv_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, cwd=ROOT)
        report = None
        try:
            if not self.wait_ready(srv, port):
                entry.update(outcome="server_not_ready", server_exit=srv.poll())
                log(f"{name}: the gateway did not become ready")
                return entry, None
            lg_cmd = [self.lg, "--target", f"127.0.0.1:{port}", "--server-pid", str(srv.pid),
                      "--seed", str(self.a.seed), *lg_args, "--out", json_path]
            entry["loadgen_cmd"] = shlex.join(lg_cmd).replace(self.out + "/", "")
            entry["loadgen_cmd_abs"] = shlex.join(lg_cmd)
            # Watchdog: a gateway past the RSS cap is killed so it cannot take the machine
            # (shared with other engineers) into the OOM killer; recorded in the manifest.
            killed = {}
            stop = threading.Event()

            def watchdog():
                peak = 0
                while not stop.wait(0.5):
                    r = rss_bytes(srv.pid)
                    if r is None:
                        return
                    peak = max(peak, r)
                    if r > self.rss_cap:
                        killed["rss"] = r
                        log(f"{name}: gateway RSS {r / 2**30:.1f} GiB > cap {self.rss_cap / 2**30:.1f} GiB: killing it")
                        try:
                            os.killpg(srv.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        return

            wd = threading.Thread(target=watchdog, daemon=True)
            wd.start()
            busy0, t0 = busy_cpu_seconds(), time.time()
            with open(lg_log_path, "wb") as lg_log:
                lg = subprocess.Popen(lg_cmd, stdout=subprocess.DEVNULL, stderr=lg_log, stdin=subprocess.DEVNULL,
                                      start_new_session=True, cwd=ROOT)
                try:
                    rc = lg.wait(timeout=budget_s)
                except subprocess.TimeoutExpired:
                    log(f"{name}: load generator overran its {budget_s:.0f} s budget: killing it")
                    os.killpg(lg.pid, signal.SIGKILL)
                    rc = lg.wait()
                    entry["loadgen_killed"] = True
            busy1, t1 = busy_cpu_seconds(), time.time()
            stop.set()
            wd.join()
            entry.update(
                loadgen_rc=rc,
                wall_s=round(t1 - t0, 3),
                machine_busy_cpu_s=round(busy1 - busy0, 2),
                loadavg_after=loadavg(),
                server_alive_at_end=srv.poll() is None,
            )
            if killed:
                entry["server_killed_rss_cap"] = killed["rss"]
            if os.path.exists(json_path):
                entry["json"] = json_rel
                with open(json_path) as f:
                    report = json.load(f)
                entry["outcome"] = "ok"
            else:
                entry["outcome"] = "no_report"
            return entry, report
        finally:
            self.stop_server(srv, entry)
            srv_log.close()
            entry["ended_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            self.manifest["scenarios"].append(entry)
            self.save()
            if report:
                log(f"{name}: {summary(report)}")

    def stop_server(self, srv, entry):
        if srv.poll() is None:
            try:
                os.killpg(srv.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                srv.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(srv.pid, signal.SIGKILL)
                srv.wait()
                entry["server_sigkilled"] = True
        entry["server_exit"] = srv.returncode

    # ---- the matrix ---------------------------------------------------------------------

    def stress_args(self, nodes, jitter, cycles=None, duration=None):
        a = ["--nodes", str(nodes), "--cycle", fmt_dur(self.a.cycle_s), "--jitter", fmt_dur(jitter)]
        if duration is not None:
            a += ["--duration", fmt_dur(duration)]
        else:
            a += ["--cycles", str(cycles or self.a.cycles)]
        a += ["--probe-interval", fmt_dur(self.a.probe_interval_s)]
        return a

    def budget(self, run_s):
        # Last push due at run_s; then the client timeout (30 s), two final scrapes (60 s
        # timeout each), start-up; generous, only a backstop: the generator stops by itself.
        return run_s + 30 + 2 * 60 + 180

    def stress(self, name, group, gateway, nodes, jitter, cycles=None, duration=None):
        run_s = duration if duration is not None else (cycles or self.a.cycles) * self.a.cycle_s
        meta = {"mode": "stress", "nodes": nodes, "jitter_s": jitter, "cycle_s": self.a.cycle_s,
                "cycles": None if duration is not None else (cycles or self.a.cycles), "duration_s": duration}
        return self.run(name, group, gateway, self.stress_args(nodes, jitter, cycles, duration), self.budget(run_s), meta)

    def skip(self, name, group, gateway, why, **meta):
        log(f"{name}: skipped: {why}")
        self.manifest["scenarios"].append({"name": name, "group": group, "gateway": gateway, "outcome": "skipped",
                                           "why": why, **meta})
        self.save()

    def want(self, group):
        return not self.a.only or group in self.a.only

    def main(self):
        a = self.a
        global EXPO_PER_NODE
        t_start = time.time()
        if self.want("small"):
            for gw in ("ringgate", "official", "official-nocheck"):
                for depth in sorted({1, a.small_pipeline}):
                    args = ["--mode", "small", "--duration", fmt_dur(a.small_s), "--probe-interval", "0",
                            "--no-final-probe", "--small-pipeline", str(depth)]
                    name = f"small-{gw}" + (f"-p{depth}" if depth > 1 else "")
                    self.run(name, "small", gw, args, self.budget(a.small_s),
                             {"mode": "small", "duration_s": a.small_s, "pipeline": depth})

        # The ladder, interleaved across gateways.
        official_going = {gw: self.want(gw) for gw in ("official", "official-nocheck")}
        for n in a.ladder:
            if self.want("ringgate"):
                _, rep = self.stress(f"ringgate-{n:05d}", "ringgate", "ringgate", n, a.jitter_s)
                self.note_rss(rep, n)
                if rep:
                    fin = final_probe(rep, gzip=False)
                    if fin and fin.get("status") == 200 and fin.get("bytes"):
                        EXPO_PER_NODE = fin["bytes"] / n
            for gw, going in official_going.items():
                if not going:
                    continue
                entry, rep = self.stress(f"{gw}-{n:05d}", gw, gw, n, a.jitter_s)
                rate = rep["success_rate"] if rep else 0.0
                answered = rep is not None and any(p.get("status") == 200 for p in rep.get("probes", []) if p.get("phase") == "final")
                if rate < 0.5 or not answered:
                    official_going[gw] = False
                    why = f"success {rate:.1%}" + ("" if answered else ", /metrics did not answer after the run")
                    entry["ladder_stop"] = why
                    self.save()
                    log(f"{gw}: ladder stops at {n} nodes ({why})")

        if self.want("spike"):
            self.stress(f"spike-{a.spike_nodes:05d}", "spike", "ringgate", a.spike_nodes, 0)

        if self.want("breaking"):
            self.breaking()

        if self.want("soak"):
            self.stress(f"soak-{a.soak_nodes:05d}", "soak", "ringgate", a.soak_nodes, a.jitter_s, duration=a.soak_s)

        self.manifest["ended_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.manifest["wall_s"] = round(time.time() - t_start, 1)
        self.manifest["machine"]["loadavg_at_end"] = loadavg()
        self.save()
        log(f"showcase done in {(time.time() - t_start) / 60:.1f} min: {self.out}")

    def note_rss(self, rep, nodes):
        peak = ((rep or {}).get("server") or {}).get("peak_rss_bytes")
        if peak and nodes >= 1000:
            self.rss_per_node = max(self.rss_per_node, peak / nodes)

    def breaking(self):
        a = self.a
        passed, failed = [], []

        def attempt(n):
            est = n * EXPO_PER_NODE
            # Before any large run has measured it, assume the RSS is the exposition's bytes.
            est_rss = n * self.rss_per_node if self.rss_per_node else est
            limit = a.max_ram_fraction * self.mem_total
            if est_rss > limit:
                self.skip(f"breaking-{n:05d}", "breaking", "ringgate",
                          f"peak RSS of ~{est_rss / 1e9:.1f} GB (store ~{est / 1e9:.1f} GB) would pass "
                          f"{a.max_ram_fraction:.0%} of RAM ({limit / 1e9:.1f} GB)",
                          nodes=n, est_store_bytes=int(est), est_peak_rss_bytes=int(est_rss))
                return None
            entry, rep = self.stress(f"breaking-{n:05d}", "breaking", "ringgate", n, a.jitter_s)
            self.note_rss(rep, n)
            ok = bool(rep) and rep["successes"] == rep["pushes"] and (rep["latency_s"].get("p99") or 1e9) <= 1.0
            entry["breaking_pass"] = ok
            entry["est_store_bytes"] = int(est)
            self.save()
            (passed if ok else failed).append(n)
            return ok

        for n in a.breaking:
            r = attempt(n)
            if r is None or r is False:
                break
        # Bisect between the last pass and the first failure (or the memory limit).
        lo = max(passed) if passed else max([x for x in a.ladder] or [0])
        hi = min(failed) if failed else None
        for _ in range(a.refine if hi else 0):
            mid = int(round((lo + hi) / 2 / 250.0) * 250)
            if mid <= lo or mid >= hi:
                break
            r = attempt(mid)
            if r is None:
                break
            if r:
                lo = mid
            else:
                hi = mid


def final_probe(rep, gzip):
    for p in rep.get("probes", []):
        if p.get("phase") == "final" and bool(p.get("gzip")) == gzip:
            return p
    return None


def summary(rep):
    lat = rep.get("latency_s", {})
    s = f"{rep['successes']}/{rep['pushes']} ok ({rep['success_rate']:.1%})"
    if lat.get("p99") is not None:
        s += f", p50 {lat['p50']:.3f}s p99 {lat['p99']:.3f}s max {lat['max']:.3f}s"
    if "pushes_per_s" in rep:
        s += f", {rep['pushes_per_s']:.0f} pushes/s"
    srv = rep.get("server") or {}
    if srv.get("peak_rss_bytes"):
        s += f", peak RSS {srv['peak_rss_bytes'] / 2**20:.0f} MiB, CPU {srv.get('cpu_seconds') or 0:.1f}s"
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke version: 10 and 50 nodes, 10 s cycles, 5 s jitter, spike and soak at 50/100 nodes, "
                        "a 60 s soak, 3 s small-push runs")
    p.add_argument("--soak", default=None, help="soak length (default 30m; --quick: 60s)")
    p.add_argument("--cycles", type=int, default=2,
                   help="cycles per ladder/spike/breaking scenario (default 2: the first fills the store, "
                        "the second replaces every group while it is full and scraped)")
    p.add_argument("--cycle", default=None, help="cycle length (default 60s; --quick: 10s)")
    p.add_argument("--jitter", default=None, help="jitter (default 20s; --quick: 5s)")
    p.add_argument("--ladder", default=None, help="comma-separated node counts (default 10,100,250,500,750,1000)")
    p.add_argument("--breaking", default=None, help="breaking-point search scales (default 2000,5000,7500,10000,15000,20000)")
    p.add_argument("--refine", type=int, default=2, help="bisection steps after the breaking-point search (default 2)")
    p.add_argument("--small-duration", default=None, help="small-push run length (default 10s; --quick: 3s)")
    p.add_argument("--small-pipeline", type=int, default=16,
                   help="pushes in flight per connection in the pipelined small-push runs (default 16; "
                        "1: run only the one-at-a-time small-push runs)")
    p.add_argument("--max-ram-fraction", type=float, default=0.6,
                   help="skip a breaking-point scale whose estimated peak RSS would pass this fraction of RAM, and kill any "
                        "gateway whose RSS passes it (default 0.6)")
    p.add_argument("--only", default="", help="comma-separated groups: small,ringgate,official,official-nocheck,spike,breaking,soak")
    p.add_argument("--seed", type=int, default=1, help="load generator seed (default 1)")
    p.add_argument("--out", default=None, help="output directory (default bench-results/showcase/<UTC date-time>[-quick])")
    p.add_argument("--report", default=None,
                   help="README to generate (default bench-results/README.md; --quick: <out>/README.md)")
    p.add_argument("--no-report", action="store_true", help="do not run bench/report.py at the end")
    p.add_argument("--no-build", action="store_true", help="(bench/showcase.sh) use the binaries already built")
    p.add_argument("--worktree", action="store_true",
                   help="(bench/showcase.sh) build the working tree instead of a git archive of HEAD")
    p.add_argument("--ringgate-target-dir", default=os.environ.get("RINGGATE_TARGET_DIR", "/work/target-bench"))
    p.add_argument("--loadgen-target-dir", default=os.environ.get("LOADGEN_TARGET_DIR", "/work/target-loadgen"))
    a = p.parse_args()

    q = a.quick
    a.cycle_s = parse_dur(a.cycle or ("10s" if q else "60s"))
    a.jitter_s = parse_dur(a.jitter or ("5s" if q else "20s"))
    a.soak_s = parse_dur(a.soak or ("60s" if q else "30m"))
    a.small_s = parse_dur(a.small_duration or ("3s" if q else "10s"))
    a.probe_interval_s = 5.0 if q else 10.0
    a.ladder = [int(x) for x in (a.ladder or ("10,50" if q else "10,100,250,500,750,1000")).split(",")]
    a.breaking = [int(x) for x in (a.breaking or ("100,200" if q else "2000,5000,7500,10000,15000,20000")).split(",")]
    a.spike_nodes = 50 if q else 1000
    a.soak_nodes = 100 if q else 1000
    if q:
        a.refine = min(a.refine, 1)
    a.only = [x for x in a.only.split(",") if x]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%MZ") + ("-quick" if q else "")
    a.out = os.path.abspath(a.out or os.path.join(ROOT, "bench-results", "showcase", stamp))
    a.report = a.report or (os.path.join(a.out, "README.md") if q else os.path.join(ROOT, "bench-results", "README.md"))
    if a.soak_s < 30 * 60 and not q:
        log(f"note: soak of {a.soak_s:.0f} s is shorter than the 30 minutes issue 5 asks for")

    sc = Showcase(a)
    log(f"showcase: writing {a.out}")
    try:
        sc.main()
    finally:
        if not a.no_report:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "report.py"), a.out, "--out", a.report], check=False)


if __name__ == "__main__":
    main()
