//! A small blocking HTTP/1.1 keep-alive client on std::net.
//!
//! Why blocking threads and not an async runtime: the workload is at most a few thousand
//! large requests per minute over a bounded pool (500 connections by default). One OS thread
//! per pooled connection costs ~500 mostly-sleeping threads with small stacks, gives exact
//! per-request deadlines with SO_RCVTIMEO/SO_SNDTIMEO, and keeps the generator trivially
//! correct and cheap (bodies are memcpy'd from a shared template in 64 KiB chunks). No
//! runtime, no extra dependencies, nothing competing with the server for io_uring.

use crate::payload::Payload;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Where requests go. Only loopback addresses are accepted.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// Value of the Host header.
    pub host: String,
}

/// Parses `HOST:PORT` (optionally `http://HOST:PORT[/]`, `[::1]:PORT`, or a host alone for
/// port 9091) and refuses anything that is not loopback: 127.0.0.0/8, ::1 or `localhost`.
/// No name resolution happens: `localhost` means 127.0.0.1.
pub fn parse_target(s: &str) -> Result<Target, String> {
    let t = s.trim();
    let t = t.strip_prefix("http://").unwrap_or(t);
    let t = t.trim_end_matches('/');
    if t.is_empty() || t.contains('/') || t.contains('@') {
        return Err(format!("--target {s:?}: want HOST:PORT"));
    }
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| format!("--target {s:?}: unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => "9091",
            None => return Err(format!("--target {s:?}: junk after ']'")),
        };
        (h, port)
    } else if t.matches(':').count() > 1 {
        (t, "9091") // bare IPv6 literal
    } else {
        t.rsplit_once(':').unwrap_or((t, "9091"))
    };
    let port: u16 = port.parse().map_err(|_| format!("--target {s:?}: bad port {port:?}"))?;
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().map_err(|_| {
            format!("--target {s:?}: only loopback targets are allowed (127.0.0.0/8, ::1, localhost); {host:?} is not an IP literal")
        })?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--target {s:?}: refusing non-loopback address {ip}; only 127.0.0.0/8, ::1 and localhost are allowed"
        ));
    }
    let addr = SocketAddr::new(ip, port);
    let host = match ip {
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
        IpAddr::V4(_) => format!("{ip}:{port}"),
    };
    Ok(Target { addr, host })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqError {
    /// Deadline passed while connecting, sending or waiting for the answer.
    Timeout(String),
    Connect(String),
    Io(String),
}

impl ReqError {
    fn from_io(e: io::Error, what: &str) -> ReqError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReqError::Timeout(format!("timed out in {what}")),
            _ => ReqError::Io(format!("{what}: {e}")),
        }
    }
}

pub enum Body<'a> {
    Empty,
    #[cfg_attr(not(test), allow(dead_code))]
    Bytes(&'a [u8]),
    /// A payload template streamed with the patches for (node, seq).
    Template(&'a Payload, u32, u64),
}

impl Body<'_> {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len(),
            Body::Template(p, _, _) => p.len(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Body bytes as received (after de-chunking; still compressed if gzip).
    pub body_bytes: u64,
    /// The first bytes of the body, for error messages.
    pub body_head: String,
    /// Time from the start of the request until the response head arrived.
    pub ttfb: Duration,
    pub content_encoding: Option<String>,
}

const MAX_HEAD: usize = 64 * 1024;
const BODY_HEAD_KEEP: usize = 512;
/// A body with at least this much left to read is dropped in the kernel ([`Conn::discard`]).
const DISCARD_MIN: u64 = 64 * 1024;

/// What a response head says (both clients read it: the pooled one here and small mode's
/// event loops).
pub struct Head {
    pub status: u16,
    /// The connection stays open after this response, as far as the head says.
    pub keep: bool,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub content_encoding: Option<String>,
}

/// Parses a response head (without its final empty line).
pub fn parse_head(head: &str) -> Result<Head, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut h =
        Head { status, keep: version == "HTTP/1.1", content_length: None, chunked: false, content_encoding: None };
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            h.content_length = Some(v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                h.keep = false;
            } else if v.contains("keep-alive") {
                h.keep = true;
            }
        } else if k.eq_ignore_ascii_case("content-encoding") {
            h.content_encoding = Some(v.to_string());
        }
    }
    Ok(h)
}

