//! Hostile and malformed input: every case gets a clear answer, and the gateway keeps serving
//! everyone else with their data intact.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

/// A gateway holding one healthy group, to check nothing else was touched.
fn gateway_with(c: ringgate::config::Config) -> Gateway {
    let g = start_with(c);
    assert_eq!(g.put("/metrics/job/healthy", "# TYPE ok gauge\nok 1\n").status, 200);
    g
}

fn still_healthy(g: &Gateway) {
    assert_eq!(g.get("/-/healthy").status, 200);
    assert!(g.scrape().contains("ok{instance=\"\",job=\"healthy\"} 1\n"));
}

fn rejected(g: &Gateway, body: &[u8], status: u16, needle: &str) {
    let a = g.req("PUT", "/metrics/job/bad", &[], body);
    assert_eq!(a.status, status, "{}", a.text());
    assert!(a.text().contains(needle), "want {needle:?} in {}", a.text());
    assert!(!g.scrape().contains("job=\"bad\""), "nothing of a rejected push is stored");
}

#[test]
fn malformed_bodies() {
    let g = gateway_with(config());
    rejected(&g, b"m{l=\"\xff\xfe\"} 1\n", 400, "line 1: value of label \"l\" is not valid UTF-8");
    rejected(&g, b"# HELP m caf\xe9\nm 1\n", 400, "line 1: HELP text is not valid UTF-8");
    rejected(&g, b"ok 1\nm\x00 1\n", 400, "line 2:");
    rejected(&g, b"m{a=\"1\",a=\"2\"} 1\n", 400, "duplicate label \"a\"");
    rejected(&g, b"m 1\nm 2\n", 400, "line 2: duplicate series");
    still_healthy(&g);
    // CRLF line ends are accepted (the \r is dropped).
    assert_eq!(g.put("/metrics/job/crlf", "# TYPE c gauge\r\nc 1\r\n").status, 200);
    assert!(g.scrape().contains("c{instance=\"\",job=\"crlf\"} 1\n"));
}

#[test]
fn oversized_labels() {
    let g = gateway_with(config());
    let mut many = String::from("m{");
    for i in 0..10_000 {
        many.push_str(&format!("l{i}=\"v\","));
    }
    many.push_str("} 1\n");
    rejected(&g, many.as_bytes(), 400, "more than 64 (raise --push.max-labels)");
    let huge = format!("m{{l=\"{}\"}} 1\n", "x".repeat(10 << 20));
    rejected(&g, huge.as_bytes(), 400, "(raise --push.max-label-length)");
    still_healthy(&g);
}

#[test]
fn size_limits_name_their_flag() {
    let mut c = config();
    c.max_body = 1 << 20;
    c.max_decompressed = 4 << 20;
    c.max_series = 1000;
    let g = gateway_with(c);
    // A 1 GB Content-Length with a short body: refused from the head, at once.
    let mut s = g.connect();
    s.write_all(b"PUT /metrics/job/bad HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\nm 1\n").unwrap();
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 413);
    assert!(a.text().contains("--push.max-body-size"));
    // A gzip bomb: 256 MiB of zeros in a few hundred KiB, against a 4 MiB limit.
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    };
    assert!(bomb.len() < 1 << 20);
    let a = g.req("PUT", "/metrics/job/bad", &[("Content-Encoding", "gzip")], &bomb);
    assert_eq!(a.status, 413, "{}", a.text());
    assert!(a.text().contains("--push.max-decompressed-size"));
    let a = g.req("PUT", "/metrics/job/bad", &[("Content-Encoding", "br")], b"m 1\n");
    assert_eq!(a.status, 415);
    let a = g.req("PUT", "/metrics/job/bad", &[("Content-Encoding", "gzip")], b"not gzip at all");
    assert_eq!(a.status, 400);
    let many: String = (0..1001).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    rejected(&g, many.as_bytes(), 400, "(raise --push.max-series)");
    still_healthy(&g);
}

#[test]
fn store_limits_answer_429_and_503() {
    let mut c = config();
    c.max_groups = 4; // two per shard
    c.max_bytes = 1 << 20;
    let g = start_with(c);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(g.put(&format!("/metrics/job/g{i}"), "m 1\n"));
    }
    let limited: Vec<&Answer> = statuses.iter().filter(|a| a.status == 429).collect();
    assert!(limited.len() >= 8, "{:?}", statuses.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(limited[0].text().contains("--store.max-groups"));
    assert!(limited[0].header("retry-after").is_some());
    // Existing groups can still be replaced.
    let held = statuses.iter().position(|a| a.status == 200).unwrap();
    assert_eq!(g.put(&format!("/metrics/job/g{held}"), "m 2\n").status, 200);
    // Bytes: a push that would overflow the owner's share is refused with 503.
    let big: String = (0..20_000).map(|i| format!("big{{i=\"{i}\"}} 1\n")).collect();
    let a = g.put(&format!("/metrics/job/g{held}"), &big);
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(a.text().contains("--store.max-bytes"));
    assert!(a.header("retry-after").is_some());
    assert!(g.scrape().contains(&format!("m{{instance=\"\",job=\"g{held}\"}} 2\n")));
}

#[test]
fn pipelined_garbage_after_a_valid_request() {
    let g = gateway_with(config());
    let mut s = g.connect();
    s.write_all(b"PUT /metrics/job/p HTTP/1.1\r\nContent-Length: 4\r\n\r\nm 1\n\x16\x03\x01garbage\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut s, false).unwrap().status, 200);
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 400);
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "connection closed after garbage");
    assert!(g.scrape().contains("m{instance=\"\",job=\"p\"} 1\n"));
    still_healthy(&g);
}

#[test]
fn slow_clients_are_cut_off() {
    let mut c = config();
    c.header_timeout = Duration::from_millis(500);
    c.body_timeout = Duration::from_millis(500);
    let g = gateway_with(c);
    // One byte at a time, too slowly: the head deadline covers the whole head.
    let mut s = g.connect();
    let started = Instant::now();
    for b in b"PUT /metrics/job/slow HTTP/1.1\r\nContent-Length: 4\r\n\r\n" {
        if s.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_millis(900) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let a = read_answer(&mut s, false).expect("an answer to the slow head");
    assert_eq!(a.status, 408);
    // A body that never comes.
    let mut s = g.connect();
    s.write_all(b"PUT /metrics/job/slow HTTP/1.1\r\nContent-Length: 100\r\n\r\nm 1\n").unwrap();
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 408);
    assert!(a.text().contains("body"));
    still_healthy(&g);
}

#[test]
fn the_connection_cap_answers_503() {
    let mut c = config();
    c.max_connections = 2;
    let g = gateway_with(c);
    // Idle connections fill both shards' caps (SO_REUSEPORT spreads them).
    let idle: Vec<_> = (0..12).map(|_| g.connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = 0;
    for _ in 0..6 {
        let mut s = g.connect();
        s.write_all(b"GET /-/healthy HTTP/1.1\r\n\r\n").unwrap();
        if let Some(a) = read_answer(&mut s, false) {
            if a.status == 503 {
                assert!(a.text().contains("--http.max-connections"));
                assert!(a.header("retry-after").is_some());
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    still_healthy(&g);
}
