//! Startup, the per-shard tasks and shutdown.
//!
//! One glommio executor per shard, each pinned to a CPU and accepting on the same address
//! through SO_REUSEPORT. Besides its connections each shard runs one expiry timer task (over
//! its ordered deadline index) and, with `--persistence.file`, one snapshot writer task.
//!
//! Startup: snapshot files are read before any shard accepts; each shard restores the groups
//! it owns. Shutdown (SIGTERM/SIGINT, `/-/quit`, or [`Running::stop`]): every shard stops
//! accepting, waits (bounded) for the requests in flight, waits for the other shards to get
//! there too (they may still need it to apply a push), writes its snapshot, and exits.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::api::{self, unix_now, Outcome, EXPOSITION_CONTENT_TYPE};
use crate::config::Config;
use crate::http::{Conn, Limits, Method, Response};
use crate::metrics::{TRIMS, TRIM_MICROS, TRIM_RETURNED};
use crate::persist;
use crate::shard::{Shard, Shared};
use crate::store::RestoredGroup;
use crate::sys::PortReservation;

/// How long a stopping shard waits for requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// The expiry timer never sleeps longer than this, so a deadline set by a push after the
/// timer went to sleep is still honoured well within a second.
const EXPIRY_TICK: Duration = Duration::from_millis(200);
/// A scrape is written in runs of about this many plain bytes: each run of a gzip scrape is
/// prepared by one blocking thread, and each run's chunks are let go of once it is written.
const SCRAPE_RUN: usize = 16 << 20;

/// Scrapes (`GET /metrics`: snapshot, assembly and writing) run in their own task queue,
/// latency-sensitive and with ten times the shares of the default queue (where connections
/// and pushes run). Its socket waits go to glommio's latency ring, so a scrape whose socket
/// has room again preempts the parsing of pushes at the next task boundary instead of
/// queueing behind every push in flight. The shard mesh's receivers (which apply other
/// shards' pushes and take snapshots for their scrapes) run in a queue of the same kind. A scrape
/// holds every group it will send: while it is being written, pushes that replace those
/// groups keep the old copies alive, so a slow scrape during a burst of pushes costs memory
/// (up to a second copy of the store) as well as time.
const SCRAPE_SHARES: usize = 10_000;
/// Rendered buffers of replaced groups each shard keeps to render the next pushes into
/// (`expo::enable_buffer_reuse`): a few of the largest pushes, small beside the store.
const RENDER_BUFFERS_KEPT: usize = 8 << 20;
/// And the pool all threads share, through which buffers pass from the shard (or scrape)
/// that let go of them to the shard that renders the next push.
const RENDER_BUFFERS_SHARED: usize = 16 << 20;
const SCRAPE_LATENCY: Duration = Duration::from_millis(5);

/// The first pass of a gzip scrape (letting go of the plain bytes of chunks with segments)
/// runs this long between chances for other tasks to run.
const PASS_SLICE: Duration = Duration::from_millis(50);

/// A scrape at least this long is followed by a heap trim.
const TRIM_AFTER_SCRAPE: usize = 16 << 20;

/// Set while a heap trim runs, so that scrapes ending together start one trim, not several.
static TRIMMING: AtomicBool = AtomicBool::new(false);

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub shards: usize,
    pub shared: Arc<Shared>,
    /// Problems met while restoring the snapshot files.
    pub restore_problems: Vec<String>,
    pub restored_groups: usize,
    handles: Option<glommio::PoolThreadHandles<()>>,
}

impl Running {
    /// Asks every shard to stop: stop accepting, drain, flush, exit.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Waits for every shard to finish.
    pub fn join(mut self) {
        if let Some(h) = self.handles.take() {
            let _ = h.join_all();
        }
    }
}

