//! HTTP/1.1 on httparse: reading requests (keep-alive, pipelining, Content-Length and chunked
//! bodies, `Expect: 100-continue`) and writing responses, including the vectored body writes
//! of a scrape.
//!
//! One [`Conn`] per TCP connection owns a read buffer; bytes after one request (pipelined
//! requests) stay in it for the next. Every read has a deadline: the idle timeout before the
//! first byte of a request, then the header and body timeouts, so a client that sends one byte
//! a second cannot hold a connection for long.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Other,
}

/// A request whose head and body have been read.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// Path without the query string, still percent-encoded.
    pub path: String,
    pub query: String,
    pub keep_alive: bool,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub accept_gzip: bool,
    /// Extra headers the API reads (lifecycle overrides, scraper identity), lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// The share of the shard's in-flight body budget this request holds (see
    /// [`Limits::budget`]); the server keeps it until the push is applied.
    pub permit: Option<glommio::sync::StaticPermit>,
    /// The body had to wait for that budget.
    pub waited: bool,
}

/// A request body. One of at least [`Body::POOLED_MIN`] bytes is read into a buffer this
/// thread had already used for an earlier body, and goes back to it when dropped (see
/// [`crate::sys::BufPool`]): a body of an exporter push is hundreds of KB, and a fresh one each
/// time is a new mapping whose every page faults and is zeroed twice (by the kernel, then by
/// the resize) before the first byte is read into it.
#[derive(Default)]
pub struct Body(Vec<u8>);

thread_local! {
    static BODY_POOL: std::cell::RefCell<crate::sys::BufPool> =
        const { std::cell::RefCell::new(crate::sys::BufPool::new(Body::POOL_DEFAULT_BYTES)) };
}

impl Body {
    /// Bodies smaller than this come from the allocator as they are (cheap at that size).
    pub const POOLED_MIN: usize = 64 * 1024;
    /// Bytes of buffers a thread keeps unless told otherwise ([`Body::keep_buffers`]).
    const POOL_DEFAULT_BYTES: usize = 8 << 20;

    /// Lets this thread keep up to `bytes` of body buffers. A shard keeps its
    /// `--push.max-in-flight`: it holds that much of bodies at once in a burst of pushes
    /// anyway, and with less kept most bodies of the burst would be fresh mappings again.
    pub fn keep_buffers(bytes: usize) {
        BODY_POOL.with(|p| p.borrow_mut().set_max(bytes));
    }

    /// Bytes of body buffers this thread keeps for the next pushes.
    pub fn pooled_bytes() -> usize {
        BODY_POOL.try_with(|p| p.try_borrow().map_or(0, |p| p.bytes())).unwrap_or(0)
    }

