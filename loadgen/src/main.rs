//! ringgate-loadgen: reproduces the published stress test of the Prometheus Pushgateway
//! against any gateway with the same push API (ringgate, the official Pushgateway) on
//! loopback, and reports success rate, latencies, scrape probes and server RSS/CPU as JSON.

mod cli;
mod expo_check;
mod http;
mod json;
mod payload;
mod procfs;
mod rng;
mod run;
mod stats;

use cli::{parse_duration, Args};
use payload::{Kind, Payloads, Sizes};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringgate-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn dur(flag: &str, v: &str) -> Result<Duration, String> {
    parse_duration(v).map_err(|e| format!("--{flag}: {e}"))
}

fn real_main(a: Args) -> Result<(), String> {
    let sizes = Sizes {
        gpus: a.gpus.clamp(1, 64),
        gpu_bytes: a.gpu_kib * 1024,
        node_cpus: a.node_cpus.clamp(1, 4096),
        node_bytes: a.node_kib * 1024,
        status_bytes: a.status_kib * 1024,
        health_bytes: a.health_kib * 1024,
        pod_bytes: a.pod_kib * 1024,
    };
    if a.nodes == 0 || a.nodes > payload::MAX_NODES {
        return Err(format!("--nodes must be 1..={}", payload::MAX_NODES));
    }
    let load_capture = || {
        std::fs::read_to_string(&a.node_exporter_file).map_err(|e| {
            format!(
                "cannot read node-exporter capture {:?}: {e} (run from the repo root, or pass --node-exporter-file /path/to/shared/data/node-exporter-2cpu.prom)",
                a.node_exporter_file
            )
        })
    };

    if let Some(kind) = &a.dump {
        let text = if kind == "small" {
            payload::small_body(1, 1)
        } else {
            let k = Kind::parse(kind)
                .ok_or_else(|| format!("--dump: unknown kind {kind:?} (gpu, node, status, health, pod, small)"))?;
            let capture = if k == Kind::Node { load_capture()? } else { String::new() };
            let p = if k == Kind::Node {
                Payloads::build(&sizes, &capture, a.nodes)?.by_kind.swap_remove(k.index())
            } else {
                let text = match k {
                    Kind::Gpu => payload::gpu_text(sizes.gpus, sizes.gpu_bytes),
                    Kind::Status => payload::status_text(sizes.status_bytes),
                    Kind::Health => payload::health_text(sizes.health_bytes),
                    _ => payload::pod_text(a.nodes, sizes.pod_bytes),
                };
                payload::Payload::from_text(k, text)
            };
            String::from_utf8(p.render(1, 1)).expect("payloads are UTF-8")
        };
        let st = expo_check::check(&text).map_err(|e| format!("generated {kind} payload is invalid: {e}"))?;
        eprintln!(
            "{kind}: {} bytes, {} families, {} samples, up to {} labels per series: valid text format 0.0.4",
            text.len(),
            st.families,
            st.samples,
            st.max_labels
        );
        use std::io::Write;
        match std::io::stdout().write_all(text.as_bytes()) {
            // `--dump gpu | head` is fine.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.to_string()),
            _ => return Ok(()),
        }
    }

    let target = http::parse_target(&a.target)?;
    let small = match a.mode.as_str() {
        "stress" => false,
        "small" => true,
        m => return Err(format!("--mode {m:?}: want stress or small")),
    };
    let method = match a.method.to_ascii_lowercase().as_str() {
        "put" => "PUT",
        "post" => "POST",
        m => return Err(format!("--method {m:?}: want put or post")),
    };
    let cycle = dur("cycle", &a.cycle)?;
    let jitter = dur("jitter", &a.jitter)?;
    let timeout = dur("timeout", &a.timeout)?;
    if cycle.is_zero() || timeout.is_zero() {
        return Err("--cycle and --timeout must be > 0".into());
    }
    let duration = a.duration.as_deref().map(|d| dur("duration", d)).transpose()?;
    let cycles = match duration {
        Some(d) if !small => ((d.as_secs_f64() / cycle.as_secs_f64()).ceil() as u32).max(1),
        _ => a.cycles.max(1),
    };
    if !small && jitter > cycle {
        eprintln!("warning: --jitter is longer than --cycle: cycles will overlap");
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(42)
    });
    let cfg = run::RunConfig {
        target,
        small,
        nodes: a.nodes,
        cycle,
        jitter,
        cycles,
        duration: duration.unwrap_or(Duration::from_secs(10)),
        connections: a.connections.unwrap_or(if small { 64 } else { 500 }).clamp(1, 5000),
        timeout,
        method,
        probe_interval: dur("probe-interval", &a.probe_interval)?,
        probe_timeout: dur("probe-timeout", &a.probe_timeout)?.max(Duration::from_millis(1)),
        final_probe: !a.no_final_probe,
        server_pid: a.server_pid,
        sample_interval: dur("sample-interval", &a.sample_interval)?,
        series_interval: dur("series-interval", &a.series_interval)?,
        seed,
        groups: a.groups.max(1),
        small_threads: a.small_threads.max(1),
        small_pipeline: a.small_pipeline.clamp(1, 1024),
        small_sched_batch: match a.small_sched.as_str() {
            "batch" => true,
            "normal" => false,
            other => return Err(format!("--small-sched: {other:?} is neither batch nor normal")),
        },
    };
    if let Some(pid) = cfg.server_pid {
        if procfs::sample(pid).is_none() {
            return Err(format!("--server-pid {pid}: no such process (cannot read /proc/{pid})"));
        }
    }
    let payloads = if small {
        None
    } else {
        let capture = load_capture()?;
        let p = Payloads::build(&sizes, &capture, cfg.nodes)?;
        let per_node: usize = Kind::PER_NODE.iter().map(|&k| p.get(k).len()).sum();
        eprintln!(
            "ringgate-loadgen: {} nodes x {} cycle(s) of {:?} (jitter {:?}), {} connections, timeout {:?}; payloads gpu {} / node {} / status {} / health {} / pod {} bytes ({:.1} MB per node per cycle)",
            cfg.nodes,
            cfg.cycles,
            cfg.cycle,
            cfg.jitter,
            cfg.connections,
            cfg.timeout,
            p.get(Kind::Gpu).len(),
            p.get(Kind::Node).len(),
            p.get(Kind::Status).len(),
            p.get(Kind::Health).len(),
            p.get(Kind::Pod).len(),
            per_node as f64 / 1e6
        );
        Some(Arc::new(p))
    };
    if small {
        eprintln!(
            "ringgate-loadgen: small pushes for {:?} on {} connections ({} event-loop thread(s), {}, {} in flight each) to {} groups",
            cfg.duration,
            cfg.connections,
            cfg.small_threads,
            if cfg.small_sched_batch { "SCHED_BATCH" } else { "SCHED_OTHER" },
            cfg.small_pipeline,
            cfg.groups
        );
    }
    let report = run::run(cfg, payloads).to_pretty();
    match &a.out {
        Some(path) => std::fs::write(path, report).map_err(|e| format!("--out {path}: {e}"))?,
        None => print!("{report}"),
    }
    Ok(())
}
