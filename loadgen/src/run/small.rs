//! Small-push mode: ~100-byte PUTs (or POSTs) on keep-alive connections, each connection
//! sending its next push as soon as the answer to the last one arrived.
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
//! Semantics match the stress mode: latency runs from the moment a push is written to the end
//! of its answer, `--timeout` bounds each push (checked every [`TICK`]), a connection the
//! server closed is reopened, and pushes started before the end of `--duration` complete.

use super::{Shared, CONTENT_TYPE};
use crate::http::{parse_head, ReqError, Response, Target};
use crate::payload::small_body;
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
}

struct Slot {
    stream: Option<TcpStream>,
    worker: usize,
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    /// When the push in flight was written, and its body length; `None` when idle.
    busy: Option<(Instant, usize)>,
    /// EPOLLOUT is asked for (the request did not fit in the socket buffer at once).
    want_out: bool,
    /// Not before this instant is a new connection tried (after a failed connect).
    retry_at: Option<Instant>,
    connects: u64,
}

/// Starts `threads` event loops sharing `connections` connections; returns their handles.
pub fn start(
    target: &Target,
    method: &'static str,
    groups: u32,
    timeout: Duration,
    connections: usize,
    threads: usize,
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
            let cfg = SmallConfig { target: target.clone(), method, groups, timeout, end, first, connections: n };
            let (shared, counter) = (shared.clone(), counter.clone());
            thread::Builder::new()
                .name(format!("small-loop-{t}"))
                .spawn(move || {
                    if let Err(e) = event_loop(&cfg, &shared, &counter) {
                        eprintln!("ringgate-loadgen: small-push loop {t} stopped: {e}");
                    }
                })
                .expect("spawn small-push loop")
        })
        .collect()
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

fn event_loop(cfg: &SmallConfig, shared: &Shared, counter: &AtomicU64) -> io::Result<()> {
    let ep = Epoll::new()?;
    let mut slots: Vec<Slot> = (0..cfg.connections)
        .map(|i| Slot {
            stream: None,
            worker: cfg.first + i,
            out: Vec::with_capacity(512),
            sent: 0,
            inbuf: Vec::with_capacity(1024),
            busy: None,
            want_out: false,
            retry_at: None,
            connects: 0,
        })
        .collect();
    let now = Instant::now();
    if shared.start > now {
        thread::sleep(shared.start - now);
    }
    for i in 0..slots.len() {
        next_push(cfg, shared, counter, &ep, &mut slots, i);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; cfg.connections.clamp(1, 1024)];
    let mut last_sweep = Instant::now();
    loop {
        let active = slots.iter().any(|s| s.busy.is_some() || s.retry_at.is_some());
        if !active {
            break;
        }
        let n = ep.wait(&mut events, TICK)?;
        for ev in &events[..n] {
            let (i, flags) = (ev.u64 as usize, ev.events);
            if flags & libc::EPOLLOUT as u32 != 0 {
                flush(cfg, shared, counter, &ep, &mut slots, i);
            }
            if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                receive(cfg, shared, counter, &ep, &mut slots, i);
            }
        }
        let now = Instant::now();
        if now - last_sweep >= TICK {
            last_sweep = now;
            for i in 0..slots.len() {
                if let Some((sched, len)) = slots[i].busy {
                    if now >= sched + cfg.timeout {
                        let e = Err(ReqError::Timeout("timed out waiting for the response".into()));
                        shared.record(None, sched, len, &e);
                        drop_conn(&ep, &mut slots[i]);
                        next_push(cfg, shared, counter, &ep, &mut slots, i);
                    }
                } else if slots[i].retry_at.is_some_and(|t| now >= t) {
                    slots[i].retry_at = None;
                    next_push(cfg, shared, counter, &ep, &mut slots, i);
                }
            }
        }
    }
    for s in &slots {
        shared.connects.fetch_add(s.connects, Relaxed);
    }
    Ok(())
}

fn drop_conn(ep: &Epoll, s: &mut Slot) {
    if let Some(st) = s.stream.take() {
        let _ = ep.ctl(libc::EPOLL_CTL_DEL, st.as_raw_fd(), 0, 0);
    }
    s.busy = None;
    s.want_out = false;
    s.inbuf.clear();
}

