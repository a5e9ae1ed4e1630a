//! Small-push mode: ~100-byte PUTs (or POSTs) on keep-alive connections. Each connection
//! keeps `--small-pipeline` pushes in flight: with 1 (the default) it writes its next push as
//! soon as the answer to the last one arrived; with N > 1 it pipelines, writing new pushes as
//! answers come back so that N are always outstanding (HTTP/1.1 answers arrive in order).
//!
//! Why an event loop here when the stress mode uses a thread per connection: a small push
//! costs the gateway only a few microseconds, so the client's own overhead decides the rate.
//! A blocking thread per connection is woken by the kernel once per answer: the gateway's
//! `send` then spends its time waking that thread (and is often preempted by it), and the
//! generator pays a context switch per push. Measured on the 2-CPU machine with `perf`, a
//! third of the gateway's CPU went to `sock_def_readable` wake-ups and to `finish_task_switch`
//! inside its own `send`. One epoll loop per `--small-threads` thread drives its share of the
//! non-blocking sockets instead: it sleeps only when no answer is ready on any of them, and
//! handles every ready answer of one `epoll_wait` before sleeping again.
//!
//! The loops run as `SCHED_BATCH` by default (`--small-sched`). Even with the epoll loop,
//! every answer the gateway sends wakes a loop thread, and on a machine the two share the
//! kernel let that woken thread preempt the gateway thread inside its `send`: `perf` on the
//! gateway showed 7 % of its samples in `finish_task_switch` under `send`. A batch thread
//! is never preempting when woken; it runs when the gateway thread sleeps or its slice ends,
//! and then finds more answers ready per `epoll_wait`. Clients on other machines (the case
//! the benchmark stands for) cost the gateway no such switches. Measured back to back
//! (`bench-results/small-sched-2026-11-22/`): the generator's CPU per push fell by about a
//! quarter.
//!
//! Each loop opens its connections from a CPU of its own (loop `t` is held on the `t`-th CPU
//! the process may use while it connects, then runs wherever the scheduler puts it). Remote
//! clients reach a gateway through a NIC whose queues spread flows over the CPUs; on loopback
//! the CPU that handles a connection's first packet is the connecting thread's, and two loops
//! that happened to start on one CPU would otherwise look like a NIC with a single queue. It
//! matters to a gateway that steers connections by CPU (ringgate's default
//! `--http.connection-steering cpu`); to one that spreads them by address hash it does not.
//!
//! Semantics match the stress mode: latency runs from the moment a push is written to the end
//! of its answer (for a pipelined push, that includes waiting behind the ones before it),
//! `--timeout` bounds each push (checked every [`TICK`]), a connection the server closed is
//! reopened, and pushes started before the end of `--duration` complete.

use super::{Shared, CONTENT_TYPE};
use crate::http::{parse_head, ReqError, Response, Target};
use crate::payload::small_body;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often deadlines are checked while answers are awaited.
const TICK: Duration = Duration::from_millis(50);
/// An answer head larger than this is an error (the gateway's answers to pushes are tiny).
const MAX_ANSWER: usize = 64 * 1024;

/// What one event-loop thread needs to know.
#[derive(Clone)]
pub struct SmallConfig {
    pub target: Target,
    pub method: &'static str,
    pub groups: u32,
    pub timeout: Duration,
    pub end: Instant,
    /// Index of the first connection of this thread (bodies carry it as a label value).
    pub first: usize,
    pub connections: usize,
    /// Pushes in flight per connection.
    pub depth: usize,
    /// Index of this loop: it connects from the `thread`-th CPU it may use.
    pub thread: usize,
}

struct Slot {
    stream: Option<TcpStream>,
    worker: usize,
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    /// The pushes in flight, oldest first: when each was written, and its body length.
    busy: VecDeque<(Instant, usize)>,
    /// EPOLLOUT is asked for (the requests did not fit in the socket buffer at once).
    want_out: bool,
    /// Not before this instant is a new connection tried (after a failed connect).
    retry_at: Option<Instant>,
    connects: u64,
}