/// Starts every shard and returns once all of them accept connections.
pub fn start(config: Config) -> io::Result<Running> {
    let shards = config.shards;
    let mut restore_problems = Vec::new();
    let mut per_shard: Vec<Vec<RestoredGroup>> = (0..shards).map(|_| Vec::new()).collect();
    let mut restored_groups = 0;
    if let Some(base) = &config.persistence_file {
        let r = persist::restore(base);
        restore_problems = r.problems;
        restored_groups = r.groups.len();
        for g in r.groups {
            let owner = g.key.shard(shards);
            per_shard[owner].push(g);
        }
    }
    let restored = Arc::new(Mutex::new(per_shard));
    let reservation = PortReservation::new(config.listen)?;
    let addr = reservation.addr;
    let config = Arc::new(config);
    let steer = config.steering == crate::config::Steering::Cpu && config.pin && shards > 1;
    let shared = Arc::new(Shared { balance: crate::steer::Balance::new(shards, steer), ..Shared::new() });
    let drained = Arc::new(AtomicUsize::new(0));
    // One bundle of channel ends per shard, each taken by exactly one executor.
    let mesh = Arc::new(Mutex::new(crate::mesh::full::<crate::shard::Msg>(shards, 1024)));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let placement = if config.pin { PoolPlacement::MaxSpread(shards, None) } else { PoolPlacement::Unbound(shards) };
    let handles = {
        let shared = shared.clone();
        LocalExecutorPoolBuilder::new(placement)
            .name("ringgate-shard")
            .blocking_thread_pool_placement(PoolPlacement::Unbound(shards.max(2)))
            .on_all_shards(move || {
                let config = config.clone();
                let shared = shared.clone();
                let mesh = mesh.clone();
                let ready = ready_tx.clone();
                let restored = restored.clone();
                let drained = drained.clone();
                async move {
                    let Some(ends) = mesh.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        let _ = ready.send(Err("more executors than shards".into()));
                        return;
                    };
                    let (senders, receivers) = ends.connect().await;
                    let id = senders.id();
                    crate::expo::set_label_limits(crate::expo::LabelLimits {
                        max_labels: config.max_labels,
                        max_value_len: config.max_label_length,
                    });
                    crate::expo::enable_buffer_reuse(RENDER_BUFFERS_KEPT, RENDER_BUFFERS_SHARED);
                    crate::expo::set_compression(config.compression);
                    crate::http::Body::keep_buffers(config.max_in_flight.min(usize::MAX as u64) as usize);
                    let shard = Rc::new(Shard::new(id, config, shared, Some(senders)));
                    shard.scrape_queue.set(Some(glommio::executor().create_task_queue(
                        glommio::Shares::Static(SCRAPE_SHARES),
                        glommio::Latency::Matters(SCRAPE_LATENCY),
                        "scrape",
                    )));
                    let mesh_queue = glommio::executor().create_task_queue(
                        glommio::Shares::Static(SCRAPE_SHARES),
                        glommio::Latency::Matters(SCRAPE_LATENCY),
                        "mesh",
                    );
                    shard.spawn_receivers(receivers, Some(mesh_queue));
                    let mine = std::mem::take(&mut restored.lock().unwrap_or_else(|p| p.into_inner())[id]);
                    restore_into(&shard, mine);
                    let cpu = if shard.shared.balance.on() { crate::sys::pinned_cpu() } else { None };
                    let (listener, fd) = match crate::sys::listen_reuseport(addr, cpu) {
                        // SAFETY: a listening socket just made, owned by nothing else.
                        Ok(fd) => (unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) }, fd),
                        Err(e) => {
                            let _ = ready.send(Err(format!("shard {id}: cannot listen on {addr}: {e}")));
                            return;
                        }
                    };
                    glommio::spawn_local(expiry_task(shard.clone())).detach();
                    if shard.config.persistence_file.is_some() {
                        glommio::spawn_local(persistence_task(shard.clone())).detach();
                    }
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    shard.stats.steering.set(cpu.is_some());
                    accept_loop(shard.clone(), listener, fd).await;
                    shutdown(&shard, &drained).await;
                }
            })
            .map_err(|e| io::Error::other(format!("cannot start shard executors: {e}")))?
    };
    for _ in 0..shards {
        match ready_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(io::Error::other(msg)),
            Err(_) => {
                let limit = crate::sys::memlock_limit();
                let limit = if limit == u64::MAX { "unlimited".to_string() } else { format!("{} KiB", limit / 1024) };
                return Err(io::Error::other(format!(
                    "a shard did not start within 15 s; the usual cause is the locked-memory limit \
                     (RLIMIT_MEMLOCK is {limit}; io_uring needs a few hundred KiB per shard: \
                     raise it with `ulimit -l` or LimitMEMLOCK=infinity in the unit)"
                )));
            }
        }
    }
    drop(reservation);
    Ok(Running { addr, shards, shared, restore_problems, restored_groups, handles: Some(handles) })
}

