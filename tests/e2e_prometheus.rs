//! End to end with the real Prometheus (Debian `prometheus` package): the server scrapes the
//! `ringgate` binary with `honor_labels: true`, and what a push says is read back through
//! Prometheus' HTTP API; `promtool check metrics` reads a scrape of the real payloads.
//!
//! Missing peers fail the test with the command that installs them; nothing is skipped.

mod peers;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use peers::{http, require, shared_data, Gateway, Prometheus, Sample};

const WAIT: Duration = Duration::from_secs(30);

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn only(samples: Vec<Sample>, what: &str) -> Sample {
    assert_eq!(samples.len(), 1, "{what}: expected one series, got {samples:?}");
    samples.into_iter().next().unwrap()
}

const NODE_PUSH: &str = "\
# HELP e2e_gpu_temperature_celsius GPU temperature.
# TYPE e2e_gpu_temperature_celsius gauge
e2e_gpu_temperature_celsius{gpu=\"0\",model=\"H100 SXM\"} 71.5
e2e_gpu_temperature_celsius{gpu=\"1\",model=\"H100 SXM\"} 68
# HELP e2e_jobs_total Jobs run.
# TYPE e2e_jobs_total counter
e2e_jobs_total{job=\"overwritten-by-the-url\"} 12
# HELP e2e_step_seconds Step time.
# TYPE e2e_step_seconds histogram
e2e_step_seconds_bucket{le=\"0.5\"} 3
e2e_step_seconds_bucket{le=\"+Inf\"} 5
e2e_step_seconds_sum 4.25
e2e_step_seconds_count 5
";

#[test]
fn prometheus_reads_pushed_series_with_their_labels_and_they_go_stale_after_delete() {
    let gw = Gateway::start(&[]);
    let prom = Prometheus::start(gw.addr);

    assert_eq!(gw.put("/metrics/job/e2e-node/instance/gpu017", NODE_PUSH.as_bytes()).status, 200);
    let no_instance = "# TYPE e2e_cluster_pods gauge\ne2e_cluster_pods 42\n";
    assert_eq!(gw.put("/metrics/job/e2e-cluster", no_instance.as_bytes()).status, 200);

    assert_eq!(prom.target_up(), "1", "Prometheus should scrape the gateway; its log:\n{}", prom.log());

    // Grouping labels (URL wins over the body's job label) and body labels, values as pushed.
    let temps = prom.wait_for_series("e2e_gpu_temperature_celsius", WAIT);
    let mut got: Vec<_> = temps.iter().map(|s| (s.labels.clone(), s.value.clone())).collect();
    got.sort();
    let base = [("job", "e2e-node"), ("instance", "gpu017"), ("model", "H100 SXM")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l: Vec<_> = base.to_vec();
        l.push(("__name__", "e2e_gpu_temperature_celsius"));
        l.push(extra);
        labels(&l)
    };
    assert_eq!(got, vec![(with(("gpu", "0")), "71.5".to_string()), (with(("gpu", "1")), "68".to_string())]);

    let jobs = only(prom.query("e2e_jobs_total"), "e2e_jobs_total");
    assert_eq!(jobs.labels, labels(&[("__name__", "e2e_jobs_total"), ("job", "e2e-node"), ("instance", "gpu017")]));
    assert_eq!(jobs.value, "12");

    let inf = only(prom.query("e2e_step_seconds_bucket{le=\"+Inf\"}"), "+Inf bucket");
    assert_eq!(inf.value, "5");
    let sum = only(prom.query("e2e_step_seconds_sum"), "histogram sum");
    assert_eq!(sum.value, "4.25");
    let p50 = only(prom.query("histogram_quantile(0.5, e2e_step_seconds_bucket)"), "quantile");
    assert_eq!(p50.value, "0.4166666666666667", "PromQL reads the buckets as a histogram");

    // instance="" added by the gateway: with honor_labels Prometheus keeps it empty, so the
    // series has no instance label instead of the gateway's address.
    let pods = only(prom.query("e2e_cluster_pods"), "e2e_cluster_pods");
    assert_eq!(pods.labels, labels(&[("__name__", "e2e_cluster_pods"), ("job", "e2e-cluster")]));
    assert_eq!(pods.value, "42");

    let pushed = prom.query("push_time_seconds{job=\"e2e-node\",instance=\"gpu017\"}");
    assert_eq!(pushed.len(), 1, "push_time_seconds of the group: {pushed:?}");

    // DELETE (persistent lifecycle): the next scrape lacks the group, Prometheus marks its
    // series stale, and queries stop returning them. The other group stays.
    assert_eq!(gw.delete("/metrics/job/e2e-node/instance/gpu017").status, 202);
    prom.wait_until_stale("e2e_gpu_temperature_celsius", WAIT);
    prom.wait_until_stale("e2e_jobs_total", WAIT);
    prom.wait_until_stale("push_time_seconds{job=\"e2e-node\"}", WAIT);
    assert_eq!(only(prom.query("e2e_cluster_pods"), "after the delete").value, "42");
    assert_eq!(prom.query("up{job=\"ringgate\"}")[0].value, "1");
}

#[test]
fn prometheus_sees_a_replaced_group_without_its_dropped_families() {
    let gw = Gateway::start(&[]);
    let prom = Prometheus::start(gw.addr);
    let first = "e2e_replace_a 1\ne2e_replace_b 2\n";
    assert_eq!(gw.put("/metrics/job/e2e-replace", first.as_bytes()).status, 200);
    prom.wait_for_series("e2e_replace_b", WAIT);
    // PUT replaces the whole group: b disappears; POST replaces only the families it names.
    assert_eq!(gw.put("/metrics/job/e2e-replace", b"e2e_replace_a 3\n").status, 200);
    prom.wait_until_stale("e2e_replace_b", WAIT);
    assert_eq!(gw.post("/metrics/job/e2e-replace", b"e2e_replace_c 4\n").status, 200);
    prom.wait_for_series("e2e_replace_c", WAIT);
    assert_eq!(only(prom.query("e2e_replace_a"), "a after POST").value, "3");
}

/// Lint lines `promtool check metrics` prints for some exposition text, and its exit code.
fn promtool_check(text: &[u8]) -> (Option<i32>, Vec<String>) {
    let promtool = require("/usr/bin/promtool");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("promtool output");
    writer.join().unwrap().expect("write to promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = report.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    lines.sort();
    lines.dedup();
    (out.status.code(), lines)
}

#[test]
fn promtool_check_metrics_finds_no_error_in_a_scrape_of_the_real_payloads() {
    let node = shared_data("node-exporter-2cpu.prom");
    let prom = shared_data("prometheus-server.prom");
    let gw = Gateway::start(&[]);
    let a = gw.put("/metrics/job/node/instance/head-01", &node);
    assert_eq!(a.status, 200, "node exporter payload: {}", a.text());
    let a = gw.put("/metrics/job/prometheus/instance/head-01:9090", &prom);
    assert_eq!(a.status, 200, "prometheus payload: {}", a.text());
    let scrape = gw.scrape();

    // Exit 1 and "error while linting" are parse errors; exit 3 only lists naming-style
    // problems (camelCase names and the like) that the exporters' own output already has.
    let (code, report) = promtool_check(scrape.as_bytes());
    assert!(code == Some(0) || code == Some(3), "promtool check metrics exited {code:?}:\n{}", report.join("\n"));
    assert!(!report.iter().any(|l| l.contains("error")), "promtool reports errors:\n{}", report.join("\n"));

    // The gateway must add no problem of its own: the lint lines of the scrape are exactly
    // those of the two payloads checked on their own.
    let mut expected = promtool_check(&node).1;
    expected.extend(promtool_check(&prom).1);
    expected.sort();
    expected.dedup();
    assert_eq!(report, expected, "promtool finds problems in the scrape that the payloads do not have");

    // Strict parsers need each family once: one TYPE line per name.
    let mut types: Vec<&str> = scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
    let n = types.len();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), n, "a family appears twice in the scrape");
    assert!(scrape.contains("node_uname_info{"), "node_uname_info (label values with spaces) is served");
}

/// How many samples of `series` Prometheus stored in the last five minutes, and the last one.
/// Stale markers are not counted, so after a group left the scrape this still tells how many
/// scrapes carried it.
fn scraped(prom: &Prometheus, series: &str) -> Option<(String, String)> {
    let count = prom.query(&format!("count_over_time({series}[5m])"));
    let last = prom.query(&format!("last_over_time({series}[5m])"));
    match (count.first(), last.first()) {
        (Some(c), Some(l)) => Some((c.value.clone(), l.value.clone())),
        _ => None,
    }
}

#[test]
fn prometheus_gets_a_clear_group_once_and_then_it_goes_stale() {
    let gw = Gateway::start(&[]);
    let prom = Prometheus::start_with_params(gw.addr, &[("scraper", "replica-a")]);
    assert_eq!(prom.target_up(), "1");

    let a = http(
        gw.addr,
        "PUT",
        "/metrics/job/e2e-clear/instance/n1",
        &[("X-Ringgate-Lifecycle", "clear")],
        b"# TYPE e2e_clear_events counter\ne2e_clear_events 7\n",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(gw.put("/metrics/job/e2e-kept", b"e2e_kept 1\n").status, 200);

    // One scrape carried it, then the gateway dropped it and the next scrape made it stale.
    let (count, last) = peers::wait_for("the clear group to be scraped", WAIT, || scraped(&prom, "e2e_clear_events"));
    assert_eq!(last, "7");
    prom.wait_until_stale("e2e_clear_events", WAIT);
    let (count_after, _) = scraped(&prom, "e2e_clear_events").unwrap();
    assert_eq!((count.as_str(), count_after.as_str()), ("1", "1"), "the clear group must be scraped exactly once");
    // The persistent group next to it stays.
    assert_eq!(only(prom.query("e2e_kept"), "persistent group").value, "1");
}

#[test]
fn two_prometheus_replicas_each_get_every_clear_group_once() {
    let gw = Gateway::start(&["--lifecycle", "clear", "--clear.scrapers", "replica-a,replica-b"]);
    let a = Prometheus::start_with_params(gw.addr, &[("scraper", "replica-a")]);
    let b = Prometheus::start_with_params(gw.addr, &[("scraper", "replica-b")]);
    assert_eq!(a.target_up(), "1");
    assert_eq!(b.target_up(), "1");

    assert_eq!(gw.put("/metrics/job/e2e-replicas/instance/n1", b"e2e_replica_events 3\n").status, 200);
    for (name, prom) in [("replica-a", &a), ("replica-b", &b)] {
        let (_, last) =
            peers::wait_for(&format!("{name} to scrape the clear group"), WAIT, || scraped(prom, "e2e_replica_events"));
        assert_eq!(last, "3", "{name}");
        prom.wait_until_stale("e2e_replica_events", WAIT);
        let (count, _) = scraped(prom, "e2e_replica_events").unwrap();
        assert_eq!(count, "1", "{name} must receive the clear group exactly once");
    }
    // Both took it, so the gateway no longer holds it for anyone.
    assert!(!gw.scrape().contains("e2e_replica_events"), "the clear group should be gone once both replicas had it");
}