/// Starts `threads` event loops sharing `connections` connections; returns their handles.
#[allow(clippy::too_many_arguments)]
pub fn start(
    target: &Target,
    method: &'static str,
    groups: u32,
    timeout: Duration,
    connections: usize,
    threads: usize,
    depth: usize,
    sched_batch: bool,
    shared: &Arc<Shared>,
    end: Instant,
) -> Vec<thread::JoinHandle<()>> {
    let counter = Arc::new(AtomicU64::new(0));
    let threads = threads.clamp(1, connections.max(1));
    let per = connections.max(1).div_ceil(threads);
    (0..threads)
        .map(|t| {
            let first = t * per;
            let n = per.min(connections.max(1).saturating_sub(first));
            let cfg = SmallConfig {
                target: target.clone(),
                method,
                groups,
                timeout,
                end,
                first,
                connections: n,
                depth: depth.max(1),
                thread: t,
            };
            let (shared, counter) = (shared.clone(), counter.clone());
            thread::Builder::new()
                .name(format!("small-loop-{t}"))
                .spawn(move || {
                    if sched_batch {
                        // Policy of this thread only (Linux: 0 is the calling thread).
                        let param = libc::sched_param { sched_priority: 0 };
                        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
                            let e = io::Error::last_os_error();
                            eprintln!(
                                "ringgate-loadgen: small-push loop {t}: SCHED_BATCH refused ({e}); running as normal"
                            );
                        }
                    }
                    if let Err(e) = event_loop(&cfg, &shared, &counter) {
                        eprintln!("ringgate-loadgen: small-push loop {t} stopped: {e}");
                    }
                })
                .expect("spawn small-push loop")
        })
        .collect()
}

/// Runs `f` with this thread held on the `t`-th CPU (wrapping) of those it may use, then gives
/// it back its CPU mask. With one usable CPU, or if the mask cannot be read or set, just runs `f`.
fn on_own_cpu<T>(t: usize, f: impl FnOnce() -> T) -> T {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a zeroed cpu_set_t is a valid empty set for the kernel to fill.
    let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is writable and its size is passed; 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
        return f();
    }
    // SAFETY (CPU_ISSET, CPU_SET): every index is below CPU_SETSIZE.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &old) }).collect();
    if cpus.len() < 2 {
        return f();
    }
    // SAFETY: as above.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpus[t % cpus.len()], &mut one) };
    // SAFETY: `one` lives across the call and its size is passed.
    if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
        return f();
    }
    let r = f();
    // SAFETY: `old` is the mask read above.
    unsafe { libc::sched_setaffinity(0, size, &old) };
    r
}

struct Epoll(i32);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; the descriptor is owned by the returned value.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn ctl(&self, op: i32, fd: i32, events: u32, token: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token as u64 };
        // SAFETY: `ev` lives across the call; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a valid, writable buffer of the length passed.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// One event loop's connections and what it shares with the others.
struct Loop<'a> {
    cfg: &'a SmallConfig,
    shared: &'a Shared,
    counter: &'a AtomicU64,
    ep: Epoll,
    slots: Vec<Slot>,
}

fn event_loop(cfg: &SmallConfig, shared: &Shared, counter: &AtomicU64) -> io::Result<()> {
    let slots: Vec<Slot> = (0..cfg.connections)
        .map(|i| Slot {
            stream: None,
            worker: cfg.first + i,
            out: Vec::with_capacity(512 * cfg.depth),
            sent: 0,
            inbuf: Vec::with_capacity(1024),
            busy: VecDeque::with_capacity(cfg.depth),
            want_out: false,
            retry_at: None,
            connects: 0,
        })
        .collect();
    let mut lp = Loop { cfg, shared, counter, ep: Epoll::new()?, slots };
    let now = Instant::now();
    if shared.start > now {
        thread::sleep(shared.start - now);
    }
    on_own_cpu(cfg.thread, || {
        for i in 0..lp.slots.len() {
            lp.top_up(i);
        }
    });
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; cfg.connections.clamp(1, 1024)];
    let mut last_sweep = Instant::now();
    loop {
        let active = lp.slots.iter().any(|s| !s.busy.is_empty() || s.retry_at.is_some());
        if !active {
            break;
        }
        let n = lp.ep.wait(&mut events, TICK)?;
        for ev in &events[..n] {
            let (i, flags) = (ev.u64 as usize, ev.events);
            if flags & libc::EPOLLOUT as u32 != 0 {
                lp.flush(i);
            }
            if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                lp.receive(i);
            }
        }
        let now = Instant::now();
        if now - last_sweep >= TICK {
            last_sweep = now;
            for i in 0..lp.slots.len() {
                if let Some(&(sched, _)) = lp.slots[i].busy.front() {
                    if now >= sched + cfg.timeout {
                        lp.fail(i, ReqError::Timeout("timed out waiting for the response".into()));
                    }
                } else if lp.slots[i].retry_at.is_some_and(|t| now >= t) {
                    lp.slots[i].retry_at = None;
                    lp.top_up(i);
                }
            }
        }
    }
    for s in &lp.slots {
        shared.connects.fetch_add(s.connects, Relaxed);
    }
    Ok(())
}