fn restore_into(shard: &Shard, groups: Vec<RestoredGroup>) {
    let now_wall = unix_now();
    let now = Instant::now();
    let mut store = shard.store.borrow_mut();
    for g in groups {
        let deadline = match g.expires_at {
            // Expired while the gateway was down.
            Some(t) if t <= now_wall => continue,
            Some(t) => Some(now + Duration::from_secs_f64(t - now_wall)),
            None => None,
        };
        let key = g.key.to_string();
        if !store.restore(g, deadline) {
            crate::warn!("msg=\"restored group skipped: its types conflict with another group\" group={key}");
        }
    }
    // Restored state is what is on disk already.
    store.version = 0;
}

/// Drops expired groups on time: sleeps until the next deadline, at most one tick.
async fn expiry_task(shard: Rc<Shard>) {
    loop {
        let next = shard.store.borrow_mut().expire(Instant::now());
        let nap = next.map_or(EXPIRY_TICK, |d| d.saturating_duration_since(Instant::now()).min(EXPIRY_TICK));
        glommio::timer::sleep(nap.max(Duration::from_millis(1))).await;
    }
}

/// Writes this shard's snapshot every `--persistence.interval` when something changed.
async fn persistence_task(shard: Rc<Shard>) {
    let mut written = 0u64;
    loop {
        glommio::timer::sleep(shard.config.persistence_interval).await;
        if shard.store.borrow().version != written {
            written = write_snapshot(&shard).await.unwrap_or(written);
        }
    }
}

/// Writes the snapshot on a blocking thread; returns the store version written.
async fn write_snapshot(shard: &Shard) -> Option<u64> {
    let base = shard.config.persistence_file.clone()?;
    let (version, groups) = shard.persist_view();
    let (id, shards) = (shard.id, shard.shards);
    let result = glommio::executor()
        .spawn_blocking(move || {
            crate::sys::lower_thread_priority();
            persist::write(&base, id, shards, &groups)
        })
        .await;
    match result {
        Ok(_) => {
            shard.stats.persist_ok.set(shard.stats.persist_ok.get() + 1);
            Some(version)
        }
        Err(e) => {
            shard.stats.persist_failed.set(shard.stats.persist_failed.get() + 1);
            crate::error!("msg=\"cannot write snapshot; still serving\" shard={id} err=\"{e}\"");
            None
        }
    }
}

