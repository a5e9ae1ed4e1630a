//! Large groups kept compressed (`--store.compression on`, the default) against the same
//! pushes kept as text: every way of reading the store gives the same bytes. The gzip-segment
//! gauge is one figure for the whole process, so the tests of this file take turns.

mod common;

use std::io::Read;
use std::sync::Mutex;

use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn with_compression(on: bool) -> Gateway {
    start_with(ringgate::config::Config { compression: on, ..config() })
}

fn gpu_payload() -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/gpu.txt", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The scrape without the gateway's own families (which differ between two gateways) and
/// without push times.
fn pushed_part(text: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in strip_times(text).lines() {
        if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
            skip = rest.starts_with("ringgate_");
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A POST that replaces some families of `n3`'s node group and adds one (its families then
/// live in two buffers), a PUT that replaces `n4`'s GPU group with a small body, and a DELETE
/// of group `filler`.
fn post_put_delete(g: &Gateway, filler: &str) {
    let post = "# TYPE node_load1 gauge\nnode_load1 42\n# TYPE extra counter\nextra_total 7\n";
    assert_eq!(g.post("/metrics/job/node/instance/n3", post).status, 200);
    assert_eq!(
        g.put("/metrics/job/gpu/instance/n4", "# TYPE DCGM_FI_DEV_GPU_TEMP gauge\nDCGM_FI_DEV_GPU_TEMP 1\n").status,
        200
    );
    assert_eq!(g.delete(&format!("/metrics/job/{filler}")).status, 202);
}

#[test]
fn compressed_groups_read_back_byte_for_byte() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let on = with_compression(true);
    let off = with_compression(false);
    let before = gauge(&off.get("/metrics").text(), "ringgate_gzip_segment_bytes");
    let node = shared_data("node-exporter-2cpu.prom");
    let gpu = gpu_payload();
    // Rendered with their grouping labels, the node payload and the filler pass 64 KiB and are
    // compressed; the GPU fixture (12 KB) and the batch job stay plain.
    for g in [&on, &off] {
        for n in 0..6 {
            assert_eq!(g.put(&format!("/metrics/job/node/instance/n{n}"), &node).status, 200);
            assert_eq!(g.put(&format!("/metrics/job/gpu/instance/n{n}"), &gpu).status, 200);
        }
        assert_eq!(g.put("/metrics/job/filler", &big_body(3)).status, 200);
        // Below the size at which groups are compressed.
        assert_eq!(g.put("/metrics/job/batch/instance/b1", "# TYPE done gauge\ndone 1\n").status, 200);
    }
    // Compressed at push time, before any gzip scrape (the other gateway has made none).
    let made = gauge(&on.get("/metrics").text(), "ringgate_gzip_segment_bytes") - before;
    let plain_len = on.get("/metrics").body.len() as f64;
    assert!(made > 0.0 && made < plain_len / 3.0, "segments of the pushed groups: {made} for {plain_len} bytes");

    let compare = |what: &str| {
        let (a, b) = (on.get("/metrics"), off.get("/metrics"));
        assert_eq!((a.status, b.status), (200, 200));
        let plain = pushed_part(&a.text());
        assert_eq!(plain, pushed_part(&b.text()), "plain scrapes differ {what}");
        assert_eq!(pushed_part(&gunzip_scrape(&on)), plain, "gzip scrape of the compressed store {what}");
        assert_eq!(pushed_part(&gunzip_scrape(&off)), plain, "gzip scrape of the text store {what}");
        let head = on.req("HEAD", "/metrics", &[], b"");
        let len: usize = head.header("content-length").unwrap().parse().unwrap();
        assert!(head.body.is_empty() && len > plain.len(), "HEAD: Content-Length {len}");
        let json = |g: &Gateway| {
            let mut v: serde_json::Value = serde_json::from_str(&g.get("/api/v1/metrics").text()).unwrap();
            for group in v["data"].as_array_mut().unwrap() {
                let group = group.as_object_mut().unwrap();
                group.remove("push_time_seconds");
                group.remove("push_failure_time_seconds");
                for fam in group.values_mut() {
                    if let Some(f) = fam.as_object_mut() {
                        f.remove("time_stamp");
                    }
                }
            }
            v
        };
        assert_eq!(json(&on), json(&off), "/api/v1/metrics differs {what}");
        promtool_check(&a.text());
    };
    compare("after the pushes");

    // A POST replaces some families of a compressed group (its families then live in a
    // compressed and a plain buffer), a PUT replaces one with a small body, a DELETE removes
    // one; then the first group is pushed again whole.
    for g in [&on, &off] {
        post_put_delete(g, "filler");
        assert_eq!(g.put("/metrics/job/node/instance/n0", &node.replace("node_load1 ", "node_load1_x ")).status, 200);
    }
    compare("after a POST, a small PUT, a DELETE and a new push");
    let text = on.scrape();
    assert!(text.contains("node_load1{instance=\"n3\",job=\"node\"} 42\n"));
    assert!(!text.contains("filler{"));
}

#[test]
fn a_compressed_store_is_saved_and_restored_whole() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("ringgate-compressed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("store.snap");
    let _ = std::fs::remove_file(&file);
    let cfg = || ringgate::config::Config { persistence_file: Some(file.clone()), ..config() };
    let node = shared_data("node-exporter-2cpu.prom");
    let gpu = gpu_payload();
    let saved = {
        let g = start_with(cfg());
        for n in 0..3 {
            assert_eq!(g.put(&format!("/metrics/job/node/instance/n{n}"), &node).status, 200);
            assert_eq!(g.put(&format!("/metrics/job/gpu/instance/n{n}"), &gpu).status, 200);
        }
        pushed_part(&g.scrape())
        // Stopping writes the snapshot.
    };
    let g = start_with(cfg());
    assert_eq!(pushed_part(&g.scrape()), saved);
    assert_eq!(pushed_part(&gunzip_scrape(&g)), saved);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn store_compression_accepts_on_and_off_only() {
    let f = |v: &str| {
        let args = ringgate::config::normalize_args(["ringgate".to_string(), format!("--store.compression={v}")]);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let flags = <ringgate::config::Flags as argh::FromArgs>::from_args(&[args[0]], &args[1..]).unwrap();
        ringgate::config::Config::from_flags(flags).map(|c| c.compression).map_err(|e| e.to_string())
    };
    assert_eq!(f("on"), Ok(true));
    assert_eq!(f("off"), Ok(false));
    let e = f("yes").unwrap_err();
    assert!(e.contains("--store.compression") && e.contains("\"yes\""), "{e}");
}

fn gunzip_scrape(g: &Gateway) -> String {
    let zipped = g.req("GET", "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(zipped.header("transfer-encoding").as_deref(), Some("chunked"));
    let body = dechunk(&zipped.body);
    let mut out = Vec::new();
    let mut one = flate2::read::GzDecoder::new(&body[..]);
    one.read_to_end(&mut out).unwrap();
    assert!(one.into_inner().is_empty(), "one gzip member, nothing after it");
    String::from_utf8(out).unwrap()
}

fn gauge(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).unwrap();
    line[name.len() + 1..].parse().unwrap()
}

#[test]
fn gzip_scrape_decodes_to_the_same_bytes() {
    // Its segment gauge counts every gateway in this process: other tests' pushes must not
    // move it between the two scrapes.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let g = start();
    for i in 0..3 {
        g.put(&format!("/metrics/job/filler{i}"), &big_body(6));
    }
    let node = shared_data("node-exporter-2cpu.prom");
    let gpu = std::fs::read_to_string(format!("{}/tests/fixtures/gpu.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for n in 0..20 {
        assert_eq!(g.put(&format!("/metrics/job/node/instance/n{n}"), &node).status, 200);
        assert_eq!(g.put(&format!("/metrics/job/gpu/instance/n{n}"), &gpu).status, 200);
    }
    // Self-metrics move between two scrapes; compare the pushed part.
    let plain = g.get("/metrics");
    let first = gunzip_scrape(&g);
    assert_eq!(strip_times(&first), strip_times(&plain.text()));
    let segments = gauge(&first, "ringgate_gzip_segment_bytes");
    // Made by the first gzip scrape (after its self-metrics were rendered), kept for the next.
    let second = gunzip_scrape(&g);
    assert_eq!(strip_times(&second), strip_times(&plain.text()));
    let kept = gauge(&second, "ringgate_gzip_segment_bytes");
    assert!(kept > segments, "segments made: {segments} then {kept}");
    // About a fifth of the 18 MB filler plus the payloads, or better.
    assert!(kept < plain.body.len() as f64 / 4.0, "{kept} of {}", plain.body.len());

    // A POST replaces some families of a group (its families then live in two buffers), a
    // PUT replaces a group, a DELETE removes one: the next gzip scrape follows all three.
    post_put_delete(&g, "filler1");
    let plain = g.get("/metrics");
    let third = gunzip_scrape(&g);
    assert_eq!(strip_times(&third), strip_times(&plain.text()));
    assert!(third.contains("node_load1{instance=\"n3\",job=\"node\"} 42\n"));
    assert!(!third.contains("filler1"));
    let after = gauge(&gunzip_scrape(&g), "ringgate_gzip_segment_bytes");
    assert!(after < kept, "the deleted group's segments are freed: {kept} then {after}");
    promtool_check(&third);
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap(), 16).unwrap();
        b = &b[nl + 2..];
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[..n]);
        b = &b[n + 2..];
    }
}
