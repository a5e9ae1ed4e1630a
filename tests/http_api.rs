//! The push API and scrape, through real HTTP on 127.0.0.1, asserting on bytes.

mod common;

use std::io::Write;

use common::*;

#[test]
fn push_then_scrape_renders_grouping_labels() {
    let g = start();
    let a = g.put("/metrics/job/j/instance/i", "# HELP a Help.\n# TYPE a counter\na{x=\"1\"} 3\n");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body, b"");
    assert_eq!(g.scrape(), "# HELP a Help.\n# TYPE a counter\na{instance=\"i\",job=\"j\",x=\"1\"} 3\n");
    let full = g.get("/metrics").text();
    assert!(full.contains("# TYPE push_time_seconds gauge\npush_time_seconds{instance=\"i\",job=\"j\"} "), "{full}");
    assert!(full.contains("push_failure_time_seconds{instance=\"i\",job=\"j\"} 0\n"), "{full}");
    assert_eq!(g.get("/metrics").header("content-type").unwrap(), "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn url_labels_win_and_instance_defaults_to_empty() {
    let g = start();
    assert_eq!(g.put("/metrics/job/j", "a{job=\"body\",zone=\"z\"} 1\nb{instance=\"mine\"} 2\n").status, 200);
    assert_eq!(
        g.scrape(),
        "# TYPE a untyped\na{instance=\"\",job=\"j\",zone=\"z\"} 1\n# TYPE b untyped\nb{instance=\"mine\",job=\"j\"} 2\n"
    );
    assert_eq!(g.put("/metrics/job/k/zone/url", "a{zone=\"body\"} 1\n").status, 200);
    assert!(g.scrape().contains("a{instance=\"\",job=\"k\",zone=\"url\"} 1\n"));
}

#[test]
fn base64_and_empty_values_and_trailing_slash() {
    let g = start();
    // job "a/b", path "/var/tmp", empty label.
    assert_eq!(g.put("/metrics/job@base64/YS9i/path@base64/L3Zhci90bXA=/e@base64/=/", "m 1\n").status, 200);
    assert_eq!(g.scrape(), "# TYPE m untyped\nm{e=\"\",instance=\"\",job=\"a/b\",path=\"/var/tmp\"} 1\n");
    // Same group, other spelling: replaces rather than adds.
    assert_eq!(g.put("/metrics/job/a%2Fb/path@base64/L3Zhci90bXA/e@base64/=", "m 2\n").status, 200);
    assert_eq!(g.scrape(), "# TYPE m untyped\nm{e=\"\",instance=\"\",job=\"a/b\",path=\"/var/tmp\"} 2\n");
    // A value that needs escaping, in pushed samples and in the push-time gauges alike.
    assert_eq!(g.put("/metrics/job/q/x@base64/YSJiXGMKZA==", "m 3\n").status, 200);
    let full = g.get("/metrics").text();
    for line in [
        "m{instance=\"\",job=\"q\",x=\"a\\\"b\\\\c\\nd\"} 3\n",
        "push_failure_time_seconds{instance=\"\",job=\"q\",x=\"a\\\"b\\\\c\\nd\"} 0\n",
    ] {
        assert!(full.contains(line), "{line} in {full}");
    }
    assert!(full.contains("push_time_seconds{instance=\"\",job=\"q\",x=\"a\\\"b\\\\c\\nd\"} 1"), "{full}");
}

#[test]
fn bad_grouping_keys_are_400() {
    let g = start();
    for (path, want) in [
        ("/metrics/job/", "job name is required"),
        ("/metrics/job/j/a", "has no value"),
        ("/metrics/jobs/j", "must start with /metrics/job"),
        ("/metrics/job/j/__a/1", "reserved"),
        ("/metrics/job/j/a-b/1", "invalid label name"),
        ("/metrics/job/a%zz", "percent"),
        ("/metrics/job@base64/!!", "base64"),
    ] {
        let a = g.put(path, "m 1\n");
        assert_eq!(a.status, 400, "{path}");
        assert!(a.text().contains(want), "{path}: {}", a.text());
    }
}

