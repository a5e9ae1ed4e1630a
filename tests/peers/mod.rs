//! Harness for the end-to-end tests with real peers: the built `ringgate` binary started as a
//! process on 127.0.0.1 (port 0, the real address read from its startup line), the Debian
//! `prometheus` server scraping it, and the tools they need (a blocking HTTP/1.1 client, a
//! small JSON reader for Prometheus' API, temp dirs).
//!
//! A missing peer is a failure, never a skip: [`require`] panics with the command that
//! installs it.
//!
//! Staleness in Prometheus, for any way a group leaves the scrape (DELETE, ttl expiry, a
//! clear-lifecycle scrape):
//!
//! ```ignore
//! mod peers;
//! let gw = peers::Gateway::start(&["--lifecycle", "clear"]);
//! let prom = peers::Prometheus::start_with_params(gw.addr, &[("scraper", "replica-a")]);
//! gw.put("/metrics/job/j", b"m 1\n");
//! prom.wait_for_series("m", WAIT);     // scraped once ...
//! prom.wait_until_stale("m", WAIT);    // ... then gone from the next scrape
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str = "run `bash scripts/install-test-deps.sh` (as root) to install the test peers";

/// The path of a peer program, or a panic that says how to install it.
pub fn require(program: &str) -> PathBuf {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
            .unwrap_or(None)
    };
    found.unwrap_or_else(|| panic!("{program} is not installed: {INSTALL_HINT}"))
}

/// The real payloads in ../shared/data (CI clones the repo with shared/ beside it).
pub fn shared_data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e} (shared/ must sit beside the repo)", path.display()))
}

/// A directory under cargo's per-target temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on 127.0.0.1, for peers that cannot report the port they bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` every 200 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`); reads Content-Length, chunked or
/// until-close bodies.
pub fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    try_http(addr, method, target, headers, body).unwrap_or_else(|e| panic!("{method} http://{addr}{target}: {e}"))
}

pub fn try_http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_answer(&raw, method == "HEAD")
}

