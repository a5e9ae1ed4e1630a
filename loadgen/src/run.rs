//! The run: push workers (stress or small mode), the /metrics prober and the monitor that
//! samples the server's /proc entry and builds the time series.

use crate::http::{Body, Conn, ReqError, Target};
use crate::json::Json;
use crate::payload::{node_name, Kind, Payloads};
use crate::procfs::{self, ProcSample};
use crate::rng::Rng;
use crate::stats::{ErrorKind, Errors, Histogram, Snapshot};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod small;

const WORKER_STACK: usize = 256 * 1024;
const WORKER_RBUF: usize = 8 * 1024;
const PROBE_RBUF: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    pub small: bool,
    pub nodes: u32,
    pub cycle: Duration,
    pub jitter: Duration,
    pub cycles: u32,
    pub duration: Duration,
    pub connections: usize,
    pub timeout: Duration,
    pub method: &'static str,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub final_probe: bool,
    pub server_pid: Option<u32>,
    pub sample_interval: Duration,
    pub series_interval: Duration,
    pub seed: u64,
    pub groups: u32,
    /// Small mode: event-loop threads driving the connections.
    pub small_threads: usize,
    /// Small mode: pushes in flight per connection (1: no pipelining).
    pub small_pipeline: usize,
    /// Small mode: the event loops run as SCHED_BATCH (see `small.rs`).
    pub small_sched_batch: bool,
}

#[derive(Default)]
struct KindStats {
    pushes: AtomicU64,
    ok: AtomicU64,
    bytes: AtomicU64,
}

/// Everything the threads share.
struct Shared {
    start: Instant,
    /// All pushes finished: the prober stops.
    done: AtomicBool,
    /// Final probes finished too: the monitor takes its last sample and stops (so the server's
    /// RSS and CPU during the final scrapes are counted).
    monitor_stop: AtomicBool,
    latency: Histogram,
    latency_ok: Histogram,
    queue_wait: Histogram,
    pushes: AtomicU64,
    ok: AtomicU64,
    bytes_sent: AtomicU64,
    connects: AtomicU64,
    by_kind: [KindStats; 5],
    /// Stress mode: per push cycle, every push's latency and the successes. The first cycle
    /// creates every group, the later ones replace them: a gateway's store grows only in the
    /// first.
    by_cycle: Vec<(Histogram, AtomicU64)>,
    errors: Errors,
}

impl Shared {
    fn new(start: Instant, cycles: usize) -> Shared {
        Shared {
            by_cycle: (0..cycles).map(|_| (Histogram::new(), AtomicU64::new(0))).collect(),
            start,
            done: AtomicBool::new(false),
            monitor_stop: AtomicBool::new(false),
            latency: Histogram::new(),
            latency_ok: Histogram::new(),
            queue_wait: Histogram::new(),
            pushes: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            by_kind: Default::default(),
            errors: Errors::new(),
        }
    }

    /// Records one finished push. `sched` is when it was due, so latency includes any wait
    /// for a free connection, as a pooled client with a total timeout experiences it.
    fn record(
        &self,
        kind: Option<Kind>,
        cycle: Option<u64>,
        sched: Instant,
        bytes: usize,
        r: &Result<crate::http::Response, ReqError>,
    ) {
        let lat = sched.elapsed();
        self.pushes.fetch_add(1, Relaxed);
        self.latency.record(lat);
        let by_cycle = cycle.and_then(|c| self.by_cycle.get(c as usize));
        if let Some((h, _)) = by_cycle {
            h.record(lat);
        }
        let ks = kind.map(|k| &self.by_kind[k.index()]);
        if let Some(ks) = ks {
            ks.pushes.fetch_add(1, Relaxed);
        }
        match r {
            Ok(resp) if (200..300).contains(&resp.status) => {
                self.ok.fetch_add(1, Relaxed);
                if let Some((_, ok)) = by_cycle {
                    ok.fetch_add(1, Relaxed);
                }
                self.latency_ok.record(lat);
                self.bytes_sent.fetch_add(bytes as u64, Relaxed);
                if let Some(ks) = ks {
                    ks.ok.fetch_add(1, Relaxed);
                    ks.bytes.fetch_add(bytes as u64, Relaxed);
                }
            }
            Ok(resp) => self.errors.status(resp.status, &resp.body_head),
            Err(ReqError::Timeout(m)) => self.errors.kind(ErrorKind::Timeout, m),
            Err(ReqError::Connect(m)) => self.errors.kind(ErrorKind::Connect, m),
            Err(ReqError::Io(m)) => self.errors.kind(ErrorKind::Io, m),
        }
    }