    /// A body of `n` bytes of unspecified content, to be overwritten.
    pub fn with_len(n: usize) -> Body {
        if n >= Body::POOLED_MIN {
            let found = BODY_POOL.with(|p| p.borrow_mut().take(n));
            if let Some(mut v) = found {
                // Pooled buffers keep their length (their bytes are initialized): no zeroing
                // but of bytes never used before.
                v.resize(v.capacity(), 0);
                v.truncate(n);
                return Body(v);
            }
        }
        Body(vec![0; n])
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() < Body::POOLED_MIN {
            return;
        }
        // Not during the thread's teardown.
        let _ = BODY_POOL.try_with(|p| p.borrow_mut().give(v));
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// Why no request could be read. `status()` is what to answer, if anything.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or went idle) between requests: close quietly.
    Closed,
    Timeout(&'static str),
    HeadTooLarge(usize),
    BodyTooLarge(usize),
    Malformed(String),
    Io(io::Error),
}

impl ReadError {
    /// Status and message for the client; `None` when nothing should be sent.
    pub fn response(&self) -> Option<(u16, String)> {
        match self {
            ReadError::Closed | ReadError::Io(_) => None,
            ReadError::Timeout(what) => Some((408, format!("timed out reading the request {what}\n"))),
            ReadError::HeadTooLarge(n) => {
                Some((431, format!("request head is larger than {n} bytes (raise --http.max-header-size)\n")))
            }
            ReadError::BodyTooLarge(n) => {
                Some((413, format!("request body is larger than {n} bytes (raise --push.max-body-size)\n")))
            }
            ReadError::Malformed(m) => Some((400, format!("malformed request: {m}\n"))),
        }
    }
}

pub struct Limits {
    pub max_header: usize,
    pub max_body: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes of bodies this shard may read at once, and its capacity: a body with a
    /// Content-Length takes that many units (at most the capacity) before it is read and
    /// waits in line when they are not free. Bodies sent chunked are not counted.
    pub budget: Option<(std::rc::Rc<glommio::sync::Semaphore>, u64)>,
}

pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Answers not yet written: while the next pipelined request is already buffered, small
    /// answers are gathered here and leave in one send (see [`Conn::respond`]).
    pending: Vec<u8>,
}

/// Pending answers are written once they reach this size, pipelined requests or not.
const PENDING_MAX: usize = 64 * 1024;

const MAX_HEADERS: usize = 96;

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn { stream, buf: vec![0; 16 * 1024], start: 0, end: 0, pending: Vec::new() }
    }

    /// Reads into the buffer until `deadline`; returns bytes read (0 = EOF).
    async fn fill(&mut self, deadline: Instant, what: &'static str) -> Result<usize, ReadError> {
        // Never wait for the peer while its answers sit here.
        self.flush().await.map_err(ReadError::Io)?;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout(what));
        }
        let _ = self.stream.set_read_timeout(Some(left));
        match self.stream.read(&mut self.buf[self.end..]).await {
            Ok(n) => {
                self.end += n;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.raw_os_error() == Some(libc::ETIME) => {
                Err(ReadError::Timeout(what))
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Reads the next request. `Err(Closed)` when the peer closed cleanly between requests.
    pub async fn read_request(&mut self, lim: &Limits) -> Result<Request, ReadError> {
        if self.start == self.end {
            // Idle between requests: a quiet close is not an error.
            let idle = Instant::now() + lim.idle_timeout;
            match self.fill(idle, "head").await {
                Ok(0) | Err(ReadError::Timeout(_)) | Err(ReadError::Io(_)) => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        let head_deadline = Instant::now() + lim.header_timeout;
        let (head_len, mut req, content_length, chunked, expect_continue) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete(n)) => break head(&r, n)?,
                Ok(httparse::Status::Partial) => {
                    if self.end - self.start > lim.max_header {
                        return Err(ReadError::HeadTooLarge(lim.max_header));
                    }
                    if self.fill(head_deadline, "head").await? == 0 {
                        return Err(if self.end == self.start {
                            ReadError::Closed
                        } else {
                            ReadError::Malformed("connection closed in the middle of the request head".into())
                        });
                    }
                }
                Err(e) => return Err(ReadError::Malformed(format!("{e}"))),
            }
        };
        if head_len > lim.max_header {
            return Err(ReadError::HeadTooLarge(lim.max_header));
        }
        self.start += head_len;
        if content_length.is_some_and(|n| n > lim.max_body) {
            return Err(ReadError::BodyTooLarge(lim.max_body));
        }
        if let (Some((budget, cap)), Some(n)) = (&lim.budget, content_length.filter(|&n| n > 0)) {
            // Waits (FIFO) while earlier bodies on this shard hold the budget; the client's
            // bytes stay in the kernel's socket buffers meanwhile. Never closed, so no error.
            let units = (n as u64).min(*cap);
            req.waited = budget.available() < units;
            if req.waited {
                // Answers held for earlier pipelined requests do not wait for other bodies.
                self.flush().await.map_err(ReadError::Io)?;
            }
            req.permit = budget.acquire_static_permit(units).await.ok();
        }
        if expect_continue && (content_length.unwrap_or(0) > 0 || chunked) && self.start == self.end {
            self.pending.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush().await.map_err(ReadError::Io)?;
        }
        let body_deadline = Instant::now() + lim.body_timeout;
        if chunked {
            req.body = Body(self.read_chunked(lim.max_body, body_deadline).await?);
        } else if let Some(n) = content_length {
            let mut body = Body::with_len(n);
            let have = (self.end - self.start).min(n);
            body.0[..have].copy_from_slice(&self.buf[self.start..self.start + have]);
            self.start += have;
            if have < n {
                self.flush().await.map_err(ReadError::Io)?;
                let body = &mut body.0;
                let mut got = have;
                while got < n {
                    let left = body_deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ReadError::Timeout("body"));
                    }
                    let _ = self.stream.set_read_timeout(Some(left));
                    match self.stream.read(&mut body[got..]).await {
                        Ok(0) => return Err(ReadError::Malformed(format!("body ended after {got} of {n} bytes"))),
                        Ok(k) => got += k,
                        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.raw_os_error() == Some(libc::ETIME) => {
                            return Err(ReadError::Timeout("body"))
                        }
                        Err(e) => return Err(ReadError::Io(e)),
                    }
                }
            }
            req.body = body;
        }
        Ok(req)
    }

    async fn read_chunked(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            // Chunk-size line.
            let line_end = loop {
                if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                    break self.start + i;
                }
                if self.end - self.start > 4096 {
                    return Err(ReadError::Malformed("chunk size line too long".into()));
                }
                if self.fill(deadline, "body").await? == 0 {
                    return Err(ReadError::Malformed("connection closed inside a chunked body".into()));
                }
            };
            let line = &self.buf[self.start..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let hex = line.split(|&c| c == b';').next().unwrap_or(b"");
            let hex = std::str::from_utf8(hex).unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16).ok().filter(|_| !hex.is_empty() && hex.len() <= 15).ok_or_else(
                || ReadError::Malformed(format!("invalid chunk size {:?}", String::from_utf8_lossy(line))),
            )?;
            self.start = line_end + 1;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let end = loop {
                        if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                            break self.start + i;
                        }
                        if self.end - self.start > 8192 {
                            return Err(ReadError::Malformed("chunked trailer too long".into()));
                        }
                        if self.fill(deadline, "body").await? == 0 {
                            return Err(ReadError::Malformed("connection closed inside chunked trailers".into()));
                        }
                    };
                    let empty = end == self.start || (end == self.start + 1 && self.buf[self.start] == b'\r');
                    self.start = end + 1;
                    if empty {
                        return Ok(body);
                    }
                }
            }
            if body.len() + size > max {
                return Err(ReadError::BodyTooLarge(max));
            }
            // Chunk data plus its CRLF.
            let mut need = size;
            while need > 0 {
                if self.start == self.end && self.fill(deadline, "body").await? == 0 {
                    return Err(ReadError::Malformed("connection closed inside a chunk".into()));
                }
                let take = need.min(self.end - self.start);
                body.extend_from_slice(&self.buf[self.start..self.start + take]);
                self.start += take;
                need -= take;
            }
            while self.end - self.start < 2 {
                if self.fill(deadline, "body").await? == 0 {
                    return Err(ReadError::Malformed("connection closed inside a chunk".into()));
                }
            }
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return Err(ReadError::Malformed("chunk data not followed by CRLF".into()));
            }
            self.start += 2;
        }
    }

    /// Writes a complete response with a small body. When the next request is already in the
    /// buffer (the client pipelines), the answer waits in `pending` for the ones after it, so
    /// that a run of pipelined requests is answered with one send; it is written before this
    /// connection next waits to read or for the body budget, before any streamed answer, and
    /// at [`PENDING_MAX`].
    pub async fn respond(&mut self, resp: &Response, head_only: bool, keep_alive: bool) -> io::Result<()> {
        resp.head_into(&mut self.pending, resp.body.len(), keep_alive);
        if !head_only {
            self.pending.extend_from_slice(&resp.body);
        }
        if !keep_alive || self.start == self.end || self.pending.len() >= PENDING_MAX {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the answers gathered by [`Conn::respond`].
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.pending).await;
        self.pending.clear();
        if self.pending.capacity() > PENDING_MAX {
            self.pending = Vec::new();
        }
        r
    }

    /// Writes `bufs` in order with vectored sends; when the socket is full, waits for it
    /// through glommio (one plain write of the next buffer) and goes on vectored.
    pub async fn write_vectored_all(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let fd = self.stream.as_raw_fd();
        let mut cursor = sys::IoCursor::new(bufs);
        let mut iov = Vec::with_capacity(1024);
        while !cursor.done() {
            cursor.iov(&mut iov);
            let sent = match sys::try_writev(fd, &iov)? {
                Some(n) => n,
                // Full socket: let glommio wait for room, writing part of the next buffer.
                None => self.stream.write(cursor.current()).await?,
            };
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            cursor.advance(sent);
        }
        Ok(())
    }
}