async fn shutdown(shard: &Shard, drained: &AtomicUsize) {
    let until = Instant::now() + DRAIN_LIMIT;
    while shard.in_flight.get() > 0 && Instant::now() < until {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    // Other shards may still hand this one pushes for its groups: wait until all are drained.
    drained.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + DRAIN_LIMIT;
    while drained.load(Ordering::SeqCst) < shard.shards && Instant::now() < until {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    if shard.config.persistence_file.is_some() && shard.store.borrow().version != 0 {
        write_snapshot(shard).await;
    }
    // Everyone flushed before any executor goes away (a peer's mesh must stay alive for it).
    drained.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + DRAIN_LIMIT;
    while drained.load(Ordering::SeqCst) < 2 * shard.shards && Instant::now() < until {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// Accepts connections on `listener` (socket `fd`) until the gateway stops.
async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, fd: std::os::fd::RawFd) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            loop {
                glommio::timer::sleep(Duration::from_millis(50)).await;
                if shard.shared.stop.load(Ordering::Relaxed) {
                    return None;
                }
            }
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => {
                shard.stats.accepted.set(shard.stats.accepted.get() + 1);
                if shard.stats.steering.get() {
                    keep_steering(&shard, fd);
                }
                s
            }
            Some(Err(e)) => {
                crate::warn!("msg=\"accept failed\" shard={} err=\"{e}\"", shard.id);
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shard = shard.clone();
        let open = open.clone();
        glommio::spawn_local(async move {
            if open.get() >= shard.config.max_connections {
                let mut conn = Conn::new(stream);
                let resp =
                    Response::text(503, "too many open connections on this shard (raise --http.max-connections)")
                        .with("Retry-After", "1");
                let _ = conn.respond(&resp, false, false).await;
                return;
            }
            open.set(open.get() + 1);
            serve(&shard, stream).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Counts an accept for the steering balance (see [`crate::steer`]); once steering is off,
/// stops asking for this shard's CPU.
fn keep_steering(shard: &Shard, fd: std::os::fd::RawFd) {
    let balance = &shard.shared.balance;
    if let Some(counts) = balance.accepted(shard.id) {
        crate::warn!(
            "msg=\"new connections went unevenly to the shards of the CPUs that received them; spreading them by address hash from now on\" accepted_per_shard=\"{counts:?}\""
        );
    }
    if !balance.on() {
        match crate::sys::set_incoming_cpu(fd, -1) {
            Ok(()) => shard.stats.steering.set(false),
            Err(e) => crate::warn!("msg=\"cannot clear SO_INCOMING_CPU\" shard={} err=\"{e}\"", shard.id),
        }
    }
}

async fn serve(shard: &Rc<Shard>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let c = &shard.config;
    let limits = Limits {
        max_header: c.max_header,
        max_body: c.max_body,
        header_timeout: c.header_timeout,
        body_timeout: c.body_timeout,
        idle_timeout: c.idle_timeout,
        budget: Some(shard.body_budget.clone()),
    };
    let mut conn = Conn::new(stream);
    loop {
        if shard.shared.stop.load(Ordering::Relaxed) {
            // Answers held for pipelined requests still leave.
            let _ = conn.flush().await;
            return;
        }
        let req = match conn.read_request(&limits).await {
            Ok(r) => r,
            Err(e) => {
                if let Some((status, msg)) = e.response() {
                    let _ = conn.respond(&Response::text(status, msg), false, false).await;
                }
                return;
            }
        };
        shard.in_flight.set(shard.in_flight.get() + 1);
        if req.waited {
            shard.stats.budget_waits.set(shard.stats.budget_waits.get() + 1);
        }
        // Once stopping, answer what was asked and close.
        let keep_alive = req.keep_alive && !shard.shared.stop.load(Ordering::Relaxed);
        let scrape = req.path == "/metrics" && matches!(req.method, Method::Get | Method::Head);
        let answering = answer(shard.clone(), conn, req, keep_alive);
        let (back, written) = match shard.scrape_queue.get() {
            // The queue was made by this executor and is never removed: spawning cannot fail.
            Some(tq) if scrape => glommio::spawn_local_into(answering, tq).expect("scrape task queue exists").await,
            _ => answering.await,
        };
        conn = back;
        shard.in_flight.set(shard.in_flight.get() - 1);
        if written.is_err() || !keep_alive {
            return;
        }
    }
}

/// Handles one request and writes its answer; gives the connection back for the next one.
async fn answer(
    shard: Rc<Shard>,
    mut conn: Conn,
    mut req: crate::http::Request,
    keep_alive: bool,
) -> (Conn, io::Result<()>) {
    // Held until the push is applied: the body and its rendered families count.
    let permit = req.permit.take();
    let head_only = req.method == Method::Head;
    let gzip = req.accept_gzip;
    let outcome = api::handle(&shard, req).await;
    drop(permit);
    let written = match outcome {
        Outcome::Respond(resp) => conn.respond(&resp, head_only, keep_alive).await,
        Outcome::Scrape(mut s) => {
            // Answers to pipelined requests before this one leave first.
            if let Err(e) = conn.flush().await {
                return (conn, Err(e));
            }
            let large = s.assembled.len >= TRIM_AFTER_SCRAPE;
            let result = if head_only {
                let head = Response::new(200, EXPOSITION_CONTENT_TYPE, Vec::new()).head(s.assembled.len, keep_alive);
                conn.stream.write_all(&head).await
            } else if gzip {
                write_gzip(&shard, &mut conn, &mut s.assembled, keep_alive).await
            } else {
                write_plain(&shard, &mut conn, &mut s.assembled, keep_alive).await
            };
            if result.is_ok() && !head_only {
                shard.stats.scrapes_ok.set(shard.stats.scrapes_ok.get() + 1);
                shard.stats.scrape_duration.observe(s.started.elapsed().as_secs_f64());
                api::acknowledge(&shard, s).await;
            } else if result.is_err() {
                shard.stats.scrapes_failed.set(shard.stats.scrapes_failed.get() + 1);
            }
            if large && !head_only {
                trim_after_scrape();
            }
            result
        }
    };
    (conn, written)
}

/// Returns free heap pages to the kernel once a large scrape is over (unless a trim is already
/// running), on a lower-priority blocking thread. While a long scrape is written, pushes
/// replace the groups it still holds, so the old and the new copies are alive together; glibc
/// keeps the pages of such a peak after both are freed, and without a trim the resident size
/// ratchets up to the highest peak the gateway has ever met.
fn trim_after_scrape() {
    if TRIMMING.swap(true, Ordering::AcqRel) {
        return;
    }
    glommio::spawn_local(async {
        let _ = glommio::executor()
            .spawn_blocking(|| {
                crate::sys::lower_thread_priority();
                let t = Instant::now();
                let returned = crate::sys::trim_heap();
                TRIMS.fetch_add(1, Ordering::Relaxed);
                TRIM_MICROS.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                TRIM_RETURNED.fetch_add(returned, Ordering::Relaxed);
            })
            .await;
        TRIMMING.store(false, Ordering::Release);
    })
    .detach();
}

/// Runs `work` on one of the executor's blocking threads at a lower priority (see
/// `sys::lower_thread_priority`), as a task whose result a scrape awaits in turn: how scrapes
/// prepare runs (inflating, deflating) several at a time off the shard.
fn on_blocking_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> glommio::task::JoinHandle<T> {
    glommio::spawn_local(async move {
        glommio::executor()
            .spawn_blocking(move || {
                crate::sys::lower_thread_priority();
                work()
            })
            .await
    })
    .detach()
}

/// Sends the scrape uncompressed with vectored writes, in runs of about [`SCRAPE_RUN`]
/// bytes, letting go of each run's chunks once it is written. A run that holds compressed
/// groups (see `expo::compress`) is inflated into one buffer on a blocking thread at a lower
/// priority, as gzip segments are made, several runs at a time; the others go out as stored.
///
/// A run of at least [`SEND_OFF_SHARD`] bytes is written by a blocking thread too (see
/// [`send_off_shard`]), so that copying a large scrape into the socket, which on loopback
/// also runs the reader's side of TCP, competes with the shards' pushes at the lower priority
/// instead of inside the shard. Smaller runs, and whatever a blocking thread could not send
/// because the reader stopped taking bytes, go out from the shard.
async fn write_plain(
    shard: &Shard,
    conn: &mut Conn,
    assembled: &mut crate::scrape::Assembled,
    keep_alive: bool,
) -> io::Result<()> {
    use crate::scrape::Assembled;
    enum Prepared {
        Stored(Assembled),
        Pending(glommio::task::JoinHandle<Vec<u8>>),
    }
    let head = Response::new(200, EXPOSITION_CONTENT_TYPE, Vec::new()).head(assembled.len, keep_alive);
    // `split` gives at least one run, even for an empty scrape: the head goes out with the first.
    let mut first = Some(&head[..]);
    let runs = assembled.split(assembled.len / SCRAPE_RUN + 1);
    let parallel = shard.shards.max(2);
    // Inflate buffers, handed back and forth between this task and the blocking threads.
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    let mut next = 0;
    while next < runs.len() || !queue.is_empty() {
        while queue.len() < parallel && next < runs.len() {
            let range = runs[next].clone();
            // The run's parts, moved out (no sample bytes copied): this scrape holds each
            // chunk until its run is written (or, compressed, inflated).
            let compressed = assembled.has_compressed(range.clone());
            let run: Assembled = assembled.take(range);
            let prepared = if compressed {
                let mut buf = spare.pop().unwrap_or_default();
                Prepared::Pending(on_blocking_thread(move || {
                    // Zeroed only where it grows: inflating writes every byte.
                    buf.resize(run.len, 0);
                    run.plain_to(0..run.parts(), &mut buf);
                    buf
                }))
            } else {
                Prepared::Stored(run)
            };
            queue.push_back(prepared);
            next += 1;
        }
        let prepared = queue.pop_front().expect("queue is not empty");
        let head = first.take().unwrap_or_default().to_vec();
        match prepared {
            Prepared::Stored(run) => {
                let size = head.len() + run.len;
                send_off_shard(conn, (head, run), size, |(head, run)| {
                    let mut all = vec![&head[..]];
                    all.extend(run.slices_of(0..run.parts()));
                    all
                })
                .await?;
            }
            Prepared::Pending(task) => {
                let buf = task.await.ok_or_else(|| io::Error::other("scrape inflate task cancelled"))?;
                let size = head.len() + buf.len();
                let (_, buf) = send_off_shard(conn, (head, buf), size, |(head, buf)| vec![&head[..], &buf[..]]).await?;
                spare.push(buf);
            }
        }
    }
    shard.stats.sent(assembled.len);
    Ok(())
}

/// One run of a gzip scrape as an HTTP chunk: its size line, its gzip body (see
/// `scrape::Assembled::gzip_body`) and the line end after it.
struct GzipRun {
    size_line: Vec<u8>,
    /// The run's chunks and the headers of its stored blocks: never read, only held, since
    /// `body_slices` points into them.
    _run: crate::scrape::Assembled,
    _frames: Vec<[u8; 5]>,
    /// The body's slices as found by [`GzipRun::prepare`] (address and length): bytes owned
    /// by `_run` (through its reference counts) and by `_frames`, both heap memory that stays
    /// where it is while they live, however the `GzipRun` moves.
    body_slices: Vec<(*const u8, usize)>,
    /// Bytes of the gzip body, without the size line and the line end.
    body: usize,
}

// SAFETY: the raw pointers in `body_slices` point into memory owned by `_run` and `_frames`,
// which are `Send` and move with the struct; nothing else refers to them.
unsafe impl Send for GzipRun {}

impl GzipRun {
    /// Makes the run's missing deflate segments, finds the slices of its gzip body and the
    /// CRC-32 and length of its plain bytes (one pass, `Assembled::gzip_body`), and measures
    /// its chunk. Runs on a blocking thread for a large run or one with groups to compress:
    /// it reads every segment, scattered over the store.
    fn prepare(run: crate::scrape::Assembled) -> (GzipRun, (u32, u64)) {
        if !run.gzip_ready(0..run.parts()) {
            run.make_segments(0..run.parts());
        }
        let mut frames = Vec::new();
        let mut slices = Vec::new();
        let crc = run.gzip_body(0..run.parts(), &mut frames, &mut slices);
        let body = slices.iter().map(|s| s.len()).sum::<usize>();
        let body_slices = slices.iter().map(|s| (s.as_ptr(), s.len())).collect();
        drop(slices);
        let size_line = format!("{body:x}\r\n").into_bytes();
        (GzipRun { size_line, _run: run, _frames: frames, body_slices, body }, crc)
    }

    /// The chunk as slices: size line, body, line end.
    fn slices(&mut self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(self.body_slices.len() + 2);
        out.push(&self.size_line[..]);
        // SAFETY: each pair is a slice `prepare` took from `self._run` or `self._frames`, which
        // `self` still owns unchanged (neither is touched after `prepare`), so the bytes are
        // alive and unmodified for as long as this borrow of `self`.
        out.extend(self.body_slices.iter().map(|&(p, n)| unsafe { std::slice::from_raw_parts(p, n) }));
        out.push(b"\r\n");
        out
    }
}

/// Scrape runs (plain bytes, or a gzip chunk) at least this large are written by a blocking
/// thread.
const SEND_OFF_SHARD: usize = 1 << 20;

/// How long a blocking thread writing a scrape waits for room in the socket before it hands
/// the rest back to the shard (which then waits as long as the reader takes).
const SEND_PATIENCE: Duration = Duration::from_millis(500);

/// Writes the `size` bytes of the slices `slices` gives of `data` to the connection: from a
/// blocking thread at the lower priority when they come to [`SEND_OFF_SHARD`] bytes or more
/// (on a duplicate of the socket, see `sys::dup_fd`), finishing on the shard whatever that
/// thread left. Gives `data` back for reuse. `slices` may be called twice (the second time
/// for what the thread left), so it must give the same bytes each time.
async fn send_off_shard<T: Send + 'static>(
    conn: &mut Conn,
    data: T,
    size: usize,
    slices: for<'a> fn(&'a mut T) -> Vec<&'a [u8]>,
) -> io::Result<T> {
    let (mut data, sent) = if size >= SEND_OFF_SHARD {
        let fd = crate::sys::dup_fd(conn.stream.as_raw_fd())?;
        let mut data = data;
        on_blocking_thread(move || {
            let sent = crate::sys::send_blocking(fd.as_raw_fd(), &slices(&mut data), SEND_PATIENCE);
            (data, sent)
        })
        .await
        .ok_or_else(|| io::Error::other("scrape send task cancelled"))?
    } else {
        (data, Ok(0))
    };
    let sent = sent?;
    if sent < size {
        let all = slices(&mut data);
        let mut rest = crate::sys::IoCursor::new(&all);
        rest.advance(sent);
        conn.write_vectored_all(&rest.rest()).await?;
    }
    Ok(data)
}

/// Sends the scrape as one gzip member in a chunked body (see `crate::gzip`), in runs of
/// about [`SCRAPE_RUN`] plain bytes. First the scrape lets go of the plain bytes of every chunk
/// whose deflate segment exists, here on the shard, after which it holds existing segments
/// only. Then each run goes to a blocking thread at a lower priority ([`GzipRun::prepare`]),
/// which makes the segments of groups pushed since the last gzip scrape, combines the run's
/// CRC from its segments' CRCs and measures its chunk; several runs are prepared at a time.
/// Only a small run whose segments all exist is prepared on the shard. Each run is written
/// as an HTTP chunk as soon as it and the runs before it are ready (by a blocking thread too
/// when large, see [`send_off_shard`]), and its chunks are let go of.
async fn write_gzip(
    shard: &Shard,
    conn: &mut Conn,
    assembled: &mut crate::scrape::Assembled,
    keep_alive: bool,
) -> io::Result<()> {
    use crate::gzip::{Framer, GZIP_HEADER};
    /// A run and the CRC-32 and length of its plain bytes.
    enum Prepared {
        Ready((GzipRun, (u32, u64))),
        Pending(glommio::task::JoinHandle<(GzipRun, (u32, u64))>),
    }
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {EXPOSITION_CONTENT_TYPE}\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
    );
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.push_str(&format!("{:x}\r\n", GZIP_HEADER.len()));
    let mut first = head.into_bytes();
    first.extend_from_slice(&GZIP_HEADER);
    first.extend_from_slice(b"\r\n");
    conn.stream.write_all(&first).await?;
    let runs = assembled.split(assembled.len / SCRAPE_RUN + 1);
    // First each chunk whose deflate segment exists is held by its segment only, so that a
    // push replacing its group while the scrape is written frees the plain bytes at once.
    // Chunks without segments (pushed since the last gzip scrape) are the newest copies of
    // their groups: holding them costs nothing until they are compressed below. This pass
    // gives way to other tasks only every PASS_SLICE: each time it does, it may wait a whole
    // scheduling period, while every replaced group it has not reached stays in memory twice.
    let mut slice = Instant::now();
    for range in &runs {
        assembled.keep_deflated_only(range.clone());
        if slice.elapsed() >= PASS_SLICE {
            glommio::yield_if_needed().await;
            slice = Instant::now();
        }
    }
    let parallel = shard.shards.max(2);
    let mut queue = std::collections::VecDeque::new();
    let mut next = 0;
    let mut sent = GZIP_HEADER.len();
    let mut framer = Framer::new();
    while next < runs.len() || !queue.is_empty() {
        while queue.len() < parallel && next < runs.len() {
            // The run's parts, moved out (no sample bytes are copied, no reference counts
            // touched), for a blocking thread to own and give back.
            let run = assembled.take(runs[next].clone());
            let prepared = if run.len < SEND_OFF_SHARD && run.gzip_ready(0..run.parts()) {
                Prepared::Ready(GzipRun::prepare(run))
            } else {
                Prepared::Pending(on_blocking_thread(move || GzipRun::prepare(run)))
            };
            queue.push_back(prepared);
            next += 1;
        }
        let prepared = queue.pop_front().expect("queue is not empty");
        let (run, (crc, len)) = match prepared {
            Prepared::Ready(r) => r,
            Prepared::Pending(task) => task.await.ok_or_else(|| io::Error::other("gzip preparation task cancelled"))?,
        };
        framer.plain_crc(crc, len);
        // An empty chunk would end the body.
        if run.body == 0 {
            continue;
        }
        let (body, size) = (run.body, run.size_line.len() + run.body + 2);
        send_off_shard(conn, run, size, GzipRun::slices).await?;
        sent += body;
    }
    let mut last = format!("{:x}\r\n", 10).into_bytes();
    last.extend_from_slice(&framer.trailer());
    last.extend_from_slice(b"\r\n0\r\n\r\n");
    conn.stream.write_all(&last).await?;
    shard.stats.sent(sent + 10);
    Ok(())
}
