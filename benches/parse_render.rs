//! Parse + render throughput (MB/s of body) on real exporter payloads: the CPU each push costs its shard.
//!
//! Payloads, read at bench time from `../shared/data/` (next to the repository):
//! - `node-exporter-2cpu.prom` scaled to a many-core node: the `cpu="0"` series of each
//!   per-CPU family are replicated for CPUs 0..N (the `cpu="1"` ones dropped), N the smallest
//!   that reaches the ~570 KB the design's workload names for a node-exporter push;
//! - `prometheus-server.prom` as captured (histograms, summaries, escaped HELP text);
//! - the scaled node-exporter payload as a delimited protobuf body (`encoding=delimited`),
//!   encoded here by a tiny hand encoder; setup checks that it renders the same bytes as
//!   the text body, so both benches do the same work.
//!
//! - the load generator's DCGM-exporter-like GPU payload (`loadgen/src/payload.rs`, included
//!   here as it is): 8 GPUs, 11 labels per series in the exporter's own (unsorted) order,
//!   ~767 KB.
//!
//! Each iteration parses one body into the per-shard arena and renders every family with a
//! grouping key injected, then resets the arena: what a push costs on its owning shard.

use std::collections::BTreeMap;

// The load generator's payload builder, so that the GPU body benched is the one it pushes.
#[allow(dead_code, unused_imports)]
#[path = "../loadgen/src/payload.rs"]
mod payload;
#[allow(dead_code, unused_imports)]
#[path = "../loadgen/src/rng.rs"]
mod rng;
// Used by the payload module's own tests, which cargo compiles into benches too.
#[allow(dead_code, unused_imports)]
#[path = "../loadgen/src/expo_check.rs"]
mod expo_check;

use bumpalo::Bump;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringgate::expo::RenderedFamily;
use ringgate::grouping::{GroupKey, InjectedLabel};

/// The node-exporter push size in the design's workload (DESIGN.md, section 1).
const NODE_TARGET_BYTES: usize = 570_000;

