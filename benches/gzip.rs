//! gzip of a scrape at level 1 (`decompress::gzip_member`, the scrape's level) over a large rendered store, in MB/s of exposition: the CPU a gzip `GET /metrics` costs.
//!
//! The store: 1,000 groups of the real node-exporter capture scaled to 192 CPUs (see
//! `support/fixture.rs`), assembled as a scrape assembles it (`Store::snapshot` per shard,
//! `scrape::assemble`). Three ways:
//! - `one_member_whole_store`: the whole exposition through one deflate stream, one thread;
//! - `one_member_16MiB_part`: one 16 MiB part (`Assembled::split`, `Assembled::gzip_range`),
//!   the unit of work `server.rs` hands to a blocking thread (`GZIP_PART`);
//! - `parallel_2_threads_whole_store`: every part, two threads at a time, as `write_gzip`
//!   does on this 2-core machine (members concatenated; no socket write).
//!
//! The compressed size (ratio) is printed once in the `payloads:` line. Every group has the
//! same sample values, but deflate's window is 32 KiB and one group's exposition is ~300 KB,
//! so the ratio is that of one node's data, not of repeated groups.

#[path = "support/fixture.rs"]
mod fixture;

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use fixture::{build_stores, data, scale_cpus, CPUS};

const GROUPS: usize = 1000;
/// The scrape's gzip level and part size (`SCRAPE_GZIP_LEVEL`, `GZIP_PART` in src/server.rs).
const LEVEL: u32 = 1;
const PART: usize = 16 << 20;

fn bench(c: &mut Criterion) {
    let body = scale_cpus(&data("node-exporter-2cpu.prom"), CPUS);
    let stores = build_stores(&body, GROUPS);
    let assembled = Arc::new(ringgate::scrape::assemble(stores.iter().map(|s| s.snapshot("")).collect()));
    let parts = assembled.split(assembled.len / PART + 1);
    let whole = ringgate::decompress::gzip_member(&assembled.slices(), LEVEL);
    let first_part_bytes: usize = assembled.slices()[parts[0].clone()].iter().map(|s| s.len()).sum();
    eprintln!(
        "payloads: {GROUPS} groups: {} bytes of exposition, gzip level {LEVEL}: {} bytes (ratio {:.1}), {} parts, first part {} bytes",
        assembled.len,
        whole.len(),
        assembled.len as f64 / whole.len() as f64,
        parts.len(),
        first_part_bytes
    );
    drop(whole);

    let mut group = c.benchmark_group("gzip");
    // Iterations of a second or more: flat sampling (10 samples of equal iteration counts).
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(assembled.len as u64));
    group.bench_function("one_member_whole_store", |b| {
        b.iter(|| black_box(ringgate::decompress::gzip_member(&assembled.slices(), LEVEL).len()))
    });
    group.throughput(Throughput::Bytes(first_part_bytes as u64));
    group.bench_function("one_member_16MiB_part", |b| {
        b.iter(|| black_box(assembled.gzip_range(parts[0].clone(), LEVEL).len()))
    });
    group.throughput(Throughput::Bytes(assembled.len as u64));
    group.bench_function("parallel_2_threads_whole_store", |b| {
        b.iter(|| {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let total = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(range) = parts.get(i) else { break };
                        let n = assembled.gzip_range(range.clone(), LEVEL).len();
                        total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            });
            black_box(total.into_inner())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