/// Starts the next push on slot `i`, unless the run is over. Opens the connection first if
/// needed; a failed connect is recorded and retried after 10 ms.
fn next_push(cfg: &SmallConfig, shared: &Shared, counter: &AtomicU64, ep: &Epoll, slots: &mut [Slot], i: usize) {
    let now = Instant::now();
    if now >= cfg.end {
        drop_conn(ep, &mut slots[i]);
        return;
    }
    let s = &mut slots[i];
    if s.stream.is_none() {
        match connect(&cfg.target, cfg.timeout) {
            Ok(st) => {
                s.connects += 1;
                if let Err(e) = ep.ctl(libc::EPOLL_CTL_ADD, st.as_raw_fd(), libc::EPOLLIN as u32, i) {
                    shared.record(None, now, 0, &Err(ReqError::Connect(format!("epoll_ctl: {e}"))));
                    s.retry_at = Some(now + Duration::from_millis(10));
                    return;
                }
                s.stream = Some(st);
            }
            Err(e) => {
                shared.record(None, now, 0, &Err(ReqError::Connect(e.to_string())));
                s.retry_at = Some(now + Duration::from_millis(10));
                return;
            }
        }
    }
    let n = counter.fetch_add(1, Relaxed);
    let path = format!("/metrics/job/loadgen_small/instance/g{:05}", n % cfg.groups.max(1) as u64);
    let body = small_body(s.worker, n);
    s.out.clear();
    let _ = write!(
        s.out,
        "{} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringgate-loadgen/{}\r\n{CONTENT_TYPE}Content-Length: {}\r\n\r\n",
        cfg.method,
        cfg.target.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    s.out.extend_from_slice(body.as_bytes());
    s.sent = 0;
    s.inbuf.clear();
    s.busy = Some((Instant::now(), body.len()));
    flush(cfg, shared, counter, ep, slots, i);
}

fn connect(target: &Target, timeout: Duration) -> io::Result<TcpStream> {
    let st = TcpStream::connect_timeout(&target.addr, timeout)?;
    st.set_nodelay(true)?;
    st.set_nonblocking(true)?;
    Ok(st)
}

/// Writes what is left of slot `i`'s request; waits for EPOLLOUT when the socket is full.
fn flush(cfg: &SmallConfig, shared: &Shared, counter: &AtomicU64, ep: &Epoll, slots: &mut [Slot], i: usize) {
    let s = &mut slots[i];
    let (Some(st), Some((sched, len))) = (s.stream.as_mut(), s.busy) else { return };
    while s.sent < s.out.len() {
        match st.write(&s.out[s.sent..]) {
            Ok(0) => return fail(cfg, shared, counter, ep, slots, i, sched, len, "send: connection closed".into()),
            Ok(n) => s.sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !s.want_out {
                    s.want_out = true;
                    let _ = ep.ctl(libc::EPOLL_CTL_MOD, st.as_raw_fd(), (libc::EPOLLIN | libc::EPOLLOUT) as u32, i);
                }
                return;
            }
            Err(e) => return fail(cfg, shared, counter, ep, slots, i, sched, len, format!("send: {e}")),
        }
    }
    if s.want_out {
        s.want_out = false;
        let _ = ep.ctl(libc::EPOLL_CTL_MOD, st.as_raw_fd(), libc::EPOLLIN as u32, i);
    }
}

/// Records an I/O failure of the push in flight on slot `i` and starts the next one on a new
/// connection.
#[allow(clippy::too_many_arguments)]
fn fail(
    cfg: &SmallConfig,
    shared: &Shared,
    counter: &AtomicU64,
    ep: &Epoll,
    slots: &mut [Slot],
    i: usize,
    sched: Instant,
    len: usize,
    msg: String,
) {
    shared.record(None, sched, len, &Err(ReqError::Io(msg)));
    drop_conn(ep, &mut slots[i]);
    next_push(cfg, shared, counter, ep, slots, i);
}

/// Reads what arrived on slot `i`; once its answer is whole, records it and starts the next.
fn receive(cfg: &SmallConfig, shared: &Shared, counter: &AtomicU64, ep: &Epoll, slots: &mut [Slot], i: usize) {
    let s = &mut slots[i];
    let Some(st) = s.stream.as_mut() else { return };
    let mut buf = [0u8; 4096];
    loop {
        match st.read(&mut buf) {
            Ok(0) => {
                let Some((sched, len)) = s.busy else {
                    drop_conn(ep, s);
                    return next_push(cfg, shared, counter, ep, slots, i);
                };
                return fail(
                    cfg,
                    shared,
                    counter,
                    ep,
                    slots,
                    i,
                    sched,
                    len,
                    "connection closed before the response".into(),
                );
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
                let Some((sched, len)) = s.busy else {
                    drop_conn(ep, s);
                    return next_push(cfg, shared, counter, ep, slots, i);
                };
                return fail(cfg, shared, counter, ep, slots, i, sched, len, format!("receive: {e}"));
            }
        }
    }
    let Some((sched, len)) = s.busy else {
        // Bytes nobody asked for: the connection is out of step; start over on a new one.
        drop_conn(ep, s);
        return next_push(cfg, shared, counter, ep, slots, i);
    };
    match parse_answer(&s.inbuf) {
        Answer::Partial if s.inbuf.len() > MAX_ANSWER => {
            fail(cfg, shared, counter, ep, slots, i, sched, len, "response head too large".into())
        }
        Answer::Partial => {}
        Answer::Bad(m) => fail(cfg, shared, counter, ep, slots, i, sched, len, m),
        Answer::Whole { status, body, keep, used } => {
            let body_head = String::from_utf8_lossy(&s.inbuf[used - body..used]).into_owned();
            let resp =
                Response { status, body_bytes: body as u64, body_head, ttfb: sched.elapsed(), content_encoding: None };
            shared.record(None, sched, len, &Ok(resp));
            s.busy = None;
            if !keep || used != s.inbuf.len() {
                drop_conn(ep, s);
            }
            s.inbuf.clear();
            next_push(cfg, shared, counter, ep, slots, i);
        }
    }
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