fn data(file: &str) -> String {
    let path = format!("{}/../shared/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The 2-CPU payload with each per-CPU family's `cpu="0"` series repeated for `cpus` CPUs.
fn scale_cpus(body: &str, cpus: usize) -> String {
    let mut out = String::with_capacity(body.len() + cpus * 1024);
    let mut templates: Vec<&str> = Vec::new();
    let flush = |out: &mut String, templates: &mut Vec<&str>| {
        for cpu in 0..cpus {
            for line in templates.iter() {
                out.push_str(&line.replace("cpu=\"0\"", &format!("cpu=\"{cpu}\"")));
                out.push('\n');
            }
        }
        templates.clear();
    };
    for line in body.lines() {
        if line.contains("cpu=\"0\"") {
            templates.push(line);
        } else if line.contains("cpu=\"1\"") {
            // Replaced by the copies of the cpu="0" series.
        } else {
            flush(&mut out, &mut templates);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut out, &mut templates);
    out
}

fn node_payload() -> (String, usize) {
    let base = data("node-exporter-2cpu.prom");
    eprintln!(
        "payloads: node exporter: {} per-CPU series per CPU, {} bytes at 192 CPUs",
        base.lines().filter(|l| l.contains("cpu=\"0\"")).count(),
        scale_cpus(&base, 192).len()
    );
    let mut cpus = 2;
    loop {
        let body = scale_cpus(&base, cpus);
        if body.len() >= NODE_TARGET_BYTES {
            return (body, cpus);
        }
        cpus += 2;
    }
}

/// The node-exporter payload of node 1 as the load generator sends it: the same capture
/// scaled its way (192 CPUs, InfiniBand ports, NVMe disks, pod series up to ~570 KiB), with
/// each family's series in the order the Go client sorts them.
fn loadgen_node_payload() -> String {
    let mark = "#".repeat(payload::HOST_DIGITS);
    let host = format!("{:0width$}", 1, width = payload::HOST_DIGITS);
    let s = payload::Sizes::default();
    let (text, _) = payload::node_text(&data("node-exporter-2cpu.prom"), s.node_cpus, s.node_bytes).unwrap();
    text.replace(&mark, &host)
}

/// The GPU payload of node 1 as the load generator sends it (its host slots filled in).
fn gpu_payload() -> String {
    let mark = "#".repeat(payload::HOST_DIGITS);
    let host = format!("{:0width$}", 1, width = payload::HOST_DIGITS);
    payload::gpu_text(8, 767 * 1024).replace(&mark, &host)
}

fn grouping() -> Vec<InjectedLabel<'static>> {
    static KEY: std::sync::LazyLock<GroupKey> =
        std::sync::LazyLock::new(|| GroupKey::from_path("job/node/instance/gpu-node-0001").unwrap());
    KEY.injected()
}

fn rendered_bytes(fams: &[RenderedFamily]) -> usize {
    fams.iter().map(|f| f.samples.len()).sum()
}

fn bench(c: &mut Criterion) {
    let (node, cpus) = node_payload();
    let prom = data("prometheus-server.prom");
    let gpu = gpu_payload();
    let loadgen_node = loadgen_node_payload();
    let node_pb = to_protobuf(&node);
    let g = grouping();

    // The protobuf body must render exactly what the text body does.
    let (bump_a, bump_b) = (Bump::new(), Bump::new());
    let from_text = ringgate::text::parse(node.as_bytes(), &g, &bump_a).unwrap();
    let from_pb = ringgate::proto::parse(&node_pb, &g, &bump_b, usize::MAX).unwrap();
    assert_eq!(from_text, from_pb, "the protobuf payload is not the text payload");
    eprintln!(
        "payloads: node exporter scaled to {cpus} CPUs: {} bytes of text, {} bytes of protobuf, {} series; \
         prometheus server: {} bytes; rendered {} / {} bytes; GPU: {} bytes, {} series, rendered {} bytes",
        node.len(),
        node_pb.len(),
        from_text.iter().map(|f| f.series).sum::<u32>(),
        prom.len(),
        rendered_bytes(&from_text),
        rendered_bytes(&ringgate::text::parse(prom.as_bytes(), &g, &Bump::new()).unwrap()),
        gpu.len(),
        ringgate::text::parse(gpu.as_bytes(), &g, &Bump::new()).unwrap().iter().map(|f| f.series).sum::<u32>(),
        rendered_bytes(&ringgate::text::parse(gpu.as_bytes(), &g, &Bump::new()).unwrap()),
    );
    drop((from_text, from_pb));

    let mut group = c.benchmark_group("parse_render");
    let mut bump = Bump::new();
    for (name, body) in [
        (format!("text_node_exporter_{cpus}cpu"), node.as_bytes()),
        ("text_prometheus_server".into(), prom.as_bytes()),
        ("text_gpu_8".into(), gpu.as_bytes()),
        ("text_node_exporter_loadgen".into(), loadgen_node.as_bytes()),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let fams = ringgate::text::parse(black_box(body), &g, &bump).unwrap();
                black_box(fams);
                bump.reset();
            })
        });
    }
    group.throughput(Throughput::Bytes(node_pb.len() as u64));
    group.bench_function(format!("protobuf_node_exporter_{cpus}cpu"), |b| {
        b.iter(|| {
            let fams = ringgate::proto::parse(black_box(&node_pb), &g, &bump, usize::MAX).unwrap();
            black_box(fams);
            bump.reset();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

// --- A tiny protobuf encoder: the well-formed text payload as delimited MetricFamily messages. ---

/// One series of a family: its labels (unescaped, without `le`/`quantile`) and its samples.
#[derive(Default)]
struct Series {
    labels: Vec<(String, String)>,
    value: f64,
    /// (`le` or `quantile`, value) in body order.
    points: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

struct Family {
    name: String,
    help: Option<String>,
    mtype: u64,
    series: Vec<Series>,
    /// Label set (rendered) -> index in `series`.
    index: BTreeMap<String, usize>,
}

/// Encodes a well-formed text body (as exporters write it) as a delimited protobuf body.
fn to_protobuf(text: &str) -> Vec<u8> {
    let mut fams: Vec<Family> = Vec::new();
    let mut pending_help: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help.insert(name.into(), help.replace("\\n", "\n").replace("\\\\", "\\"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            let mtype = match ty {
                "counter" => 0,
                "gauge" => 1,
                "summary" => 2,
                "untyped" => 3,
                "histogram" => 4,
                t => panic!("type {t}"),
            };
            let help = pending_help.remove(name);
            fams.push(Family { name: name.into(), help, mtype, series: Vec::new(), index: BTreeMap::new() });
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = split_sample(line);
        let fam = fams.last_mut().filter(|f| name.starts_with(&f.name)).expect("samples follow their TYPE line");
        let suffix = &name[fam.name.len()..];
        let (point, labels): (Vec<_>, Vec<_>) = labels.into_iter().partition(|(n, _)| {
            (fam.mtype == 4 && n == "le" && suffix == "_bucket")
                || (fam.mtype == 2 && n == "quantile" && suffix.is_empty())
        });
        let key = format!("{labels:?}");
        let i = *fam.index.entry(key).or_insert_with(|| {
            fam.series.push(Series { labels, ..Series::default() });
            fam.series.len() - 1
        });
        let s = &mut fam.series[i];
        match suffix {
            "_sum" => s.sum = value,
            "_count" => s.count = value,
            _ if !point.is_empty() => s.points.push((point[0].1.parse().unwrap(), value)),
            _ => s.value = value,
        }
    }
    let mut out = Vec::new();
    for f in &fams {
        let mut msg = Vec::new();
        bytes_field(&mut msg, 1, f.name.as_bytes());
        if let Some(h) = &f.help {
            bytes_field(&mut msg, 2, h.as_bytes());
        }
        varint_field(&mut msg, 3, f.mtype);
        for s in &f.series {
            let mut m = Vec::new();
            for (n, v) in &s.labels {
                let mut lp = Vec::new();
                bytes_field(&mut lp, 1, n.as_bytes());
                bytes_field(&mut lp, 2, v.as_bytes());
                bytes_field(&mut m, 1, &lp);
            }
            let mut v = Vec::new();
            match f.mtype {
                2 => {
                    varint_field(&mut v, 1, s.count as u64);
                    double_field(&mut v, 2, s.sum);
                    for &(q, qv) in &s.points {
                        let mut p = Vec::new();
                        double_field(&mut p, 1, q);
                        double_field(&mut p, 2, qv);
                        bytes_field(&mut v, 3, &p);
                    }
                }
                4 => {
                    varint_field(&mut v, 1, s.count as u64);
                    double_field(&mut v, 2, s.sum);
                    for &(le, n) in &s.points {
                        let mut b = Vec::new();
                        varint_field(&mut b, 1, n as u64);
                        double_field(&mut b, 2, le);
                        bytes_field(&mut v, 3, &b);
                    }
                }
                _ => double_field(&mut v, 1, s.value),
            }
            // Value message field by type: counter 3, gauge 2, summary 4, untyped 5, histogram 7.
            let field = [3, 2, 4, 5, 7][f.mtype as usize];
            bytes_field(&mut m, field, &v);
            bytes_field(&mut msg, 4, &m);
        }
        put_varint(&mut out, msg.len() as u64);
        out.extend_from_slice(&msg);
    }
    out
}

/// `name{a="x",...} value` into its parts, label values unescaped.
fn split_sample(line: &str) -> (&str, Vec<(String, String)>, f64) {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(mut l) = rest.strip_prefix('{') {
        while !l.starts_with('}') {
            let (n, after) = l.split_once("=\"").unwrap();
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().unwrap() {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.push((n.to_string(), value));
            l = after[end + 1..].trim_start_matches(',');
        }
        rest = &l[1..];
    }
    (name, labels, rest.trim().parse().unwrap())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, num: u64, v: u64) {
    put_varint(out, num << 3);
    put_varint(out, v);
}

fn double_field(out: &mut Vec<u8>, num: u64, v: f64) {
    put_varint(out, num << 3 | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, num: u64, data: &[u8]) {
    put_varint(out, num << 3 | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}