#[test]
fn put_replaces_post_merges_delete_removes() {
    let g = start();
    g.put("/metrics/job/j", "a 1\nb 1\n");
    g.post("/metrics/job/j", "b 2\nc 2\n");
    assert_eq!(
        g.scrape(),
        "# TYPE a untyped\na{instance=\"\",job=\"j\"} 1\n# TYPE b untyped\nb{instance=\"\",job=\"j\"} 2\n\
         # TYPE c untyped\nc{instance=\"\",job=\"j\"} 2\n"
    );
    // POST replaces the whole family, not single series.
    g.put("/metrics/job/j", "a{x=\"1\"} 1\na{x=\"2\"} 1\n");
    g.post("/metrics/job/j", "a{x=\"3\"} 3\n");
    assert_eq!(g.scrape(), "# TYPE a untyped\na{instance=\"\",job=\"j\",x=\"3\"} 3\n");
    g.put("/metrics/job/j", "d 4\n");
    assert_eq!(g.scrape(), "# TYPE d untyped\nd{instance=\"\",job=\"j\"} 4\n");
    // An empty PUT empties the group but keeps it (its push time stays).
    assert_eq!(g.put("/metrics/job/j", "").status, 200);
    assert_eq!(g.scrape(), "");
    assert!(g.get("/metrics").text().contains("push_time_seconds{instance=\"\",job=\"j\"}"));
    assert_eq!(g.delete("/metrics/job/j").status, 202);
    assert_eq!(strip_times(&g.get("/metrics").text()), "");
    // Deleting a missing group is fine.
    assert_eq!(g.delete("/metrics/job/nothing/x/y").status, 202);
}

#[test]
fn type_conflicts_across_groups_are_refused_and_harmless() {
    let g = start();
    // Enough groups that both shards hold some.
    for i in 0..16 {
        assert_eq!(g.put(&format!("/metrics/job/j{i}"), "# TYPE t gauge\nt 1\n").status, 200);
    }
    let a = g.put("/metrics/job/other", "# TYPE t counter\nt 1\n");
    assert_eq!(a.status, 400);
    assert!(a.text().contains("\"t\" is pushed as counter but 16 other group(s) hold it as gauge"), "{}", a.text());
    // Nothing changed, the gateway keeps accepting and serving.
    assert_eq!(g.put("/metrics/job/other", "# TYPE u counter\nu 1\n").status, 200);
    let s = g.scrape();
    assert_eq!(s.matches("# TYPE t gauge\n").count(), 1);
    assert_eq!(s.matches("\nt{").count(), 16);
    // The last holder may change the type; a group alone can always change its own.
    for i in 1..16 {
        g.delete(&format!("/metrics/job/j{i}"));
    }
    assert_eq!(g.put("/metrics/job/j0", "# TYPE t counter\nt 2\n").status, 200);
    assert!(g.scrape().contains("# TYPE t counter\nt{instance=\"\",job=\"j0\"} 2\n"));
    promtool_check(&g.get("/metrics").text());
}

#[test]
fn rejected_push_only_sets_failure_time() {
    let g = start();
    g.put("/metrics/job/j", "a 1\n");
    let before = g.scrape();
    let a = g.put("/metrics/job/j", "a 2\nb{ 3\n");
    assert_eq!(a.status, 400);
    assert!(a.text().contains("line 2:"), "{}", a.text());
    assert_eq!(g.scrape(), before);
    let full = g.get("/metrics").text();
    let fail = full.lines().find(|l| l.starts_with("push_failure_time_seconds{")).unwrap();
    assert!(!fail.ends_with(" 0"), "{fail}");
    // Reserved families and timestamps.
    let a = g.put("/metrics/job/j", "push_time_seconds 1\n");
    assert_eq!(a.status, 400);
    assert!(a.text().contains("written by the gateway"));
    let a = g.put("/metrics/job/j", "a 1 1700000000000\n");
    assert!(a.text().contains("line 1: samples with timestamps are not allowed"), "{}", a.text());
}

#[test]
fn wrong_method_and_unknown_path() {
    let g = start();
    let a = g.req("POST", "/metrics", &[], b"");
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow").unwrap(), "GET, HEAD");
    let a = g.get("/metrics/job/j");
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow").unwrap(), "PUT, POST, DELETE");
    assert_eq!(g.get("/nope").status, 404);
    assert_eq!(g.get("/-/healthy").status, 200);
    assert_eq!(g.get("/-/ready").status, 200);
}