    fn record_queued_timeout(&self, kind: Option<Kind>, cycle: u64, sched: Instant) {
        self.pushes.fetch_add(1, Relaxed);
        self.latency.record(sched.elapsed());
        if let Some((h, _)) = self.by_cycle.get(cycle as usize) {
            h.record(sched.elapsed());
        }
        if let Some(k) = kind {
            self.by_kind[k.index()].pushes.fetch_add(1, Relaxed);
        }
        self.errors.kind(ErrorKind::TimeoutQueued, "client timeout expired before a pooled connection was free");
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

/// Sleeps until `t` unless `done` is set first (checked every 100 ms); true if `t` reached.
fn sleep_until_or_done(t: Instant, done: &AtomicBool) -> bool {
    loop {
        if done.load(Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= t {
            return true;
        }
        thread::sleep((t - now).min(Duration::from_millis(100)));
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    at: Duration,
    kind: Kind,
    node: u32,
    seq: u64,
}

/// Every push of the run, sorted by due time: per cycle and node the four node pushes, plus
/// one cluster pod-metrics push per cycle, each at a uniform random 0..jitter offset.
fn schedule(cfg: &RunConfig) -> Vec<Job> {
    let mut rng = Rng::new(cfg.seed);
    let mut jobs = Vec::new();
    let jit = cfg.jitter.as_secs_f64();
    for c in 0..cfg.cycles {
        let base = cfg.cycle * c;
        let mut off = || base + Duration::from_secs_f64(jit * rng.f64());
        for node in 1..=cfg.nodes {
            for kind in Kind::PER_NODE {
                jobs.push(Job { at: off(), kind, node, seq: c as u64 });
            }
        }
        jobs.push(Job { at: off(), kind: Kind::Pod, node: 0, seq: c as u64 });
    }
    jobs.sort_by_key(|j| j.at);
    jobs
}

fn push_path(kind: Kind, node: u32) -> String {
    match kind {
        Kind::Pod => format!("/metrics/job/{}", kind.job()),
        _ => format!("/metrics/job/{}/instance/{}", kind.job(), node_name(node)),
    }
}

const CONTENT_TYPE: &str = "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n";

/// The connection pool: one thread per pooled connection, fed by a dispatcher that releases
/// each push when it is due. A due push goes to the most recently idle worker (LIFO, so warm
/// keep-alive connections are reused and no more sockets are opened than the concurrency
/// needs), or waits in a FIFO backlog when all `connections` are busy, as in a pooled HTTP
/// client. Invariant (under the lock): `idle` and `backlog` are never both non-empty.
struct Pool {
    state: Mutex<PoolState>,
    wake: Vec<Condvar>,
}

struct PoolState {
    backlog: VecDeque<Job>,
    idle: Vec<usize>,
    slots: Vec<Option<Job>>,
    finished: bool,
}

impl Pool {
    /// Blocks until there is a job for worker `me`; None when the run is over.
    fn next(&self, me: usize) -> Option<Job> {
        let mut st = self.state.lock().unwrap();
        if let Some(j) = st.backlog.pop_front() {
            return Some(j);
        }
        st.idle.push(me);
        loop {
            if let Some(j) = st.slots[me].take() {
                return Some(j);
            }
            if st.finished {
                return None;
            }
            st = self.wake[me].wait(st).unwrap();
        }
    }

    fn dispatch(&self, job: Job) {
        let mut st = self.state.lock().unwrap();
        match st.idle.pop() {
            Some(w) => {
                st.slots[w] = Some(job);
                self.wake[w].notify_one();
            }
            None => st.backlog.push_back(job),
        }
    }

    fn finish(&self) {
        self.state.lock().unwrap().finished = true;
        for c in &self.wake {
            c.notify_one();
        }
    }
}

fn stress_workers(cfg: &RunConfig, payloads: &Arc<Payloads>, shared: &Arc<Shared>) -> Vec<thread::JoinHandle<()>> {
    let jobs = schedule(cfg);
    let n = cfg.connections.min(jobs.len()).max(1);
    let pool = Arc::new(Pool {
        state: Mutex::new(PoolState {
            backlog: VecDeque::new(),
            idle: Vec::with_capacity(n),
            slots: vec![None; n],
            finished: false,
        }),
        wake: (0..n).map(|_| Condvar::new()).collect(),
    });
    let mut handles: Vec<_> = (0..n)
        .map(|w| {
            let (pool, payloads, shared) = (pool.clone(), payloads.clone(), shared.clone());
            let cfg = cfg.clone();
            thread::Builder::new()
                .name(format!("push-{w}"))
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let mut conn = Conn::with_buffer(cfg.target.clone(), WORKER_RBUF);
                    while let Some(job) = pool.next(w) {
                        let sched = shared.start + job.at;
                        let deadline = sched + cfg.timeout;
                        let now = Instant::now();
                        shared.queue_wait.record(now.saturating_duration_since(sched));
                        if now >= deadline {
                            shared.record_queued_timeout(Some(job.kind), job.seq, sched);
                            continue;
                        }
                        let p = payloads.get(job.kind);
                        let r = conn.request(
                            cfg.method,
                            &push_path(job.kind, job.node),
                            CONTENT_TYPE,
                            Body::Template(p, job.node, job.seq),
                            deadline,
                        );
                        shared.record(Some(job.kind), Some(job.seq), sched, p.len(), &r);
                    }
                    shared.connects.fetch_add(conn.connects, Relaxed);
                })
                .expect("spawn worker")
        })
        .collect();
    let start = shared.start;
    handles.push(
        thread::Builder::new()
            .name("dispatch".into())
            .spawn(move || {
                for job in jobs {
                    sleep_until(start + job.at);
                    pool.dispatch(job);
                }
                pool.finish();
            })
            .expect("spawn dispatcher"),
    );
    handles
}

fn small_workers(cfg: &RunConfig, shared: &Arc<Shared>) -> Vec<thread::JoinHandle<()>> {
    small::start(
        &cfg.target,
        cfg.method,
        cfg.groups,
        cfg.timeout,
        cfg.connections,
        cfg.small_threads,
        cfg.small_pipeline,
        cfg.small_sched_batch,
        shared,
        shared.start + cfg.duration,
    )
}

// ---------------------------------------------------------------------------------------
// prober

#[derive(Clone, Debug)]
struct Probe {
    t: f64,
    phase: &'static str,
    gzip: bool,
    status: Option<u16>,
    bytes: u64,
    seconds: f64,
    ttfb: Option<f64>,
    content_encoding: Option<String>,
    error: Option<String>,
}

impl Probe {
    fn to_json(&self) -> Json {
        Json::obj()
            .with("t", self.t)
            .with("phase", self.phase)
            .with("gzip", self.gzip)
            .with("status", self.status)
            .with("bytes", self.bytes)
            .with("seconds", self.seconds)
            .with("ttfb_seconds", self.ttfb)
            .with("content_encoding", self.content_encoding.clone())
            .with("error", self.error.clone())
    }
}

fn probe(target: &Target, timeout: Duration, gzip: bool, start: Instant, phase: &'static str) -> Probe {
    let mut conn = Conn::with_buffer(target.clone(), PROBE_RBUF);
    let t0 = Instant::now();
    let hdr = if gzip { "Accept-Encoding: gzip\r\nConnection: close\r\n" } else { "Connection: close\r\n" };
    let r = conn.request("GET", "/metrics", hdr, Body::Empty, t0 + timeout);
    let seconds = t0.elapsed().as_secs_f64();
    let t = (t0 - start).as_secs_f64();
    match r {
        Ok(resp) => Probe {
            t,
            phase,
            gzip,
            status: Some(resp.status),
            bytes: resp.body_bytes,
            seconds,
            ttfb: Some(resp.ttfb.as_secs_f64()),
            content_encoding: resp.content_encoding,
            error: None,
        },
        Err(e) => Probe {
            t,
            phase,
            gzip,
            status: None,
            bytes: 0,
            seconds,
            ttfb: None,
            content_encoding: None,
            error: Some(format!("{e:?}")),
        },
    }
}

// ---------------------------------------------------------------------------------------
// monitor

#[derive(Default)]
struct ServerStats {
    first: Option<ProcSample>,
    last: Option<ProcSample>,
    peak_rss: u64,
    exited: bool,
}

struct Point {
    t: f64,
    pushes: u64,
    ok: u64,
    window: Snapshot,
    rss: Option<u64>,
    cpu: Option<f64>,
}

fn monitor(cfg: RunConfig, shared: Arc<Shared>, server: Arc<Mutex<ServerStats>>, series: Arc<Mutex<Vec<Point>>>) {
    let mut prev = Snapshot::empty();
    let mut next_point = shared.start + cfg.series_interval;
    let mut next_sample = Instant::now();
    let sample = |server: &Mutex<ServerStats>| {
        if let Some(pid) = cfg.server_pid {
            let mut s = server.lock().unwrap();
            match procfs::sample(pid) {
                Some(p) => {
                    s.first.get_or_insert(p);
                    s.last = Some(p);
                    s.peak_rss = s.peak_rss.max(p.rss_bytes);
                }
                None => s.exited = true,
            }
        }
    };
    let point = |prev: &mut Snapshot, server: &Mutex<ServerStats>| {
        let snap = shared.latency.snapshot();
        let (rss, cpu) = {
            let s = server.lock().unwrap();
            match (s.first, s.last) {
                (Some(f), Some(l)) if !s.exited => (Some(l.rss_bytes), Some(l.cpu_seconds - f.cpu_seconds)),
                _ => (None, None),
            }
        };
        series.lock().unwrap().push(Point {
            t: shared.start.elapsed().as_secs_f64(),
            pushes: shared.pushes.load(Relaxed),
            ok: shared.ok.load(Relaxed),
            window: snap.since(prev),
            rss,
            cpu,
        });
        *prev = snap;
    };
    loop {
        let now = Instant::now();
        if now >= next_sample {
            sample(&server);
            next_sample = now + cfg.sample_interval.max(Duration::from_millis(50));
        }
        if now >= next_point && !cfg.series_interval.is_zero() {
            point(&mut prev, &server);
            next_point += cfg.series_interval;
        }
        if shared.monitor_stop.load(Relaxed) {
            break;
        }
        let wake = next_sample.min(next_point);
        thread::sleep(wake.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)));
    }
    sample(&server);
    // A closing point, unless one was taken moments ago.
    let last_t = series.lock().unwrap().last().map(|p| p.t);
    let now_t = shared.start.elapsed().as_secs_f64();
    if !cfg.series_interval.is_zero() && last_t.map_or(true, |t| now_t - t > cfg.series_interval.as_secs_f64() / 20.0) {
        point(&mut prev, &server);
    }
}