type Head = (usize, Request, Option<usize>, bool, bool);

fn head(r: &httparse::Request<'_, '_>, n: usize) -> Result<Head, ReadError> {
    let method = match r.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    };
    let target = r.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let http11 = r.version == Some(1);
    let mut keep_alive = http11;
    let mut content_length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut req = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        keep_alive,
        content_type: None,
        content_encoding: None,
        accept_gzip: false,
        headers: Vec::new(),
        body: Body::default(),
        permit: None,
        waited: false,
    };
    for h in r.headers.iter() {
        let v = std::str::from_utf8(h.value)
            .map_err(|_| ReadError::Malformed(format!("header {} is not valid UTF-8", h.name)))?
            .trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = v.parse().map_err(|_| ReadError::Malformed(format!("invalid Content-Length {v:?}")))?;
            if content_length.is_some_and(|l| l != len) {
                return Err(ReadError::Malformed("conflicting Content-Length headers".into()));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if !v.eq_ignore_ascii_case("identity") {
                return Err(ReadError::Malformed(format!("unsupported Transfer-Encoding {v:?}")));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for tok in v.split(',') {
                let tok = tok.trim();
                if tok.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if tok.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = v.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("content-type") {
            req.content_type = Some(v.to_string());
        } else if name.eq_ignore_ascii_case("content-encoding") {
            req.content_encoding = Some(v.to_string());
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            req.accept_gzip = v.split(',').any(|t| {
                let mut parts = t.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let q_zero = parts.any(|p| p.trim().replace(' ', "") == "q=0");
                coding.eq_ignore_ascii_case("gzip") && !q_zero
            });
        } else if name.len() > 2 && name[..2].eq_ignore_ascii_case("x-") {
            req.headers.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    if chunked && content_length.is_some() {
        // RFC 9112 6.3: a message with both is a smuggling attempt; refuse it.
        return Err(ReadError::Malformed("both Transfer-Encoding and Content-Length".into()));
    }
    req.keep_alive = keep_alive;
    Ok((n, req, content_length, chunked, expect_continue))
}

/// A response with a small in-memory body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Headers besides Content-Type and Content-Length (none on most answers: an answer to a
    /// push allocates nothing for its head).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        let mut b: String = body.into();
        if !b.is_empty() && !b.ends_with('\n') {
            b.push('\n');
        }
        Response::new(status, "text/plain; charset=utf-8", b)
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Status line and headers for a body of `len` bytes.
    pub fn head(&self, len: usize, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.head_into(&mut out, len, keep_alive);
        out
    }

    /// [`Response::head`], appended to `out`.
    pub fn head_into(&self, out: &mut Vec<u8>, len: usize, keep_alive: bool) {
        // Written piece by piece: every answer to a push goes through here.
        use std::io::Write;
        out.extend_from_slice(b"HTTP/1.1 ");
        let _ = write!(out, "{}", self.status);
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        let _ = write!(out, "{len}");
        out.extend_from_slice(b"\r\n");
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Parses one request head from the start of `buf`, as [`Conn::read_request`] does: `Ok(None)`
/// when more bytes are needed. For fuzzing and tests; the server reads through [`Conn`].
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Request)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => match head(&r, n) {
            Ok((n, req, ..)) => Ok(Some((n, req))),
            Err(e) => Err(e.response().map(|(_, m)| m).unwrap_or_default()),
        },
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let (n, r) = parse_head(
            b"PUT /metrics/job/a?x=1 HTTP/1.1\r\nContent-Type: text/plain\r\nX-Ringgate-TTL: 5s\r\n\r\nbody",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 81, "the head ends before the body");
        assert_eq!((r.method, r.path.as_str(), r.query.as_str()), (Method::Put, "/metrics/job/a", "x=1"));
        assert_eq!(r.header("x-ringgate-ttl"), Some("5s"));
        assert!(r.keep_alive);
        assert!(parse_head(b"GET / HTTP/1.1\r\n").unwrap().is_none());
        assert!(parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap_err().contains("Content-Length"));
        assert!(parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n").is_err());
        let (_, r) = parse_head(b"GET / HTTP/1.0\r\nAccept-Encoding: br, gzip;q=0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive && !r.accept_gzip);
    }

    #[test]
    fn body_buffers_come_back_to_the_pool_and_keep_only_the_new_length() {
        let n = Body::POOLED_MIN * 3;
        let mut a = Body::with_len(n);
        a.0.fill(b'x');
        let ptr = a.0.as_ptr();
        drop(a);
        // A smaller body reuses the buffer, with exactly its own length.
        let b = Body::with_len(n - 10);
        assert_eq!((b.0.as_ptr(), b.len()), (ptr, n - 10));
        drop(b);
        // A larger one cannot: a new buffer, zeroed.
        let c = Body::with_len(n + 1);
        assert_ne!(c.0.as_ptr(), ptr);
        assert!(c.iter().all(|&x| x == 0));
        // Small bodies never come from the pool.
        let d = Body::with_len(10);
        assert_ne!(d.0.as_ptr(), ptr);
        assert_eq!(d.len(), 10);
        drop((c, d));
        // Nor does a pool grow past its bytes: of a burst of bodies, the largest stay.
        let min = Body::POOLED_MIN;
        Body::keep_buffers(2 * n + 2 * min + 100);
        let many: Vec<Body> = (0..20).map(|i| Body::with_len(min + i)).collect();
        drop(many);
        BODY_POOL.with(|p| {
            let p = p.borrow();
            assert!(p.bytes() <= p.max(), "{} of {}", p.bytes(), p.max());
        });
        let mut caps = Vec::new();
        while let Some(v) = BODY_POOL.with(|p| p.borrow_mut().take(0)) {
            caps.push(v.capacity());
        }
        caps.sort_unstable();
        // The two large buffers went to the first two bodies; of the rest the largest stay.
        assert_eq!(caps, [min + 18, min + 19, n, n + 1]);
        // The limit a shard sets holds for every later body; 0 keeps none.
        Body::keep_buffers(0);
        drop(Body::with_len(n));
        assert_eq!(BODY_POOL.with(|p| p.borrow().len()), 0);
        Body::keep_buffers(Body::POOL_DEFAULT_BYTES);
    }
}