impl Loop<'_> {
    fn drop_conn(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if let Some(st) = s.stream.take() {
            let _ = self.ep.ctl(libc::EPOLL_CTL_DEL, st.as_raw_fd(), 0, 0);
        }
        s.busy.clear();
        s.want_out = false;
        s.inbuf.clear();
        s.out.clear();
        s.sent = 0;
    }

    /// Records a failure for every push in flight on slot `i`, drops its connection and starts
    /// over on a new one.
    fn fail(&mut self, i: usize, e: ReqError) {
        let e = Err(e);
        for &(sched, len) in &self.slots[i].busy {
            self.shared.record(None, None, sched, len, &e);
        }
        self.drop_conn(i);
        self.top_up(i);
    }

    /// Writes new pushes on slot `i` until `depth` are in flight, unless the run is over.
    /// Opens the connection first if needed; a failed connect is recorded and retried after
    /// 10 ms.
    fn top_up(&mut self, i: usize) {
        let now = Instant::now();
        let (cfg, shared) = (self.cfg, self.shared);
        if now >= cfg.end {
            if self.slots[i].busy.is_empty() {
                self.drop_conn(i);
            }
            return;
        }
        let s = &mut self.slots[i];
        if s.stream.is_none() {
            match connect(&cfg.target, cfg.timeout) {
                Ok(st) => {
                    s.connects += 1;
                    if let Err(e) = self.ep.ctl(libc::EPOLL_CTL_ADD, st.as_raw_fd(), libc::EPOLLIN as u32, i) {
                        shared.record(None, None, now, 0, &Err(ReqError::Connect(format!("epoll_ctl: {e}"))));
                        s.retry_at = Some(now + Duration::from_millis(10));
                        return;
                    }
                    s.stream = Some(st);
                }
                Err(e) => {
                    shared.record(None, None, now, 0, &Err(ReqError::Connect(e.to_string())));
                    s.retry_at = Some(now + Duration::from_millis(10));
                    return;
                }
            }
        }
        if s.busy.len() >= cfg.depth {
            return;
        }
        if s.sent == s.out.len() {
            s.out.clear();
            s.sent = 0;
        }
        while s.busy.len() < cfg.depth {
            let n = self.counter.fetch_add(1, Relaxed);
            let body = small_body(s.worker, n);
            let _ = write!(
                s.out,
                "{} /metrics/job/loadgen_small/instance/g{:05} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringgate-loadgen/{}\r\n{CONTENT_TYPE}Content-Length: {}\r\n\r\n",
                cfg.method,
                n % cfg.groups.max(1) as u64,
                cfg.target.host,
                env!("CARGO_PKG_VERSION"),
                body.len()
            );
            s.out.extend_from_slice(body.as_bytes());
            s.busy.push_back((Instant::now(), body.len()));
        }
        self.flush(i);
    }

    /// Writes what is left of slot `i`'s requests; waits for EPOLLOUT when the socket is full.
    fn flush(&mut self, i: usize) {
        let s = &mut self.slots[i];
        let Some(st) = s.stream.as_mut() else { return };
        while s.sent < s.out.len() {
            match st.write(&s.out[s.sent..]) {
                Ok(0) => return self.fail(i, ReqError::Io("send: connection closed".into())),
                Ok(n) => s.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !s.want_out {
                        s.want_out = true;
                        let ev = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                        let _ = self.ep.ctl(libc::EPOLL_CTL_MOD, st.as_raw_fd(), ev, i);
                    }
                    return;
                }
                Err(e) => return self.fail(i, ReqError::Io(format!("send: {e}"))),
            }
        }
        if s.want_out {
            s.want_out = false;
            let _ = self.ep.ctl(libc::EPOLL_CTL_MOD, st.as_raw_fd(), libc::EPOLLIN as u32, i);
        }
    }

    /// Reads what arrived on slot `i`, records every whole answer, and tops the slot up.
    fn receive(&mut self, i: usize) {
        let s = &mut self.slots[i];
        let Some(st) = s.stream.as_mut() else { return };
        let mut buf = [0u8; 16384];
        loop {
            match st.read(&mut buf) {
                Ok(0) => {
                    if s.busy.is_empty() {
                        self.drop_conn(i);
                        return self.top_up(i);
                    }
                    return self.fail(i, ReqError::Io("connection closed before the response".into()));
                }
                Ok(n) => {
                    s.inbuf.extend_from_slice(&buf[..n]);
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if s.busy.is_empty() {
                        self.drop_conn(i);
                        return self.top_up(i);
                    }
                    return self.fail(i, ReqError::Io(format!("receive: {e}")));
                }
            }
        }
        let mut at = 0;
        while at < s.inbuf.len() {
            let Some(&(sched, len)) = s.busy.front() else {
                // Bytes nobody asked for: the connection is out of step; start over on a new one.
                self.drop_conn(i);
                return self.top_up(i);
            };
            match parse_answer(&s.inbuf[at..]) {
                Answer::Partial if s.inbuf.len() - at > MAX_ANSWER => {
                    return self.fail(i, ReqError::Io("response head too large".into()))
                }
                Answer::Partial => break,
                Answer::Bad(m) => return self.fail(i, ReqError::Io(m)),
                Answer::Whole { status, body, keep, used } => {
                    let body_head = String::from_utf8_lossy(&s.inbuf[at + used - body..at + used]).into_owned();
                    let resp = Response {
                        status,
                        body_bytes: body as u64,
                        body_head,
                        ttfb: sched.elapsed(),
                        content_encoding: None,
                    };
                    self.shared.record(None, None, sched, len, &Ok(resp));
                    s.busy.pop_front();
                    at += used;
                    if !keep {
                        // The server closes: pushes pipelined behind this one get no answer.
                        if s.busy.is_empty() && at == s.inbuf.len() {
                            self.drop_conn(i);
                            return self.top_up(i);
                        }
                        return self.fail(i, ReqError::Io("connection closed before the response".into()));
                    }
                }
            }
        }
        s.inbuf.drain(..at);
        self.top_up(i);
    }
}