// ---------------------------------------------------------------------------------------

/// Runs the whole thing and returns the JSON report.
pub fn run(cfg: RunConfig, payloads: Option<Arc<Payloads>>) -> Json {
    let started_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    // Give the threads a moment to spawn so a spike (jitter 0) really starts at once.
    let start = Instant::now() + Duration::from_millis(250);
    let self_before = procfs::sample(std::process::id());
    let shared = Arc::new(Shared::new(start, if cfg.small { 0 } else { cfg.cycles as usize }));
    let server = Arc::new(Mutex::new(ServerStats::default()));
    let series = Arc::new(Mutex::new(Vec::new()));
    let probes = Arc::new(Mutex::new(Vec::<Probe>::new()));

    let mon = {
        let (cfg, shared, server, series) = (cfg.clone(), shared.clone(), server.clone(), series.clone());
        thread::Builder::new()
            .name("monitor".into())
            .spawn(move || monitor(cfg, shared, server, series))
            .expect("spawn monitor")
    };
    let prober = (!cfg.probe_interval.is_zero()).then(|| {
        let (cfg, shared, probes) = (cfg.clone(), shared.clone(), probes.clone());
        thread::Builder::new()
            .name("prober".into())
            .spawn(move || {
                for k in 1u32.. {
                    let at = shared.start + cfg.probe_interval * k;
                    if !sleep_until_or_done(at, &shared.done) {
                        break;
                    }
                    let p = probe(&cfg.target, cfg.probe_timeout, k % 2 == 0, shared.start, "during");
                    eprintln!(
                        "  probe t={:.0}s gzip={} status={} bytes={} {:.2}s{}",
                        p.t,
                        p.gzip,
                        p.status.map_or("-".to_string(), |s| s.to_string()),
                        p.bytes,
                        p.seconds,
                        p.error.as_deref().map(|e| format!(" error={e}")).unwrap_or_default()
                    );
                    probes.lock().unwrap().push(p);
                }
            })
            .expect("spawn prober")
    });

    let workers = match &payloads {
        Some(p) if !cfg.small => stress_workers(&cfg, p, &shared),
        _ => small_workers(&cfg, &shared),
    };
    for w in workers {
        let _ = w.join();
    }
    let push_end = Instant::now();
    shared.done.store(true, Relaxed);
    if let Some(p) = prober {
        let _ = p.join();
    }
    if cfg.final_probe {
        for gzip in [false, true] {
            let p = probe(&cfg.target, cfg.probe_timeout, gzip, start, "final");
            probes.lock().unwrap().push(p);
        }
    }
    shared.monitor_stop.store(true, Relaxed);
    let _ = mon.join();

    // ---- report
    let elapsed = push_end.saturating_duration_since(start).as_secs_f64();
    let pushes = shared.pushes.load(Relaxed);
    let ok = shared.ok.load(Relaxed);
    let mut j = Json::obj()
        .with("tool", "ringgate-loadgen")
        .with("version", env!("CARGO_PKG_VERSION"))
        .with("mode", if cfg.small { "small" } else { "stress" })
        .with("target", cfg.target.host.clone())
        .with("started_unix", started_unix);
    let mut c = Json::obj()
        .with("connections", cfg.connections)
        .with("timeout_s", cfg.timeout.as_secs_f64())
        .with("method", cfg.method)
        .with("probe_interval_s", cfg.probe_interval.as_secs_f64())
        .with("probe_timeout_s", cfg.probe_timeout.as_secs_f64())
        .with("seed", cfg.seed);
    if cfg.small {
        c.push("duration_s", cfg.duration.as_secs_f64());
        c.push("groups", cfg.groups);
        c.push("pipeline", cfg.small_pipeline);
        c.push("threads", cfg.small_threads);
        c.push("sched", if cfg.small_sched_batch { "batch" } else { "normal" });
    } else {
        c.push("nodes", cfg.nodes);
        c.push("cycle_s", cfg.cycle.as_secs_f64());
        c.push("jitter_s", cfg.jitter.as_secs_f64());
        c.push("cycles", cfg.cycles);
        if let Some(p) = &payloads {
            let mut sizes = Json::obj();
            for k in Kind::ALL {
                sizes.push(k.name(), p.get(k).len());
            }
            c.push("payload_bytes", sizes);
            let per_cycle: usize = Kind::PER_NODE.iter().map(|&k| p.get(k).len()).sum::<usize>() * cfg.nodes as usize
                + p.get(Kind::Pod).len();
            c.push("bytes_per_cycle", per_cycle);
            c.push("pushes_per_cycle", cfg.nodes as u64 * 4 + 1);
            c.push(
                "node_exporter_scale",
                Json::obj()
                    .with("cpus", p.node_scale.cpus)
                    .with("ib_ports", p.node_scale.ib)
                    .with("nvme_disks", p.node_scale.nvme)
                    .with("pods", p.node_scale.pods),
            );
        }
    }
    j.push("config", c);
    j.push("elapsed_s", elapsed);
    j.push("pushes", pushes);
    j.push("successes", ok);
    j.push("success_rate", if pushes > 0 { ok as f64 / pushes as f64 } else { 0.0 });
    if cfg.small {
        j.push("pushes_per_s", if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 });
    }
    j.push("bytes_sent_ok", shared.bytes_sent.load(Relaxed));
    let lat = shared.latency.snapshot();
    let lat_ok = shared.latency_ok.snapshot();
    j.push("latency_s", lat.to_json());
    j.push("latency_ok_s", lat_ok.to_json());
    if !cfg.small {
        j.push("queue_wait_s", shared.queue_wait.snapshot().to_json());
        let mut bk = Json::obj();
        for k in Kind::ALL {
            let s = &shared.by_kind[k.index()];
            bk.push(
                k.name(),
                Json::obj()
                    .with("job", k.job())
                    .with("pushes", s.pushes.load(Relaxed))
                    .with("successes", s.ok.load(Relaxed))
                    .with("bytes_ok", s.bytes.load(Relaxed)),
            );
        }
        j.push("by_kind", bk);
        let cycles = shared.by_cycle.iter().map(|(h, ok)| {
            let lat = h.snapshot();
            let n = lat.count();
            Json::obj()
                .with("pushes", n)
                .with("successes", ok.load(Relaxed))
                .with("success_rate", if n > 0 { ok.load(Relaxed) as f64 / n as f64 } else { 0.0 })
                .with("latency_s", lat.to_json())
        });
        j.push("by_cycle", Json::Arr(cycles.collect()));
    }
    j.push("errors", shared.errors.to_json());
    j.push("connections_opened", shared.connects.load(Relaxed));
    let probes = probes.lock().unwrap().clone();
    j.push("probes", Json::Arr(probes.iter().map(Probe::to_json).collect()));
    let srv = server.lock().unwrap();
    let server_json = cfg.server_pid.map(|pid| {
        let cpu = match (srv.first, srv.last) {
            (Some(f), Some(l)) => Some(l.cpu_seconds - f.cpu_seconds),
            _ => None,
        };
        Json::obj()
            .with("pid", pid)
            .with("peak_rss_bytes", srv.peak_rss)
            .with("rss_start_bytes", srv.first.map(|s| s.rss_bytes))
            .with("rss_end_bytes", srv.last.map(|s| s.rss_bytes))
            .with("vm_hwm_bytes", srv.last.map(|s| s.hwm_bytes))
            .with("cpu_seconds", cpu)
            .with("exited", srv.exited)
    });
    j.push("server", server_json);
    // The generator's own cost, to show it was not the bottleneck.
    let self_after = procfs::sample(std::process::id());
    j.push(
        "loadgen",
        Json::obj()
            .with("cpu_seconds", self_before.zip(self_after).map(|(a, b)| b.cpu_seconds - a.cpu_seconds))
            .with("peak_rss_bytes", self_after.map(|s| s.hwm_bytes)),
    );
    let pts: Vec<Json> = series
        .lock()
        .unwrap()
        .iter()
        .map(|p| {
            Json::obj()
                .with("t", p.t)
                .with("pushes_done", p.pushes)
                .with("successes", p.ok)
                .with("window_pushes", p.window.total)
                .with("window_p99_s", p.window.quantile(0.99))
                .with("rss_bytes", p.rss)
                .with("cpu_seconds", p.cpu)
        })
        .collect();
    j.push("series", Json::Arr(pts));

    // ---- human summary
    eprintln!();
    eprintln!(
        "ringgate-loadgen {} against {}: {} pushes, {} ok ({:.1}%) in {:.1}s{}",
        if cfg.small { "small" } else { "stress" },
        cfg.target.host,
        pushes,
        ok,
        if pushes > 0 { 100.0 * ok as f64 / pushes as f64 } else { 0.0 },
        elapsed,
        if cfg.small && elapsed > 0.0 { format!(", {:.0} pushes/s", ok as f64 / elapsed) } else { String::new() }
    );
    let f = |v: Option<f64>| match v {
        None => "-".to_string(),
        Some(v) if v < 1.0 => format!("{:.3}ms", v * 1e3),
        Some(v) => format!("{v:.2}s"),
    };
    eprintln!(
        "  latency p50 {} p95 {} p99 {} max {}",
        f(lat.quantile(0.5)),
        f(lat.quantile(0.95)),
        f(lat.quantile(0.99)),
        f(lat.max_s())
    );
    if let (Some(a), Some(b)) = (self_before, self_after) {
        eprintln!(
            "  loadgen itself: CPU {:.2}s, peak RSS {:.1} MiB",
            b.cpu_seconds - a.cpu_seconds,
            b.hwm_bytes as f64 / 1048576.0
        );
    }
    if shared.errors.total() > 0 {
        eprintln!("  errors: {}", compact(&shared.errors.to_json()));
    }
    for p in &probes {
        eprintln!(
            "  scrape t={:.1}s {}{}: status {} {} bytes in {:.2}s{}",
            p.t,
            p.phase,
            if p.gzip { " gzip" } else { "" },
            p.status.map_or("-".into(), |s| s.to_string()),
            p.bytes,
            p.seconds,
            p.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    if let Some(pid) = cfg.server_pid {
        let cpu = match (srv.first, srv.last) {
            (Some(f), Some(l)) => l.cpu_seconds - f.cpu_seconds,
            _ => 0.0,
        };
        eprintln!(
            "  server pid {pid}: peak RSS {:.1} MiB (VmHWM {:.1} MiB), CPU {:.2}s{}",
            srv.peak_rss as f64 / 1048576.0,
            srv.last.map_or(0, |s| s.hwm_bytes) as f64 / 1048576.0,
            cpu,
            if srv.exited { ", EXITED during the run" } else { "" }
        );
    }
    j
}

fn compact(j: &Json) -> String {
    let s = j.to_pretty();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RunConfig {
        RunConfig {
            target: crate::http::parse_target("127.0.0.1:1").unwrap(),
            small: false,
            nodes: 3,
            cycle: Duration::from_secs(60),
            jitter: Duration::from_secs(20),
            cycles: 2,
            duration: Duration::ZERO,
            connections: 500,
            timeout: Duration::from_secs(30),
            method: "PUT",
            probe_interval: Duration::ZERO,
            probe_timeout: Duration::from_secs(1),
            final_probe: false,
            server_pid: None,
            sample_interval: Duration::from_secs(1),
            series_interval: Duration::from_secs(10),
            seed: 1,
            groups: 10,
            small_threads: 1,
            small_pipeline: 1,
            small_sched_batch: true,
        }
    }

    #[test]
    fn schedule_shape() {
        let c = cfg();
        let jobs = schedule(&c);
        assert_eq!(jobs.len(), 2 * (3 * 4 + 1));
        assert!(jobs.windows(2).all(|w| w[0].at <= w[1].at));
        for j in &jobs {
            let in_cycle = j.at - c.cycle * j.seq as u32;
            assert!(in_cycle < c.jitter, "{j:?}");
        }
        assert_eq!(jobs.iter().filter(|j| j.kind == Kind::Pod).count(), 2);
        let mut spike = cfg();
        spike.jitter = Duration::ZERO;
        assert!(schedule(&spike).iter().all(|j| j.at.as_secs() % 60 == 0));
    }

    /// A minimal HTTP/1.1 server: 200 to every PUT/POST, a small body for GET /metrics.
    fn mini_server() -> (crate::http::Target, Arc<AtomicU64>) {
        let (t, accepted, _) = mini_server_counting_pipelined();
        (t, accepted)
    }

    /// [`mini_server`], also counting the most request heads ever buffered at once on one
    /// connection (more than 1: the client pipelines).
    fn mini_server_counting_pipelined() -> (crate::http::Target, Arc<AtomicU64>, Arc<AtomicU64>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t = crate::http::parse_target(&l.local_addr().unwrap().to_string()).unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let (acc, most_seen) = (accepted.clone(), most.clone());
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                acc.fetch_add(1, Relaxed);
                let most_seen = most_seen.clone();
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut b = vec![0u8; 1 << 16];
                    loop {
                        let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut b) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&b[..n]),
                            }
                            continue;
                        };
                        let heads = buf.windows(4).filter(|w| w == b"\r\n\r\n").count();
                        most_seen.fetch_max(heads as u64, Relaxed);
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let cl: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < i + 4 + cl {
                            match s.read(&mut b) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&b[..n]),
                            }
                        }
                        buf.drain(..i + 4 + cl);
                        let resp = if head.starts_with("GET") {
                            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nup 1"
                        } else {
                            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                        };
                        if s.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (t, accepted, most)
    }

    #[test]
    fn stress_run_end_to_end() {
        let (target, accepted) = mini_server();
        let capture =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/node-exporter-2cpu.prom"))
                .unwrap();
        let sizes = crate::payload::Sizes { gpu_bytes: 50_000, node_cpus: 4, node_bytes: 60_000, ..Default::default() };
        let payloads = Arc::new(Payloads::build(&sizes, &capture, 3).unwrap());
        let mut c = cfg();
        c.target = target;
        c.cycle = Duration::from_millis(400);
        c.jitter = Duration::from_millis(200);
        c.connections = 2;
        c.probe_interval = Duration::from_millis(300);
        c.final_probe = true;
        c.server_pid = Some(std::process::id());
        c.series_interval = Duration::from_millis(200);
        let r = run(c, Some(payloads));
        let int = |k: &str| r.get(k).and_then(Json::as_i64).unwrap();
        assert_eq!(int("pushes"), 2 * 13);
        assert_eq!(int("successes"), 2 * 13);
        // Each cycle's pushes counted apart: the first creates the groups, the second replaces.
        let Some(Json::Arr(cycles)) = r.get("by_cycle") else { panic!("no by_cycle") };
        assert_eq!(cycles.len(), 2);
        for c in cycles {
            assert_eq!(c.get("pushes").and_then(Json::as_i64), Some(13));
            assert_eq!(c.get("successes").and_then(Json::as_i64), Some(13));
            assert!(c.get("latency_s").and_then(|l| l.get("p99")).is_some());
        }
        // Two pooled keep-alive connections at most, plus one per probe.
        assert!(int("connections_opened") <= 2, "{}", int("connections_opened"));
        let Some(Json::Arr(probes)) = r.get("probes") else { panic!("no probes") };
        assert!(probes.len() >= 3);
        assert!(accepted.load(Relaxed) as usize <= 2 + probes.len());
        let Some(Json::Arr(series)) = r.get("series") else { panic!("no series") };
        assert!(series.len() >= 2);
        assert!(r.get("server").and_then(|s| s.get("peak_rss_bytes")).is_some());
    }

    #[test]
    fn small_run_end_to_end() {
        let (target, _) = mini_server();
        let mut c = cfg();
        c.target = target;
        c.small = true;
        c.duration = Duration::from_millis(300);
        c.connections = 3;
        c.final_probe = false;
        let r = run(c, None);
        let pushes = r.get("pushes").and_then(Json::as_i64).unwrap();
        assert!(pushes > 10, "{pushes}");
        assert_eq!(r.get("successes").and_then(Json::as_i64), Some(pushes));
        assert_eq!(r.get("connections_opened").and_then(Json::as_i64), Some(3));
    }

    #[test]
    fn small_run_spreads_connections_over_event_loops() {
        let (target, accepted) = mini_server();
        let mut c = cfg();
        c.target = target;
        c.small = true;
        c.duration = Duration::from_millis(300);
        c.connections = 5;
        c.small_threads = 2;
        let r = run(c, None);
        let pushes = r.get("pushes").and_then(Json::as_i64).unwrap();
        assert!(pushes > 10, "{pushes}");
        assert_eq!(r.get("successes").and_then(Json::as_i64), Some(pushes));
        assert_eq!(r.get("connections_opened").and_then(Json::as_i64), Some(5));
        assert_eq!(accepted.load(Relaxed), 5);
    }

    #[test]
    fn small_run_pipelines_up_to_its_depth() {
        let (target, _, most) = mini_server_counting_pipelined();
        let mut c = cfg();
        c.target = target;
        c.small = true;
        c.duration = Duration::from_millis(300);
        c.connections = 2;
        c.small_pipeline = 8;
        let r = run(c, None);
        let pushes = r.get("pushes").and_then(Json::as_i64).unwrap();
        assert!(pushes > 10, "{pushes}");
        assert_eq!(r.get("successes").and_then(Json::as_i64), Some(pushes));
        assert_eq!(r.get("connections_opened").and_then(Json::as_i64), Some(2));
        let seen = most.load(Relaxed);
        assert!((2..=8).contains(&seen), "most requests buffered at once: {seen}");
    }

    #[test]
    fn small_run_event_loops_are_batch_threads() {
        // The policy of a running loop, from /proc (field 41 of a task's stat; 3 = SCHED_BATCH).
        fn loop_policies() -> Vec<u32> {
            let mut out = Vec::new();
            for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                if !comm.starts_with("small-loop-") {
                    continue;
                }
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                if let Some(p) = after.split_whitespace().nth(38).and_then(|f| f.parse().ok()) {
                    out.push(p);
                }
            }
            out
        }
        let (target, _) = mini_server();
        let mut c = cfg();
        c.target = target;
        c.small = true;
        c.duration = Duration::from_millis(600);
        c.connections = 2;
        assert!(c.small_sched_batch, "batch is the default");
        let running = thread::spawn(move || run(c, None));
        let mut seen = Vec::new();
        for _ in 0..40 {
            thread::sleep(Duration::from_millis(10));
            seen = loop_policies();
            if seen.contains(&3) {
                break;
            }
        }
        let r = running.join().unwrap();
        assert!(seen.contains(&3), "policies of the running loops: {seen:?}");
        let sched = r.get("config").and_then(|c| c.get("sched"));
        assert!(matches!(sched, Some(Json::Str(s)) if s == "batch"), "config.sched");
    }

    #[test]
    fn paths() {
        assert_eq!(push_path(Kind::Gpu, 7), "/metrics/job/dcgm_exporter/instance/node-00007");
        assert_eq!(push_path(Kind::Pod, 0), "/metrics/job/pod_metrics");
    }
}
