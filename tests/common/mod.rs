//! Test harness: a real server on 127.0.0.1:0 in this process, and a small blocking HTTP
//! client that keeps the raw bytes of every answer.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringgate::config::Config;
use ringgate::server::{self, Running};

pub struct Gateway {
    pub addr: SocketAddr,
    running: Option<Running>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
            r.join();
        }
    }
}

pub fn config() -> Config {
    Config { listen: "127.0.0.1:0".parse().unwrap(), shards: 2, pin: false, ..Config::default() }
}

pub fn start() -> Gateway {
    start_with(config())
}

pub fn start_with(c: Config) -> Gateway {
    let running = server::start(c).expect("gateway starts");
    Gateway { addr: running.addr, running: Some(running) }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

impl Gateway {
    /// A client for a gateway started elsewhere (another thread's).
    pub fn attach(addr: SocketAddr) -> Gateway {
        Gateway { addr, running: None }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// One request on a fresh connection with `Connection: close`.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut s = self.connect();
        let mut r =
            format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (n, v) in headers {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\n");
        s.write_all(r.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        read_answer(&mut s, method == "HEAD").unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    pub fn put(&self, path: &str, body: &str) -> Answer {
        self.req("PUT", path, &[], body.as_bytes())
    }

    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.req("POST", path, &[], body.as_bytes())
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.req("DELETE", path, &[], b"")
    }

    pub fn get(&self, path: &str) -> Answer {
        self.req("GET", path, &[], b"")
    }

    /// The scrape without the push-time gauges, whose values change on every push, and without
    /// the gateway's own `ringgate_*` metrics.
    pub fn scrape(&self) -> String {
        let a = self.get("/metrics");
        assert_eq!(a.status, 200, "{}", a.text());
        strip_times(&a.text())
    }
}

pub fn strip_times(s: &str) -> String {
    s.lines()
        .filter(|l| !l.contains("push_time_seconds") && !l.contains("push_failure_time_seconds"))
        .filter(|l| {
            !l.starts_with("ringgate_") && !l.starts_with("# HELP ringgate_") && !l.starts_with("# TYPE ringgate_")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Reads one response (Content-Length framed) from `s`.
pub fn read_answer(s: &mut TcpStream, head_only: bool) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    if status == 100 {
        return read_answer(s, head_only);
    }
    if !head_only && head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // Keep the chunked framing; tests decode it themselves.
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if s.read(&mut byte).ok()? == 0 {
                    return None;
                }
                line.push(byte[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).ok()?, 16).ok()?;
            body.extend_from_slice(&line);
            let mut data = vec![0; n + 2];
            s.read_exact(&mut data).ok()?;
            body.extend_from_slice(&data);
            if n == 0 {
                return Some(Answer { status, head, body });
            }
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0; if head_only { 0 } else { len }];
    s.read_exact(&mut body).ok()?;
    Some(Answer { status, head, body })
}

pub fn shared_data(name: &str) -> String {
    let path = format!("{}/../shared/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Runs `promtool check metrics` on `text`; panics with its output on a parse error.
pub fn promtool_check(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is missing: run scripts/test.sh, which installs Debian's prometheus package");
    let mut stdin = child.stdin.take().unwrap();
    let owned = text.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(owned.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Lint findings (exit 3: naming advice) are not parse errors; any "error" is.
    assert!(
        !report.contains("error while linting")
            && !report.to_lowercase().contains("parse error")
            && out.status.code() != Some(1),
        "promtool reported a problem: {report}"
    );
}

/// A text body of about `mb` MiB: one gauge family, one long series per line.
pub fn big_body(mb: usize) -> String {
    let mut s = String::with_capacity(mb << 20);
    s.push_str("# TYPE filler gauge\n");
    let mut i = 0;
    while s.len() < mb << 20 {
        s.push_str(&format!(
            "filler{{n=\"{i}\",pad=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}} {i}\n"
        ));
        i += 1;
    }
    s
}