/// One keep-alive connection (reconnects lazily).
pub struct Conn {
    target: Target,
    stream: Option<TcpStream>,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    scratch: Vec<u8>,
    /// The socket's SO_SNDTIMEO and SO_RCVTIMEO as last set: a request far from its deadline
    /// re-arms the same slice, which then costs no system call.
    write_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    /// Number of TCP connects made (for the report).
    pub connects: u64,
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let now = Instant::now();
    (deadline > now).then(|| (deadline - now).max(Duration::from_millis(1)))
}

/// Longest single blocking send/recv. The kernel's SO_RCVTIMEO/SO_SNDTIMEO drift late when
/// a waiting socket is woken often (each ACK of a slowly-read upload wakes the receiver and
/// loses part of a jiffy): measured ~2 s late on a 30 s timeout against a CPU-starved
/// Pushgateway. Blocking in short slices and checking the deadline ourselves keeps the
/// client timeout exact to a few ms.
const SLICE: Duration = Duration::from_millis(200);

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl Conn {
    #[cfg(test)]
    pub fn new(target: Target) -> Conn {
        Conn::with_buffer(target, 64 * 1024)
    }

    /// `rbuf` is the receive buffer size: small for pushes (tiny answers), large for scrapes.
    pub fn with_buffer(target: Target, rbuf: usize) -> Conn {
        Conn {
            target,
            stream: None,
            rbuf: vec![0; rbuf.max(1024)],
            rpos: 0,
            rend: 0,
            scratch: Vec::new(),
            write_timeout: None,
            read_timeout: None,
            connects: 0,
        }
    }

    pub fn close(&mut self) {
        self.stream = None;
        self.write_timeout = None;
        self.read_timeout = None;
        self.rpos = 0;
        self.rend = 0;
    }

    fn connect(&mut self, deadline: Instant) -> Result<(), ReqError> {
        let rem = remaining(deadline).ok_or_else(|| ReqError::Timeout("before connect".into()))?;
        let s = TcpStream::connect_timeout(&self.target.addr, rem).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReqError::Timeout(format!("connect: {e}")),
            _ => ReqError::Connect(format!("{}: {e}", self.target.addr)),
        })?;
        let _ = s.set_nodelay(true);
        self.stream = Some(s);
        self.write_timeout = None;
        self.read_timeout = None;
        self.rpos = 0;
        self.rend = 0;
        self.connects += 1;
        Ok(())
    }

    /// Sends one request and reads the whole response. On a reused connection that fails
    /// before any response byte (the server closed it while idle), reconnects and retries once,
    /// as HTTP clients do for idempotent requests.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        extra_headers: &str,
        body: Body<'_>,
        deadline: Instant,
    ) -> Result<Response, ReqError> {
        let start = Instant::now();
        let reused = self.stream.is_some();
        if !reused {
            self.connect(deadline)?;
        }
        match self.attempt(method, path, extra_headers, &body, deadline, start) {
            Err((ReqError::Io(_), false)) if reused => {
                self.close();
                self.connect(deadline)?;
                self.attempt(method, path, extra_headers, &body, deadline, start).map_err(|(e, _)| e)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    /// Err carries whether any response byte had been received.
    fn attempt(
        &mut self,
        method: &str,
        path: &str,
        extra_headers: &str,
        body: &Body<'_>,
        deadline: Instant,
        start: Instant,
    ) -> Result<Response, (ReqError, bool)> {
        let r = self.attempt_inner(method, path, extra_headers, body, deadline, start);
        match r {
            Ok((resp, keep)) => {
                if !keep {
                    self.close();
                }
                Ok(resp)
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }

    fn attempt_inner(
        &mut self,
        method: &str,
        path: &str,
        extra_headers: &str,
        body: &Body<'_>,
        deadline: Instant,
        start: Instant,
    ) -> Result<(Response, bool), (ReqError, bool)> {
        let nothing = |e| (e, false);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringgate-loadgen/{}\r\n{extra_headers}",
            self.target.host,
            env!("CARGO_PKG_VERSION")
        );
        if !matches!(body, Body::Empty) || method == "PUT" || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.stream.as_mut().expect("connected");
        let write_timeout = &mut self.write_timeout;
        // Not write_all: the timeout is re-armed (in slices, see SLICE) before every write(), so
        // a slow reader cannot stretch a request past its deadline.
        let mut send = |mut buf: &[u8]| -> Result<(), ReqError> {
            while !buf.is_empty() {
                let rem =
                    remaining(deadline).ok_or_else(|| ReqError::Timeout("timed out sending the request".into()))?;
                let want = Some(rem.min(SLICE));
                if *write_timeout != want {
                    stream.set_write_timeout(want).map_err(|e| ReqError::from_io(e, "setsockopt"))?;
                    *write_timeout = want;
                }
                match stream.write(buf) {
                    Ok(0) => return Err(ReqError::Io("send: connection closed".into())),
                    Ok(n) => buf = &buf[n..],
                    Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
                    Err(e) => return Err(ReqError::from_io(e, "send")),
                }
            }
            Ok(())
        };
        match body {
            Body::Empty => send(head.as_bytes()).map_err(nothing)?,
            Body::Bytes(b) => {
                let mut v = head.into_bytes();
                v.extend_from_slice(b);
                send(&v).map_err(nothing)?;
            }
            Body::Template(p, node, seq) => {
                send(head.as_bytes()).map_err(nothing)?;
                let mut err = None;
                let r = p.stream(*node, *seq, &mut self.scratch, &mut |chunk| {
                    send(chunk).map_err(|e| {
                        err = Some(e);
                        io::Error::other("send failed")
                    })
                });
                if r.is_err() {
                    return Err(nothing(err.unwrap_or_else(|| ReqError::Io("send body".into()))));
                }
            }
        }
        // Response head.
        let head_end = loop {
            if let Some(i) = find_head_end(&self.rbuf[self.rpos..self.rend]) {
                break self.rpos + i;
            }
            if self.rend - self.rpos >= MAX_HEAD {
                return Err((ReqError::Io("response head too large".into()), true));
            }
            let got_any = self.rend > self.rpos;
            let n = self.fill(deadline).map_err(|e| (e, got_any))?;
            if n == 0 {
                return Err((ReqError::Io("connection closed before the response".into()), got_any));
            }
        };
        let ttfb = start.elapsed();
        let head = std::str::from_utf8(&self.rbuf[self.rpos..head_end])
            .map_err(|_| (ReqError::Io("non-UTF-8 response head".into()), true))?
            .to_string();
        self.rpos = head_end + 4;
        let h = parse_head(&head).map_err(|m| (ReqError::Io(m), true))?;
        let (status, mut keep, chunked, content_length) = (h.status, h.keep, h.chunked, h.content_length);
        let content_encoding = h.content_encoding;
        let mut body_head = Vec::new();
        let no_body = method == "HEAD" || status == 204 || status == 304 || status < 200;
        let body_bytes = if no_body {
            0
        } else if chunked {
            self.read_chunked(deadline, &mut body_head).map_err(|e| (e, true))?
        } else if let Some(n) = content_length {
            self.read_exact_discard(n, deadline, &mut body_head).map_err(|e| (e, true))?;
            n
        } else {
            keep = false;
            self.read_to_eof(deadline, &mut body_head).map_err(|e| (e, true))?
        };
        Ok((
            Response {
                status,
                body_bytes,
                body_head: String::from_utf8_lossy(&body_head).into_owned(),
                ttfb,
                content_encoding,
            },
            keep,
        ))
    }

    /// Reads more bytes into the buffer (compacting it first); returns how many (0 = EOF).
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReqError> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        let rend = self.rend;
        let n = self.receive(deadline, |s, buf| s.read(&mut buf[rend..]))?;
        self.rend += n;
        Ok(n)
    }

    /// Runs `op` (a receive on the open stream, given the read buffer) until it returns
    /// something other than a timeout, re-arming the read timeout in slices of [`SLICE`] so
    /// that `deadline` holds.
    fn receive(
        &mut self,
        deadline: Instant,
        mut op: impl FnMut(&mut TcpStream, &mut [u8]) -> io::Result<usize>,
    ) -> Result<usize, ReqError> {
        let s = self.stream.as_mut().expect("connected");
        loop {
            let rem =
                remaining(deadline).ok_or_else(|| ReqError::Timeout("timed out waiting for the response".into()))?;
            let want = Some(rem.min(SLICE));
            if self.read_timeout != want {
                s.set_read_timeout(want).map_err(|e| ReqError::from_io(e, "setsockopt"))?;
                self.read_timeout = want;
            }
            match op(s, &mut self.rbuf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => continue,
                Err(e) => return Err(ReqError::from_io(e, "receive")),
            }
        }
    }

    fn take(&mut self, max: u64, keep: &mut Vec<u8>) -> u64 {
        let n = ((self.rend - self.rpos) as u64).min(max) as usize;
        if keep.len() < BODY_HEAD_KEEP {
            let k = n.min(BODY_HEAD_KEEP - keep.len());
            keep.extend_from_slice(&self.rbuf[self.rpos..self.rpos + k]);
        }
        self.rpos += n;
        n as u64
    }

    fn read_exact_discard(&mut self, mut n: u64, deadline: Instant, keep: &mut Vec<u8>) -> Result<(), ReqError> {
        while n > 0 {
            if self.rpos == self.rend {
                // Past the head kept for the report, a large body is dropped in the kernel.
                let got = if keep.len() >= BODY_HEAD_KEEP && n >= DISCARD_MIN {
                    self.discard(n, deadline)?
                } else {
                    self.fill(deadline)? as u64
                };
                if got == 0 {
                    return Err(ReqError::Io("connection closed inside the body".into()));
                }
                if self.rpos == self.rend {
                    n -= got;
                    continue;
                }
            }
            n -= self.take(n, keep);
        }
        Ok(())
    }

    /// Drops up to `max` bytes of the body from the socket without copying them: `recv` with
    /// MSG_TRUNC, which TCP sockets take as "consume, do not copy" (tcp(7)). The bytes are
    /// still sent, carried and acknowledged; only the copy into this process is skipped. A
    /// probe of a multi-GB store is read at the pace of the kernel's TCP work instead of that
    /// plus a copy of every byte, so a prober on the gateway's machine takes less of the CPU
    /// the gateway would otherwise have (a remote Prometheus would cost it nothing).
    /// Returns the bytes dropped (0 at EOF).
    fn discard(&mut self, max: u64, deadline: Instant) -> Result<u64, ReqError> {
        let n = self.receive(deadline, |s, buf| {
            let len = max.min(buf.len() as u64) as usize;
            // SAFETY: `buf` is valid for `len` bytes (with MSG_TRUNC the kernel does not even
            // write them); the descriptor is the open stream's.
            let r = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), len, libc::MSG_TRUNC) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        })?;
        Ok(n as u64)
    }

    fn read_to_eof(&mut self, deadline: Instant, keep: &mut Vec<u8>) -> Result<u64, ReqError> {
        let mut total = 0;
        loop {
            total += self.take(u64::MAX, keep);
            if self.fill(deadline)? == 0 {
                return Ok(total);
            }
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, ReqError> {
        loop {
            if let Some(i) = self.rbuf[self.rpos..self.rend].iter().position(|&b| b == b'\n') {
                let line =
                    String::from_utf8_lossy(&self.rbuf[self.rpos..self.rpos + i]).trim_end_matches('\r').to_string();
                self.rpos += i + 1;
                return Ok(line);
            }
            if self.rend - self.rpos > 4096 {
                return Err(ReqError::Io("chunk header too long".into()));
            }
            if self.fill(deadline)? == 0 {
                return Err(ReqError::Io("connection closed inside chunked body".into()));
            }
        }
    }

    fn read_chunked(&mut self, deadline: Instant, keep: &mut Vec<u8>) -> Result<u64, ReqError> {
        let mut total = 0;
        loop {
            let line = self.read_line(deadline)?;
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size =
                u64::from_str_radix(size_hex, 16).map_err(|_| ReqError::Io(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers until an empty line.
                while !self.read_line(deadline)?.is_empty() {}
                return Ok(total);
            }
            self.read_exact_discard(size, deadline, keep)?;
            total += size;
            let crlf = self.read_line(deadline)?;
            if !crlf.is_empty() {
                return Err(ReqError::Io("missing CRLF after chunk".into()));
            }
        }
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn loopback_only() {
        for ok in ["127.0.0.1:9091", "localhost:19091", "[::1]:9091", "http://127.0.0.2:80/", "127.0.0.1", "::1"] {
            assert!(parse_target(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_target("localhost:1").unwrap().addr.to_string(), "127.0.0.1:1");
        for bad in [
            "10.0.0.1:9091",
            "192.168.1.1:9091",
            "8.8.8.8:53",
            "example.com:80",
            "0.0.0.0:9091",
            "[::]:9091",
            "[2001:db8::1]:80",
            "127.0.0.1:99999",
            "user@127.0.0.1:1",
            "127.0.0.1:1/path",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    /// A scripted server: answers each request on one connection with the given responses.
    fn serve(responses: Vec<&'static str>) -> (Target, thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = Vec::new();
            for r in responses {
                // Read one request: head + Content-Length body.
                loop {
                    if let Some(i) = find_head_end(&buf) {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let cl: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + cl {
                            seen.push(String::from_utf8_lossy(&buf[..i + 4 + cl]).to_string());
                            buf.drain(..i + 4 + cl);
                            break;
                        }
                    }
                    let mut b = [0u8; 65536];
                    let n = s.read(&mut b).unwrap();
                    assert!(n > 0);
                    buf.extend_from_slice(&b[..n]);
                }
                s.write_all(r.as_bytes()).unwrap();
            }
            seen
        });
        (parse_target(&addr.to_string()).unwrap(), h)
    }

    #[test]
    fn keep_alive_content_length_and_chunked() {
        let (t, h) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad line 3\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        ]);
        let mut c = Conn::new(t);
        let dl = Instant::now() + Duration::from_secs(5);
        let r = c.request("PUT", "/metrics/job/a", "", Body::Bytes(b"x 1\n"), dl).unwrap();
        assert_eq!(r.status, 200);
        let r = c.request("PUT", "/metrics/job/b", "", Body::Bytes(b"y 2\n"), dl).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.body_head, "bad line 3\n");
        let r = c.request("GET", "/metrics", "Accept-Encoding: gzip\r\n", Body::Empty, dl).unwrap();
        assert_eq!(r.body_bytes, 11);
        assert_eq!(c.connects, 1, "one keep-alive connection");
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("PUT /metrics/job/a HTTP/1.1\r\n"));
        assert!(seen[0].ends_with("Content-Length: 4\r\n\r\nx 1\n"));
        assert!(seen[2].contains("Accept-Encoding: gzip\r\n"));
    }

    #[test]
    fn large_bodies_are_counted_and_the_stream_stays_in_step() {
        // Bodies far larger than the read buffer: past the kept head they are dropped in the
        // kernel (MSG_TRUNC), in Content-Length and chunked framing alike.
        let body: String = (0..3_000_000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let sized: &'static str =
            Box::leak(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into());
        let chunk = &body[..1_000_003];
        let chunked: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n3\r\nxyz\r\n0\r\n\r\n",
                chunk.len()
            )
            .into(),
        );
        let (t, h) = serve(vec![sized, chunked, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]);
        let mut c = Conn::with_buffer(t, 256 * 1024);
        let dl = Instant::now() + Duration::from_secs(10);
        let r = c.request("GET", "/metrics", "", Body::Empty, dl).unwrap();
        assert_eq!(r.body_bytes, body.len() as u64);
        assert_eq!(r.body_head, body[..BODY_HEAD_KEEP]);
        let r = c.request("GET", "/metrics", "", Body::Empty, dl).unwrap();
        assert_eq!(r.body_bytes, chunk.len() as u64 + 3);
        assert_eq!(r.body_head, body[..BODY_HEAD_KEEP]);
        let r = c.request("GET", "/metrics", "", Body::Empty, dl).unwrap();
        assert_eq!((r.status, r.body_head.as_str()), (200, "ok"), "the next answer is read from its first byte");
        assert_eq!(c.connects, 1);
        h.join().unwrap();
    }

    #[test]
    fn timeout_and_connect_errors() {
        // A listener that never answers.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = parse_target(&l.local_addr().unwrap().to_string()).unwrap();
        let mut c = Conn::new(t);
        let dl = Instant::now() + Duration::from_millis(200);
        let e = c.request("GET", "/metrics", "", Body::Empty, dl).unwrap_err();
        assert!(matches!(e, ReqError::Timeout(_)), "{e:?}");
        drop(l);
        // Nothing listens on a fresh port: connect error.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = parse_target(&l.local_addr().unwrap().to_string()).unwrap();
        drop(l);
        let mut c = Conn::new(t);
        let dl = Instant::now() + Duration::from_secs(2);
        let e = c.request("GET", "/metrics", "", Body::Empty, dl).unwrap_err();
        assert!(matches!(e, ReqError::Connect(_)), "{e:?}");
    }
}
