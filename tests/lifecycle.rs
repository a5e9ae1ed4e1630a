//! Group lifecycles (ttl, clear-after-scrape), persistence and the operational APIs, through
//! real HTTP on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

fn has(g: &Gateway, needle: &str) -> bool {
    g.get("/metrics").text().contains(needle)
}

fn scrape_as(g: &Gateway, scraper: &str) -> String {
    strip_times(&g.get(&format!("/metrics?scraper={scraper}")).text())
}

#[test]
fn ttl_groups_expire_on_time() {
    let g = start();
    let pushed = Instant::now();
    let a = g.req("PUT", "/metrics/job/t", &[("X-Ringgate-TTL", "1500ms")], b"short_lived 1\n");
    assert_eq!(a.status, 200, "{}", a.text());
    g.put("/metrics/job/p", "forever 1\n");
    assert!(has(&g, "short_lived{"));
    while has(&g, "short_lived{") {
        assert!(pushed.elapsed() < Duration::from_millis(1500 + 1000), "not expired within a second of its ttl");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pushed.elapsed() >= Duration::from_millis(1450), "expired early: {:?}", pushed.elapsed());
    assert!(has(&g, "forever{"));
    assert!(!g.get("/api/v1/metrics").text().contains("\"t\""));
    assert!(has(&g, "ringgate_group_removals_total{reason=\"ttl_expired\",shard="));
    // A refreshed group lives on.
    let c = config();
    let g = start_with(ringgate::config::Config {
        lifecycle: ringgate::config::Lifecycle::Ttl,
        group_ttl: Duration::from_millis(800),
        ..c
    });
    for _ in 0..6 {
        g.put("/metrics/job/r", "refreshed 1\n");
        std::thread::sleep(Duration::from_millis(300));
        assert!(has(&g, "refreshed{"));
    }
    let a = g.req("PUT", "/metrics/job/x", &[("X-Ringgate-TTL", "soon")], b"x 1\n");
    assert_eq!(a.status, 400);
    assert!(a.text().contains("x-ringgate-ttl"), "{}", a.text());
}

#[test]
fn clear_groups_are_served_once() {
    let g = start();
    g.req("PUT", "/metrics/job/c", &[("X-Ringgate-Lifecycle", "clear")], b"once 1\n");
    g.put("/metrics/job/p", "kept 1\n");
    let first = g.scrape();
    assert!(first.contains("once{instance=\"\",job=\"c\"} 1\n"), "{first}");
    let second = g.scrape();
    assert!(!second.contains("once{"), "{second}");
    assert!(second.contains("kept{"));
    assert!(has(&g, "ringgate_group_removals_total{reason=\"clear_scraped\",shard="));
    let a = g.req("PUT", "/metrics/job/x", &[("X-Ringgate-Lifecycle", "sometimes")], b"x 1\n");
    assert_eq!(a.status, 400);
}

/// A persistent filler group large enough that a scrape cannot fit in the socket buffers.

