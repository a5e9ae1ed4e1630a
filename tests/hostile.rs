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

/// The scrape without the gateway's own families and push times, which move between scrapes.
fn pushed_lines(text: &str) -> String {
    strip_times(text).lines().filter(|l| !l.contains("ringgate_")).map(|l| format!("{l}\n")).collect()
}

/// About `mb` MiB of series whose label values are pseudo-random hex: deflate shrinks them
/// by less than half, so even a gzip scrape of a few of them outgrows the socket buffers.
fn noisy_body(mb: usize, seed: u64) -> String {
    let mut s = String::from("# TYPE noisy gauge\n");
    let mut x = seed | 1;
    let mut i = 0;
    while s.len() < mb << 20 {
        let mut v = String::new();
        for _ in 0..24 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push_str(&format!("{x:016x}"));
        }
        s.push_str(&format!("noisy{{n=\"{i}\",v=\"{v}\"}} {i}\n"));
        i += 1;
    }
    s
}

/// The body of an answer read whole from `raw` (head included), de-chunked and gunzipped
/// when it says so; checks Content-Length when there is one.
fn body_of(raw: Vec<u8>) -> String {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8(raw[..split].to_vec()).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut body = raw[split..].to_vec();
    if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        assert_eq!(body.len(), len.trim().parse::<usize>().unwrap(), "the whole body, as announced");
    }
    if head.contains("transfer-encoding: chunked") {
        let (mut b, mut out) = (&body[..], Vec::new());
        loop {
            let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap(), 16).unwrap();
            b = &b[nl + 2..];
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[..n]);
            b = &b[n + 2..];
        }
        body = out;
    }
    if head.contains("content-encoding: gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
        body = out;
    }
    String::from_utf8(body).unwrap()
}

#[test]
fn a_scrape_reader_that_stalls_or_leaves_harms_nobody() {
    for compression in [true, false] {
        let g = gateway_with(ringgate::config::Config { compression, ..config() });
        // About 12 MB, and a gzip scrape of it nearly as large: more than the socket buffers
        // hold, in runs large enough to be written by the blocking threads.
        for i in 0..2 {
            assert_eq!(g.put(&format!("/metrics/job/noisy{i}"), &noisy_body(6, i + 1)).status, 200);
        }
        let want = pushed_lines(&g.scrape());
        // The gzip path is the same whether the store is compressed or not.
        let ways: &[bool] = if compression { &[false, true] } else { &[false] };
        for &gzip in ways {
            let what = format!("compression {compression}, gzip {gzip}");
            // A reader that stops for longer than a blocking thread waits for room: the shard
            // takes over the rest of the run, and meanwhile serves pushes and other scrapes.
            let mut s = g.connect();
            let accept = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
            write!(s, "GET /metrics HTTP/1.1\r\nHost: t\r\n{accept}Connection: close\r\n\r\n").unwrap();
            let mut got = vec![0u8; 64 * 1024];
            s.read_exact(&mut got).unwrap();
            assert_eq!(g.put("/metrics/job/during", "# TYPE during gauge\nduring 1\n").status, 200);
            if !gzip {
                assert!(g.scrape().contains("during{instance=\"\",job=\"during\"} 1\n"), "{what}");
            }
            std::thread::sleep(Duration::from_millis(1500));
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.read_to_end(&mut got).unwrap();
            let text = body_of(got);
            let pushed: String =
                pushed_lines(&text).lines().filter(|l| !l.contains("during")).map(|l| format!("{l}\n")).collect();
            assert_eq!(pushed, want, "the stalled scrape's bytes ({what})");
        }

        // A reader that leaves in the middle: the others are served as before.
        let mut s = g.connect();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut some = vec![0u8; 64 * 1024];
        s.read_exact(&mut some).unwrap();
        drop(s);
        let after = g.scrape();
        assert!(after.contains("during{instance=\"\",job=\"during\"} 1\n"));
        let others: String =
            pushed_lines(&after).lines().filter(|l| !l.contains("during")).map(|l| format!("{l}\n")).collect();
        assert_eq!(others, want, "the other groups, untouched");
        still_healthy(&g);
    }
}