fn connect(target: &Target, timeout: Duration) -> io::Result<TcpStream> {
    let st = TcpStream::connect_timeout(&target.addr, timeout)?;
    st.set_nodelay(true)?;
    st.set_nonblocking(true)?;
    Ok(st)
}

enum Answer {
    Partial,
    Bad(String),
    /// `used`: bytes of head and body; `body`: bytes of body.
    Whole {
        status: u16,
        body: usize,
        keep: bool,
        used: usize,
    },
}

/// Parses an HTTP/1.x answer with a `Content-Length` body (what gateways send to pushes).
fn parse_answer(b: &[u8]) -> Answer {
    let Some(head_end) = b.windows(4).position(|w| w == b"\r\n\r\n") else { return Answer::Partial };
    let Ok(head) = std::str::from_utf8(&b[..head_end]) else { return Answer::Bad("non-UTF-8 response head".into()) };
    let h = match parse_head(head) {
        Ok(h) => h,
        Err(m) => return Answer::Bad(m),
    };
    if h.chunked {
        return Answer::Bad("small mode reads Content-Length answers only, got a chunked one".into());
    }
    let no_body = (100..200).contains(&h.status) || h.status == 204 || h.status == 304;
    let body = if no_body { 0 } else { h.content_length.unwrap_or(0) as usize };
    // Without a length, the body runs to the end of the connection: not kept.
    let (status, keep) = (h.status, h.keep && (no_body || h.content_length.is_some()));
    let used = head_end + 4 + body;
    if b.len() < used {
        return Answer::Partial;
    }
    Answer::Whole { status, body, keep, used }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> Vec<usize> {
        // SAFETY: as in `on_own_cpu`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }, 0);
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
    }

    #[test]
    fn each_loop_connects_from_its_own_cpu_and_then_runs_anywhere_again() {
        let cpus = mask();
        assert!(cpus.len() >= 2, "this test needs two usable CPUs, has {cpus:?}");
        for t in 0..cpus.len() + 1 {
            // SAFETY: plain call.
            let (held, at) = on_own_cpu(t, || (mask(), unsafe { libc::sched_getcpu() }));
            let want = cpus[t % cpus.len()];
            assert_eq!(held, vec![want]);
            assert_eq!(at, want as i32);
            assert_eq!(mask(), cpus, "the mask is given back");
        }
    }

    #[test]
    fn answers_are_whole_only_with_their_body() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_answer(a), Answer::Whole { status: 200, body: 0, keep: true, used: 38 }));
        let b = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbad";
        assert!(matches!(parse_answer(b), Answer::Partial));
        let b = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbad\r\n";
        assert!(matches!(parse_answer(b), Answer::Whole { status: 400, body: 5, keep: false, .. }));
        assert!(matches!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Le"), Answer::Partial));
        assert!(matches!(parse_answer(b"SMTP ready\r\n\r\n"), Answer::Bad(_)));
        assert!(matches!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Answer::Bad(_)
        ));
    }
}