#[test]
fn a_scrape_cut_off_mid_body_keeps_clear_data() {
    let g = start();
    for i in 0..3 {
        assert_eq!(g.put(&format!("/metrics/job/filler{i}"), &big_body(8)).status, 200);
    }
    g.req("PUT", "/metrics/job/c", &[("X-Ringgate-Lifecycle", "clear")], b"precious 1\n");
    // Start a scrape, read a little of it, and hang up.
    let mut s = g.connect();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    s.read_exact(&mut buf).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    let full = g.get("/metrics").text();
    assert!(full.contains("precious{instance=\"\",job=\"c\"} 1\n"), "clear data lost to a failed scrape");
    assert!(full.contains("ringgate_scrapes_total{outcome=\"failed\""));
    let failed: u64 = full
        .lines()
        .filter(|l| l.starts_with("ringgate_scrapes_total{outcome=\"failed\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(failed, 1);
    // That scrape was whole: now it is gone.
    assert!(!has(&g, "precious{"));
}

#[test]
fn a_push_during_a_clear_scrape_is_not_lost() {
    let g = start();
    for i in 0..3 {
        g.put(&format!("/metrics/job/filler{i}"), &big_body(8));
    }
    let clear = [("X-Ringgate-Lifecycle", "clear")];
    g.req("PUT", "/metrics/job/c", &clear, b"value 1\n");
    let mut s = g.connect();
    s.write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut first = [0u8; 1024];
    s.read_exact(&mut first).unwrap();
    // The snapshot is taken; this push lands while the scrape is being written.
    assert_eq!(g.req("PUT", "/metrics/job/c", &clear, b"value 2\n").status, 200);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let body = String::from_utf8_lossy(&rest);
    assert!(body.contains("value{instance=\"\",job=\"c\"} 1\n"));
    let next = g.scrape();
    assert!(next.contains("value{instance=\"\",job=\"c\"} 2\n"), "the push made during the scrape was lost");
    assert!(!g.scrape().contains("value{"));
}

#[test]
fn two_named_scrapers_each_get_every_clear_group_once() {
    let mut c = config();
    c.clear_scrapers = vec!["a".into(), "b".into()];
    let g = start_with(c);
    let clear = [("X-Ringgate-Lifecycle", "clear")];
    for i in 0..10 {
        g.req("PUT", &format!("/metrics/job/c/instance/{i}"), &clear, b"sample 1\n");
    }
    let count = |s: &str| s.matches("sample{").count();
    assert_eq!(count(&scrape_as(&g, "a")), 10);
    assert_eq!(count(&scrape_as(&g, "a")), 0, "a got the same data twice");
    g.req("PUT", "/metrics/job/c/instance/new", &clear, b"sample 1\n");
    assert_eq!(count(&scrape_as(&g, "a")), 1);
    // The header spelling works too.
    let b = strip_times(&g.req("GET", "/metrics", &[("X-Ringgate-Scraper", "b")], b"").text());
    assert_eq!(count(&b), 11);
    assert_eq!(count(&scrape_as(&g, "b")), 0);
    assert_eq!(count(&scrape_as(&g, "a")), 0);
    // Everyone had everything: the groups are gone from the store.
    assert!(!g.get("/api/v1/metrics").text().contains("\"c\""));
}

#[test]
fn unnamed_scrapers_seen_recently_are_waited_for() {
    let g = start();
    let clear = [("X-Ringgate-Lifecycle", "clear")];
    // Both replicas have scraped once (nothing to take yet).
    scrape_as(&g, "r1");
    scrape_as(&g, "r2");
    g.req("PUT", "/metrics/job/c", &clear, b"s 1\n");
    assert!(scrape_as(&g, "r1").contains("s{"));
    assert!(!scrape_as(&g, "r1").contains("s{"));
    assert!(scrape_as(&g, "r2").contains("s{"));
    assert!(!scrape_as(&g, "r2").contains("s{"));
}

#[test]
fn clear_data_nobody_takes_is_dropped_after_max_age() {
    let mut c = config();
    c.clear_max_age = Duration::from_millis(600);
    let g = start_with(c);
    g.req("PUT", "/metrics/job/c", &[("X-Ringgate-Lifecycle", "clear")], b"stale 1\n");
    assert_eq!(g.get("/api/v1/metrics").status, 200);
    assert!(g.get("/api/v1/metrics").text().contains("\"stale\""));
    std::thread::sleep(Duration::from_millis(1800));
    let m = g.get("/metrics").text();
    assert!(!m.contains("stale{"));
    assert!(m.contains("ringgate_group_removals_total{reason=\"clear_unscraped\",shard="));
    let n: u64 = m
        .lines()
        .filter(|l| l.starts_with("ringgate_group_removals_total{reason=\"clear_unscraped\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(n, 1);
}

#[test]
fn wipe_ten_thousand_groups() {
    let mut c = config();
    c.admin_api = true;
    let g = start_with(c);
    let mut s = g.connect();
    for i in 0..10_000 {
        let body = format!("w{{i=\"{i}\"}} 1\n");
        write!(s, "PUT /metrics/job/w/instance/{i} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        if i % 100 == 99 {
            for _ in 0..100 {
                assert_eq!(read_answer(&mut s, false).unwrap().status, 200);
            }
        }
    }
    let status: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").text()).unwrap();
    assert_eq!(status["data"]["groups"], 10_000);
    let a = g.req("PUT", "/api/v1/admin/wipe", &[], b"");
    assert_eq!(a.status, 202);
    assert_eq!(g.scrape(), "");
    let m = g.get("/metrics").text();
    let wiped: u64 = m
        .lines()
        .filter(|l| l.starts_with("ringgate_group_removals_total{reason=\"wiped\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(wiped, 10_000);
    // Pushes work afterwards, with any type (the registry was cleared too).
    assert_eq!(g.put("/metrics/job/w", "# TYPE w counter\nw 1\n").status, 200);
}

#[test]
fn admin_and_lifecycle_apis_are_off_by_default() {
    let g = start();
    let a = g.req("PUT", "/api/v1/admin/wipe", &[], b"");
    assert_eq!(a.status, 403);
    assert!(a.text().contains("--web.enable-admin-api"));
    let a = g.req("POST", "/-/quit", &[], b"");
    assert_eq!(a.status, 403);
    assert!(a.text().contains("--web.enable-lifecycle"));
    assert_eq!(g.get("/-/healthy").status, 200);
}

#[test]
fn json_apis_have_the_pushgateway_shapes() {
    let g = start();
    g.put(
        "/metrics/job/j/instance/i",
        "# HELP c A counter.\n# TYPE c counter\nc{x=\"1\"} 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
    );
    g.req("PUT", "/metrics/job/t", &[("X-Ringgate-TTL", "5m")], b"g 1\n");
    let v: serde_json::Value = serde_json::from_str(&g.get("/api/v1/metrics").text()).unwrap();
    assert_eq!(v["status"], "success");
    let groups = v["data"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let j = groups.iter().find(|g| g["labels"]["job"] == "j").unwrap();
    assert_eq!(j["labels"]["instance"], "i");
    assert_eq!(j["last_push_successful"], true);
    assert_eq!(j["lifecycle"], "persistent");
    assert!(j["shard"].as_u64().unwrap() < 2);
    assert_eq!(j["c"]["type"], "COUNTER");
    assert_eq!(j["c"]["help"], "A counter.");
    assert_eq!(j["c"]["metrics"][0]["labels"]["x"], "1");
    assert_eq!(j["c"]["metrics"][0]["value"], "2");
    assert_eq!(j["h"]["metrics"][0]["buckets"]["+Inf"], "2");
    assert_eq!(j["h"]["metrics"][0]["count"], "2");
    assert_eq!(j["h"]["metrics"][0]["sum"], "3");
    assert_eq!(j["push_time_seconds"]["type"], "GAUGE");
    assert!(j["push_time_seconds"]["time_stamp"].as_str().unwrap().ends_with('Z'));
    let t = groups.iter().find(|g| g["labels"]["job"] == "t").unwrap();
    assert_eq!(t["lifecycle"], "ttl");
    assert_eq!(t["ttl_seconds"], 300.0);
    let s: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").text()).unwrap();
    assert_eq!(s["status"], "success");
    assert_eq!(s["data"]["build_information"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["data"]["flags"]["lifecycle"], "persistent");
    assert!(s["data"]["start_time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn buffer_pools_show_what_they_keep_within_their_limits() {
    let g = start();
    // Bodies over 64 KiB come from the body pool and go back to it; a group of 1 MiB replaced
    // by the same push again lets its buffers go to the group pools.
    let body = big_body(1);
    for i in 0..6 {
        assert_eq!(g.put(&format!("/metrics/job/pool/instance/n{}", i % 3), &body).status, 200);
    }
    let m = g.get("/metrics").text();
    let values = |prefix: &str| -> Vec<u64> {
        m.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .collect()
    };
    let bodies = values("ringgate_buffer_pool_bytes{pool=\"request_body\",shard=");
    let groups = values("ringgate_buffer_pool_bytes{pool=\"group\",shard=");
    let shared = values("ringgate_buffer_pool_shared_bytes ");
    assert_eq!((bodies.len(), groups.len(), shared.len()), (2, 2, 1), "one series per shard and pool:\n{m}");
    assert!(bodies.iter().sum::<u64>() >= 1 << 20, "the read bodies are kept: {bodies:?}");
    assert!(bodies.iter().all(|&b| b <= 32 << 20), "within --push.max-in-flight: {bodies:?}");
    assert!(groups.iter().sum::<u64>() + shared[0] > 0, "replaced groups' buffers are kept: {groups:?} {shared:?}");
    assert!(groups.iter().all(|&b| b <= 8 << 20) && shared[0] <= 16 << 20, "{groups:?} {shared:?}");
    promtool_check(&m);
}

#[test]
fn self_metrics_are_served_and_valid() {
    let g = start();
    g.put("/metrics/job/j", "a 1\n");
    g.put("/metrics/job/j", "a{ 1\n");
    g.get("/metrics");
    let m = g.get("/metrics").text();
    for name in [
        "ringgate_build_info{shard=\"0\",version=",
        "ringgate_pushes_total{outcome=\"ok\",shard=",
        "ringgate_pushes_total{outcome=\"rejected\",shard=",
        "ringgate_push_duration_seconds_bucket{le=\"+Inf\",shard=",
        "ringgate_scrape_duration_seconds_count{shard=",
        "ringgate_groups{shard=\"1\"}",
        "ringgate_stored_bytes{shard=\"0\"}",
        "ringgate_received_bytes_total{shard=",
        "ringgate_sent_bytes_total{shard=",
        "ringgate_persistence_writes_total{outcome=\"failed\",shard=",
    ] {
        assert!(m.contains(name), "{name} missing");
    }
    let sum = |prefix: &str| -> u64 {
        m.lines().filter(|l| l.starts_with(prefix)).map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum()
    };
    assert_eq!(sum("ringgate_pushes_total{outcome=\"ok\""), 1);
    assert_eq!(sum("ringgate_pushes_total{outcome=\"rejected\""), 1);
    assert_eq!(sum("ringgate_groups{"), 1);
    assert_eq!(g.put("/metrics/job/j", "ringgate_groups 1\n").status, 400);
    promtool_check(&m);
}