#[test]
fn real_payloads_are_accepted_whole() {
    let g = start();
    for (job, file) in [("node", "node-exporter-2cpu.prom"), ("prom", "prometheus-server.prom")] {
        let body = shared_data(file);
        let a = g.put(&format!("/metrics/job/{job}/instance/host-1"), &body);
        assert_eq!(a.status, 200, "{file}: {}", a.text());
    }
    let s = g.get("/metrics").text();
    for (job, file) in [("node", "node-exporter-2cpu.prom"), ("prom", "prometheus-server.prom")] {
        let body = shared_data(file);
        let samples = body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
        let tag = format!("job=\"{job}\"");
        let got = s
            .lines()
            .filter(|l| {
                !l.starts_with('#') && l.contains(&tag) && l.contains("instance=\"host-1\"") && !l.starts_with("push_")
            })
            .count();
        assert_eq!(got, samples, "{file}");
    }
    assert!(s.contains("node_uname_info{"), "label values with spaces survive");
    promtool_check(&s);
}

#[test]
fn one_family_from_many_groups_on_both_shards_is_merged() {
    let g = start();
    for i in 0..40 {
        let body = format!(
            "# HELP shared_metric Help {}.\n# TYPE shared_metric gauge\nshared_metric{{i=\"{i}\"}} {i}\n",
            i % 3
        );
        assert_eq!(g.put(&format!("/metrics/job/n/instance/node-{i}"), &body).status, 200);
    }
    let s = g.scrape();
    assert_eq!(s.matches("# TYPE shared_metric gauge").count(), 1);
    assert_eq!(s.matches("# HELP shared_metric").count(), 1);
    // Deterministic HELP: the text that sorts first.
    assert!(s.starts_with("# HELP shared_metric Help 0.\n"), "{s}");
    assert_eq!(s.lines().filter(|l| l.starts_with("shared_metric{")).count(), 40);
    // Both shards hold some of them.
    let owners: std::collections::HashSet<usize> = (0..40)
        .map(|i| ringgate::grouping::GroupKey::from_path(&format!("job/n/instance/node-{i}")).unwrap().shard(2))
        .collect();
    assert_eq!(owners.len(), 2);
    // Families sorted by name.
    g.put("/metrics/job/z", "aaa 1\nzzz 1\n");
    let names: Vec<String> = g
        .scrape()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    promtool_check(&g.get("/metrics").text());
}