fn parse_answer(raw: &[u8], head_only: bool) -> std::io::Result<Answer> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(status_line))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))).collect();
    let rest = &raw[end + 4..];
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let body = if head_only {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len {
            return Err(bad("body shorter than Content-Length"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The gateway as a process

/// The built `ringgate` binary, running on 127.0.0.1 with a free port.
pub struct Gateway {
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `ringgate --web.listen-address 127.0.0.1:0 ARGS` and waits for its startup line.
    pub fn start(args: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringgate"))
            .arg("--web.listen-address")
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the ringgate binary");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening") {
                    if let Some(addr) = startup_address(&line) {
                        let _ = tx.send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("ringgate printed no startup line ({status:?}); stderr:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        Gateway { addr, child, log }
    }

    pub fn put(&self, path: &str, body: &[u8]) -> Answer {
        http(self.addr, "PUT", path, &[], body)
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Answer {
        http(self.addr, "POST", path, &[], body)
    }

    pub fn delete(&self, path: &str) -> Answer {
        http(self.addr, "DELETE", path, &[], b"")
    }

    /// `GET /metrics`, asserting 200.
    pub fn scrape(&self) -> String {
        let a = http(self.addr, "GET", "/metrics", &[], b"");
        assert_eq!(a.status, 200, "GET /metrics: {}", a.text());
        a.text()
    }

    /// What the gateway wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `... msg="ringgate 0.1.0 listening" address=127.0.0.1:40123 shards=2` -> the address.
pub fn startup_address(line: &str) -> Option<SocketAddr> {
    line.split_whitespace().find_map(|w| w.strip_prefix("address=")).and_then(|a| a.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/// One sample of an instant query: its labels (`__name__` included) and value text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: String,
}

/// The Debian `prometheus` server with a temp config and TSDB, scraping targets every second.
pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

impl Prometheus {
    /// Scrapes `gateway` every second with `honor_labels: true` (job name `ringgate`).
    pub fn start(gateway: SocketAddr) -> Prometheus {
        Prometheus::start_with_params(gateway, &[])
    }

    /// As [`Prometheus::start`], with scrape `params` (query parameters on every scrape), e.g.
    /// `&[("scraper", "replica-a")]` for the clear lifecycle.
    pub fn start_with_params(gateway: SocketAddr, params: &[(&str, &str)]) -> Prometheus {
        let bin = require("/usr/bin/prometheus");
        let mut last_err = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("prometheus");
            let mut config = String::from(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: ringgate\n    honor_labels: true\n",
            );
            if !params.is_empty() {
                config.push_str("    params:\n");
                for (k, v) in params {
                    config.push_str(&format!("      {k}: ['{v}']\n"));
                }
            }
            config.push_str(&format!("    static_configs:\n      - targets: ['{gateway}']\n"));
            let config_path = dir.path().join("prometheus.yml");
            std::fs::write(&config_path, config).unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log_path = dir.path().join("prometheus.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!(
                        "prometheus exited ({status}):\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                if try_http(addr, "GET", "/-/ready", &[], b"").is_ok_and(|a| a.status == 200) {
                    return Prometheus { addr, child, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!(
                        "prometheus not ready within 60 s:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("{last_err}");
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through `/api/v1/query`.
    pub fn query(&self, promql: &str) -> Vec<Sample> {
        let a = http(self.addr, "GET", &format!("/api/v1/query?query={}", urlencode(promql)), &[], b"");
        assert_eq!(a.status, 200, "query {promql:?}: {}", a.text());
        let doc = json::parse(&a.text()).unwrap_or_else(|e| panic!("query {promql:?}: {e}: {}", a.text()));
        assert_eq!(doc.get("status").and_then(|s| s.as_str()), Some("success"), "{}", a.text());
        let result = doc.get("data").and_then(|d| d.get("result")).and_then(|r| r.as_array()).expect("data.result");
        result
            .iter()
            .map(|r| {
                let labels = r
                    .get("metric")
                    .and_then(|m| m.as_object())
                    .expect("metric")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let value = r
                    .get("value")
                    .and_then(|v| v.as_array())
                    .and_then(|v| v.get(1))
                    .and_then(|v| v.as_str())
                    .expect("value")
                    .to_string();
                Sample { labels, value }
            })
            .collect()
    }

    /// Waits until `promql` returns at least one sample, and returns them.
    pub fn wait_for_series(&self, promql: &str, timeout: Duration) -> Vec<Sample> {
        wait_for(&format!("{promql} to return series in Prometheus"), timeout, || {
            let r = self.query(promql);
            (!r.is_empty()).then_some(r)
        })
    }

    /// Waits until `promql` returns nothing: the series it selects went stale in Prometheus
    /// (the scrape no longer carried them, so Prometheus wrote staleness markers). Use it after
    /// a DELETE, an expiry, or a clear-lifecycle scrape.
    pub fn wait_until_stale(&self, promql: &str, timeout: Duration) {
        wait_for(&format!("{promql} to go stale in Prometheus"), timeout, || {
            self.query(promql).is_empty().then_some(())
        })
    }

    /// The health of the gateway as a scrape target (`up`), once Prometheus has scraped it.
    pub fn target_up(&self) -> String {
        let up = self.wait_for_series("up{job=\"ringgate\"}", Duration::from_secs(30));
        up[0].value.clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The exposition format, as a test reads it

/// A sample as a test reads it: name, labels (in the order written) and value text.
pub type TextSample = (String, Vec<(String, String)>, String);

/// A sample line split into name, labels (in the order written) and value text; `None` for
/// comments and blank lines. Handles the text format's `\\`, `\"` and `\n` escapes.
pub fn parse_sample(line: &str) -> Option<TextSample> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            r = r.trim_start_matches(',');
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=')?;
            let lname = r[..eq].to_string();
            r = r[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            };
            labels.push((lname, value));
            r = &r[end + 1..];
        }
    }
    Some((name, labels, rest.trim().to_string()))
}

// ---------------------------------------------------------------------------------------------
// JSON, enough for Prometheus' API answers

pub mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }
        pub fn as_array(&self) -> Option<&Vec<Value>> {
            match self {
                Value::Array(a) => Some(a),
                _ => None,
            }
        }
        pub fn as_object(&self) -> Option<&Vec<(String, Value)>> {
            match self {
                Value::Object(o) => Some(o),
                _ => None,
            }
        }
    }

    pub fn parse(s: &str) -> Result<Value, String> {
        let mut p = Parser { b: s.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", c as char, self.i))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Object(fields));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        fields.push((k, self.value()?));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(fields));
                            }
                            _ => return Err(format!("expected , or }} at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return Err(format!("expected , or ] at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') if self.b[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Value::Null)
                }
                Some(_) => {
                    let start = self.i;
                    while self.i < self.b.len()
                        && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.b[start..self.i]).unwrap();
                    text.parse().map(Value::Number).map_err(|_| format!("bad number {text:?} at {start}"))
                }
                None => Err("unexpected end".into()),
            }
        }
        fn string(&mut self) -> Result<String, String> {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(format!("expected a string at {}", self.i));
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let c = *self.b.get(self.i).ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let e = *self.b.get(self.i).ok_or("unterminated escape")?;
                        self.i += 1;
                        match e {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4).ok_or("short \\u")?)
                                    .map_err(|e| e.to_string())?;
                                self.i += 4;
                                let mut cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                if (0xD800..0xDC00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                                    let lo = std::str::from_utf8(&self.b[self.i + 2..self.i + 6]).unwrap_or("0");
                                    let lo = u32::from_str_radix(lo, 16).map_err(|e| e.to_string())?;
                                    self.i += 6;
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                                let mut buf = [0; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            other => out.push(other),
                        }
                    }
                    c => out.push(c),
                }
            }
        }
    }

    #[test]
    fn parses_a_prometheus_answer() {
        let v = parse(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"x","a":"\u00fc\"b"},"value":[1.5,"42"]}]}}"#).unwrap();
        let r = &v.get("data").unwrap().get("result").unwrap().as_array().unwrap()[0];
        assert_eq!(r.get("metric").unwrap().get("a").unwrap().as_str(), Some("ü\"b"));
        assert_eq!(r.get("value").unwrap().as_array().unwrap()[1].as_str(), Some("42"));
    }
}
