//! Command-line flags.

use argh::FromArgs;
use std::time::Duration;

/// Load generator for Prometheus push gateways: reproduces the published stress test of the
/// official Pushgateway (GPU-cluster head node: 4 large pushes per node per cycle), or
/// measures the small-push rate. Only loopback targets are accepted.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// gateway address, HOST:PORT on loopback only (default 127.0.0.1:9091)
    #[argh(option, default = "String::from(\"127.0.0.1:9091\")")]
    pub target: String,

    /// stress (the published workload, default) or small (push rate of ~100-byte PUTs)
    #[argh(option, default = "String::from(\"stress\")")]
    pub mode: String,

    /// simulated nodes (stress mode; default 10)
    #[argh(option, default = "10")]
    pub nodes: u32,

    /// push cycle length (default 60s); durations accept 500ms, 20, 20s, 5m, 1h
    #[argh(option, default = "String::from(\"60s\")")]
    pub cycle: String,

    /// each push starts after a uniform random 0..JITTER delay in its cycle (default 20s;
    /// 0 = spike: everything at the cycle start)
    #[argh(option, default = "String::from(\"20s\")")]
    pub jitter: String,

    /// number of cycles to run (stress mode; default 1; ignored when --duration is given)
    #[argh(option, default = "1")]
    pub cycles: u32,

    /// run length: stress mode runs ceil(duration/cycle) cycles; small mode pushes for this
    /// long (default 10s)
    #[argh(option)]
    pub duration: Option<String>,

    /// connection pool size (default 500 in stress mode, 64 in small mode)
    #[argh(option)]
    pub connections: Option<usize>,

    /// client timeout per push, including the wait for a free pooled connection (default 30s)
    #[argh(option, default = "String::from(\"30s\")")]
    pub timeout: String,

    /// HTTP method for pushes: put (default, replaces the group) or post
    #[argh(option, default = "String::from(\"put\")")]
    pub method: String,

    /// scrape /metrics every this often during the run, alternating plain and gzip
    /// (default 10s; 0 disables)
    #[argh(option, default = "String::from(\"10s\")")]
    pub probe_interval: String,

    /// timeout of one /metrics scrape (default 60s, to measure slow scrapes; compare with
    /// Prometheus' 10s default scrape timeout in the report)
    #[argh(option, default = "String::from(\"60s\")")]
    pub probe_timeout: String,

    /// skip the two scrapes (plain, gzip) made after the last push
    #[argh(switch)]
    pub no_final_probe: bool,

    /// PID of the server: sample its RSS (VmRSS/VmHWM) and CPU time during the run
    #[argh(option)]
    pub server_pid: Option<u32>,

    /// sampling period of /proc for --server-pid (default 1s)
    #[argh(option, default = "String::from(\"1s\")")]
    pub sample_interval: String,

    /// time-series point period in the report (default 10s)
    #[argh(option, default = "String::from(\"10s\")")]
    pub series_interval: String,

    /// write the JSON report here instead of stdout
    #[argh(option)]
    pub out: Option<String>,

    /// RNG seed for jitter (default: from the clock; the report records it)
    #[argh(option)]
    pub seed: Option<u64>,

    /// real node-exporter capture to scale (default ../shared/data/node-exporter-2cpu.prom,
    /// relative to the current directory)
    #[argh(option, default = "String::from(\"../shared/data/node-exporter-2cpu.prom\")")]
    pub node_exporter_file: String,

    /// CPUs of the simulated node: per-CPU series are replicated this often (default 192)
    #[argh(option, default = "192")]
    pub node_cpus: usize,

    /// GPUs per node in the GPU payload (default 8)
    #[argh(option, default = "8")]
    pub gpus: usize,

    /// GPU payload size in KiB (default 767)
    #[argh(option, default = "767")]
    pub gpu_kib: usize,

    /// node-exporter payload size in KiB (default 570)
    #[argh(option, default = "570")]
    pub node_kib: usize,

    /// node-status payload size in KiB (default 25)
    #[argh(option, default = "25")]
    pub status_kib: usize,

    /// HPC-health payload size in KiB (default 15)
    #[argh(option, default = "15")]
    pub health_kib: usize,

    /// cluster pod-metrics payload size in KiB (default 20)
    #[argh(option, default = "20")]
    pub pod_kib: usize,

    /// small mode: number of distinct groups pushed to, round robin (default 10000)
    #[argh(option, default = "10000")]
    pub groups: u32,

    /// small mode: event-loop threads driving the connections (default 2; each sleeps only
    /// when none of its connections has an answer ready)
    #[argh(option, default = "2")]
    pub small_threads: usize,

    /// small mode: pushes each connection keeps in flight (default 1: the next push is
    /// written when the last answer arrived; N > 1 pipelines, HTTP/1.1 keep-alive style)
    #[argh(option, default = "1")]
    pub small_pipeline: usize,

    /// small mode: scheduling policy of the event-loop threads, batch (default) or normal.
    /// Batch threads take the CPU the gateway leaves and do not preempt it when an answer
    /// wakes them, as clients on other machines would not; normal lets every answer's wake-up
    /// preempt the gateway thread that sent it
    #[argh(option, default = "String::from(\"batch\")")]
    pub small_sched: String,

    /// print one payload (gpu, node, status, health, pod, small) for node 1 to stdout,
    /// check it is valid text format, report its size on stderr, and exit
    #[argh(option)]
    pub dump: Option<String>,
}

/// Parses `500ms`, `20`, `20s`, `1.5s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("bad duration {s:?} (want e.g. 500ms, 20s, 5m)"))?;
    if !v.is_finite() || v < 0.0 || v * mult > 1e7 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