#[test]
fn head_keepalive_pipelining_chunked_and_continue() {
    let g = start();
    let mut s = g.connect();
    // Two pipelined requests in one write, then a chunked one split in tiny segments.
    let two = "PUT /metrics/job/p HTTP/1.1\r\nContent-Length: 4\r\n\r\na 1\nGET /-/healthy HTTP/1.1\r\n\r\n";
    s.write_all(two.as_bytes()).unwrap();
    assert_eq!(read_answer(&mut s, false).unwrap().status, 200);
    assert_eq!(read_answer(&mut s, false).unwrap().text(), "OK\n");
    let chunked = "POST /metrics/job/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nb 2\n\r\n3;ext=1\r\nc 3\r\n1\r\n\n\r\n0\r\n\r\n";
    for b in chunked.as_bytes() {
        s.write_all(&[*b]).unwrap();
    }
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    // Expect: 100-continue gets its interim answer before the body is sent.
    s.write_all(b"POST /metrics/job/p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut s, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"d 4\n").unwrap();
    assert_eq!(read_answer(&mut s, false).unwrap().status, 200);
    // HEAD: headers of the GET, no body; the connection stays usable.
    s.write_all(b"HEAD /metrics HTTP/1.1\r\n\r\n").unwrap();
    let head = read_answer(&mut s, true).unwrap();
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let get = read_answer(&mut s, false).unwrap();
    assert_eq!(get.body.len(), len);
    assert_eq!(get.header("connection").as_deref(), Some("close"));
    assert_eq!(strip_times(&get.text()), "# TYPE a untyped\na{instance=\"\",job=\"p\"} 1\n# TYPE b untyped\nb{instance=\"\",job=\"p\"} 2\n# TYPE c untyped\nc{instance=\"\",job=\"p\"} 3\n# TYPE d untyped\nd{instance=\"\",job=\"p\"} 4\n");
    // After Connection: close the server closes.
    let mut rest = Vec::new();
    assert_eq!(std::io::Read::read_to_end(&mut s, &mut rest).unwrap(), 0);
}

#[test]
fn pipelined_runs_are_answered_in_order_and_a_half_sent_request_does_not_hold_answers_back() {
    let g = start();
    let mut s = g.connect();
    // 40 pushes in one write, to groups owned by both shards, a bad one among them, then a
    // scrape: every answer comes back, in order, and the scrape sees every good push.
    let mut run = String::new();
    for i in 0..40 {
        let body = if i == 17 { "broken{ 1\n".to_string() } else { format!("p{{n=\"{i}\"}} {i}\n") };
        run.push_str(&format!(
            "PUT /metrics/job/pipe/instance/i{i} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    run.push_str("GET /metrics HTTP/1.1\r\n\r\n");
    s.write_all(run.as_bytes()).unwrap();
    for i in 0..40 {
        let a = read_answer(&mut s, false).unwrap_or_else(|| panic!("no answer to push {i}"));
        assert_eq!(a.status, if i == 17 { 400 } else { 200 }, "push {i}: {}", a.text());
    }
    let scrape = read_answer(&mut s, false).expect("the scrape after the run");
    let text = strip_times(&scrape.text());
    for i in (0..40).filter(|&i| i != 17) {
        assert!(text.contains(&format!("p{{instance=\"i{i}\",job=\"pipe\",n=\"{i}\"}} {i}\n")), "{i}:\n{text}");
    }
    // Two pushes and the first half of a third: the two answers come before the rest is sent
    // (answers held for the requests behind them must not wait on a client that waits too).
    let two = "PUT /metrics/job/half HTTP/1.1\r\nContent-Length: 4\r\n\r\na 1\n".repeat(2);
    s.write_all(format!("{two}PUT /metrics/job/half HTTP/1.1\r\nContent-Len").as_bytes()).unwrap();
    assert_eq!(read_answer(&mut s, false).expect("first of two").status, 200);
    assert_eq!(read_answer(&mut s, false).expect("second of two").status, 200);
    s.write_all(b"gth: 4\r\n\r\na 2\n").unwrap();
    assert_eq!(read_answer(&mut s, false).expect("the third, once whole").status, 200);
    assert!(g.scrape().contains("a{instance=\"\",job=\"half\"} 2\n"));
}

#[test]
fn http10_closes_and_malformed_requests_get_400() {
    let g = start();
    let mut s = g.connect();
    s.write_all(b"GET /-/healthy HTTP/1.0\r\n\r\n").unwrap();
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 200);
    let mut rest = Vec::new();
    assert_eq!(std::io::Read::read_to_end(&mut s, &mut rest).unwrap(), 0);
    let mut s = g.connect();
    s.write_all(b"PUT /metrics/job/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").unwrap();
    let a = read_answer(&mut s, false).unwrap();
    assert_eq!(a.status, 400);
    assert!(a.text().contains("invalid chunk size"));
    // The server still serves.
    assert_eq!(g.get("/-/healthy").status, 200);
}

#[test]
fn concurrent_pushes_and_scrapes_see_whole_groups() {
    let g = start();
    let addr = g.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for t in 0..3 {
        let stop = stop.clone();
        pushers.push(std::thread::spawn(move || {
            let gw = Gateway::attach(addr);
            let mut v = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                v += 1;
                // Every series of a group carries the same version; a half-applied group
                // would show two versions.
                let mut body = String::new();
                for f in 0..5 {
                    body.push_str(&format!("# TYPE fam{f} gauge\n"));
                    for s in 0..20 {
                        body.push_str(&format!("fam{f}{{s=\"{s}\"}} {v}\n"));
                    }
                }
                let a = gw.put(&format!("/metrics/job/c/instance/t{t}-{}", v % 4), &body);
                assert_eq!(a.status, 200);
                if v % 7 == 0 {
                    gw.delete(&format!("/metrics/job/c/instance/t{t}-{}", (v + 1) % 4));
                }
            }
        }));
    }
    for _ in 0..60 {
        let s = g.scrape();
        let mut versions: std::collections::HashMap<String, std::collections::HashSet<String>> = Default::default();
        for l in s.lines().filter(|l| !l.starts_with('#')) {
            let inst = l.split("instance=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            versions.entry(inst).or_default().insert(l.rsplit(' ').next().unwrap().to_string());
        }
        for (inst, v) in versions {
            assert_eq!(v.len(), 1, "group {inst} seen half-updated: {v:?}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in pushers {
        p.join().unwrap();
    }
}

#[test]
fn names_that_collide_with_histogram_series_are_refused() {
    let g = start();
    let h = "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 1\nlat_count 1\n";
    assert_eq!(g.put("/metrics/job/a", h).status, 200);
    let a = g.put("/metrics/job/b", "# TYPE lat_count gauge\nlat_count 5\n");
    assert_eq!(a.status, 400);
    assert!(a.text().contains("collides with the histogram \"lat\""), "{}", a.text());
    // In one body too: an untyped `s_sum` before the summary `s` is declared.
    let a = g.put("/metrics/job/c", "s_sum 1\n# TYPE s summary\ns_count 1\n");
    assert_eq!(a.status, 400, "{}", a.text());
    promtool_check(&g.get("/metrics").text());
}

#[test]
fn a_large_scrape_is_followed_by_a_heap_trim() {
    let g = common::start();
    let counter = |name: &str| -> f64 {
        let m = g.get("/metrics").text();
        let line = m.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // The counters are process-wide: other tests' gateways run in this process too.
    let before = counter("ringgate_heap_trims_total");
    // 18 groups of ~1 MB: a scrape of more than 16 MiB.
    let body: String =
        (0..20_000).map(|i| format!("big{{series=\"{i:06}\",pad=\"0123456789abcdef01234\"}} 1\n")).collect();
    for i in 0..18 {
        assert_eq!(g.put(&format!("/metrics/job/big/instance/{i}"), &body).status, 200);
    }
    let a = g.get("/metrics");
    assert!(a.body.len() > 16 << 20, "{} bytes", a.body.len());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counter("ringgate_heap_trims_total") <= before {
        assert!(std::time::Instant::now() < until, "no heap trim after a {} byte scrape", a.body.len());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(counter("ringgate_heap_trim_seconds_total") > 0.0);
    counter("ringgate_heap_trim_returned_bytes_total");
}

/// `--push.max-in-flight`: a push whose body would pass its shard's share waits, unread, while
/// another body holds the share, and lands once that one is applied.
#[test]
fn a_push_beyond_the_in_flight_budget_waits_for_the_body_holding_it() {
    let mut c = common::config();
    c.shards = 1;
    c.max_in_flight = 1000;
    let g = common::start_with(c);
    let gauge = |name: &str| -> String {
        let m = g.get("/metrics").text();
        let line = m
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{shard=\"0\"}} ")))
            .unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().to_string()
    };
    // A: larger than the share, so it takes all of it; half of its body is sent.
    let body_a: String = (0..100).map(|i| format!("held_metric{{i=\"{i:03}\"}} 1\n")).collect();
    let mut a = g.connect();
    write!(a, "PUT /metrics/job/a HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body_a.len()).unwrap();
    a.write_all(&body_a.as_bytes()[..1000]).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gauge("ringgate_push_in_flight_bytes") != "1000" {
        assert!(std::time::Instant::now() < until, "the first body never took the share");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // B: a whole small push. It must wait for A.
    let body_b = "waiting_metric 2\n";
    let mut b = g.connect();
    write!(b, "PUT /metrics/job/b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body_b}", body_b.len()).unwrap();
    b.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(&mut b, &mut byte);
    assert!(early.is_err(), "the second push was answered while the first held the budget: {early:?}");
    b.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    // A's body completes: A is applied, then B.
    a.write_all(&body_a.as_bytes()[1000..]).unwrap();
    let first = common::read_answer(&mut a, false).expect("answer to A");
    assert_eq!(first.status, 200, "{}", first.text());
    let rest = common::read_answer(&mut b, false).expect("answer to B");
    assert_eq!(rest.status, 200, "{}", rest.text());
    let m = g.scrape();
    assert!(m.contains("held_metric{i=\"099\",instance=\"\",job=\"a\"} 1\n"), "{m}");
    assert!(m.contains("waiting_metric{instance=\"\",job=\"b\"} 2\n"), "{m}");
    assert_eq!(gauge("ringgate_push_budget_waits_total"), "1");
    assert_eq!(gauge("ringgate_push_in_flight_bytes"), "0");
}
