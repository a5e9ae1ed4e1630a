//! End to end with the official Python client (`prometheus-client` from PyPI):
//! tests/python/push_client.py pushes with `push_to_gateway`, `pushadd_to_gateway` and
//! `delete_from_gateway` to the `ringgate` binary, with grouping-key values that contain `/`,
//! spaces and non-ASCII, and a counter, a gauge, a histogram and a summary; the scrape is then
//! checked line for line, and against what the official Pushgateway holds after the same
//! script.
//!
//! Missing peers fail the test with the command that installs them; nothing is skipped.

mod peers;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peers::{free_port, parse_sample, require, try_http, wait_for, Gateway, TextSample, INSTALL_HINT};

fn python() -> std::path::PathBuf {
    let py = require("python3");
    let check = Command::new(&py).args(["-c", "import prometheus_client"]).output().expect("run python3");
    assert!(
        check.status.success(),
        "the Python module prometheus_client is missing for {}: {INSTALL_HINT}\n{}",
        py.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    py
}

/// Runs tests/python/push_client.py against `addr`.
fn run_client(addr: SocketAddr) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/push_client.py");
    let out = Command::new(python()).arg(&script).arg(addr.to_string()).output().expect("run push_client.py");
    assert!(
        out.status.success(),
        "push_client.py against {addr} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const GROUP: &str = r#"instance="node/07",job="py/batch",rack="B 12/α",site="Zürich""#;

#[test]
fn python_client_pushes_are_served_line_for_line() {
    let gw = Gateway::start(&[]);
    run_client(gw.addr);
    let scrape = gw.scrape();
    let lines: Vec<&str> = scrape.lines().filter(|l| !is_self_metric(l)).collect();

    // The deterministic lines, in the order the scrape must have them: families sorted by
    // name, each with one HELP and one TYPE, labels in canonical (sorted) order, values as the
    // client wrote them.
    let g = GROUP;
    let gl = |extra: &str| format!(r#"{{instance="node/07",job="py/batch",{extra},rack="B 12/α",site="Zürich"}}"#);
    let expected: Vec<String> = vec![
        "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.".into(),
        "# TYPE push_failure_time_seconds gauge".into(),
        format!("push_failure_time_seconds{{{g}}} 0"),
        "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.".into(),
        "# TYPE push_time_seconds gauge".into(),
        // push_time_seconds{...} <now>: checked below
        "# HELP py_batch_records Records in the last batch.".into(),
        "# TYPE py_batch_records gauge".into(),
        format!("py_batch_records{{{g}}} 42.0"),
        "# HELP py_job_duration_seconds Time a job took.".into(),
        "# TYPE py_job_duration_seconds histogram".into(),
        format!("py_job_duration_seconds_bucket{} 1.0", gl(r#"le="0.1""#)),
        format!("py_job_duration_seconds_bucket{} 2.0", gl(r#"le="1.0""#)),
        format!("py_job_duration_seconds_bucket{} 3.0", gl(r#"le="10.0""#)),
        format!("py_job_duration_seconds_bucket{} 4.0", gl(r#"le="+Inf""#)),
        format!("py_job_duration_seconds_count{{{g}}} 4.0"),
        format!("py_job_duration_seconds_sum{{{g}}} 55.55"),
        "# HELP py_job_duration_seconds_created Time a job took.".into(),
        "# TYPE py_job_duration_seconds_created gauge".into(),
        // py_job_duration_seconds_created{...} <creation time>
        "# HELP py_jobs_processed_created Jobs processed.".into(),
        "# TYPE py_jobs_processed_created gauge".into(),
        // two py_jobs_processed_created{...} <creation time>
        "# HELP py_jobs_processed_total Jobs processed.".into(),
        "# TYPE py_jobs_processed_total counter".into(),
        format!("py_jobs_processed_total{} 3.0", gl(r#"queue="fast""#)),
        format!("py_jobs_processed_total{} 1.5", gl(r#"queue="slow""#)),
        "# HELP py_last_success_unixtime Last time the batch job succeeded.".into(),
        "# TYPE py_last_success_unixtime gauge".into(),
        format!("py_last_success_unixtime{{{g}}} 1.7000000005e+09"),
        "# HELP py_request_size_bytes Request sizes.".into(),
        "# TYPE py_request_size_bytes summary".into(),
        format!("py_request_size_bytes_count{{{g}}} 2.0"),
        format!("py_request_size_bytes_sum{{{g}}} 400.0"),
        "# HELP py_request_size_bytes_created Request sizes.".into(),
        "# TYPE py_request_size_bytes_created gauge".into(),
        // py_request_size_bytes_created{...} <creation time>
    ];
    let timed = |l: &&str| {
        l.starts_with("push_time_seconds{")
            || (l.starts_with("py_") && l.split(['{', ' ']).next().unwrap().ends_with("_created"))
    };
    let fixed: Vec<&str> = lines.iter().copied().filter(|l| !timed(l)).collect();
    assert_eq!(fixed, expected, "the scrape, without its time-valued lines:\n{scrape}");

    // The time-valued lines: the group's labels and a plausible Unix time.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let timed_lines: Vec<&str> = lines.iter().copied().filter(timed).collect();
    let mut names = Vec::new();
    for l in &timed_lines {
        let (name, labels, value) = parse_sample(l).unwrap();
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {l:?}"));
        assert!((now - v).abs() < 600.0, "{l:?} should carry a time near now ({now})");
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys == ["instance", "job", "rack", "site"] || keys == ["instance", "job", "queue", "rack", "site"]);
        assert!(l.contains(r#"instance="node/07",job="py/batch","#) && l.contains(r#"rack="B 12/α",site="Zürich"}"#));
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "push_time_seconds",
            "py_job_duration_seconds_created",
            "py_jobs_processed_created",
            "py_jobs_processed_created",
            "py_request_size_bytes_created"
        ]
    );

    // delete_from_gateway removed its group: nothing of job="py-doomed" is left.
    assert!(!scrape.contains("py-doomed") && !scrape.contains("py_doomed"), "deleted group still served:\n{scrape}");
}

/// A line of the gateway's own `ringgate_*` families, which the scrape also carries.
fn is_self_metric(line: &str) -> bool {
    let name = match line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
        Some(rest) => rest,
        None => line,
    };
    name.starts_with("ringgate_")
}

/// The official Pushgateway, for comparison.
struct Pushgateway {
    addr: SocketAddr,
    child: Child,
}

impl Pushgateway {
    fn start() -> Pushgateway {
        let bin = require("/usr/bin/prometheus-pushgateway");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            // Debian's build defaults to /var/lib/prometheus/pushgateway.data, which would
            // carry groups from one run into the next.
            .arg("--persistence.file=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus-pushgateway");
        wait_for("the Pushgateway to be ready", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("prometheus-pushgateway exited: {status}");
            }
            try_http(addr, "GET", "/-/ready", &[], b"").ok().filter(|a| a.status == 200)
        });
        Pushgateway { addr, child }
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pushed samples of a scrape as (name, sorted labels, value), leaving out what differs
/// by nature: the gateways' own metrics and time-valued series. `le` and `quantile` values
/// are compared as numbers: the Pushgateway re-encodes `1.0` as `1`.
fn pushed_samples(scrape: &str) -> BTreeSet<TextSample> {
    scrape
        .lines()
        .filter_map(parse_sample)
        .filter(|(name, _, _)| name.starts_with("py_") || name.starts_with("push_failure"))
        .filter(|(name, _, _)| !name.ends_with("_created"))
        .map(|(name, mut labels, value)| {
            for (k, v) in labels.iter_mut() {
                if k == "le" || k == "quantile" {
                    *v = format!("{:?}", v.parse::<f64>().unwrap_or_else(|_| panic!("{k}={v:?} of {name}")));
                }
            }
            labels.sort();
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value {value:?} of {name}"));
            (name, labels, format!("{v:?}"))
        })
        .collect()
}

#[test]
fn python_client_leaves_the_same_series_as_in_the_official_pushgateway() {
    let gw = Gateway::start(&[]);
    let pg = Pushgateway::start();
    run_client(gw.addr);
    run_client(pg.addr);
    let ours = pushed_samples(&gw.scrape());
    let a = peers::http(pg.addr, "GET", "/metrics", &[], b"");
    assert_eq!(a.status, 200);
    let theirs = pushed_samples(&a.text());
    assert!(theirs.len() == 13, "the Pushgateway should hold the pushed series: {theirs:?}");
    assert_eq!(ours, theirs, "ringgate and the Pushgateway hold different series after the same pushes");
}
