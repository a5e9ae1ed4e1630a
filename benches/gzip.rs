//! gzip of a scrape at level 1 (`decompress::gzip_member`, the scrape's level) over a large rendered store, in MB/s of exposition: the CPU a gzip `GET /metrics` costs.
//!
//! The store: 1,000 groups of the real node-exporter capture scaled to 192 CPUs (see
//! `support/fixture.rs`), assembled as a scrape assembles it (`Store::snapshot` per shard,
//! `scrape::assemble`). Three ways:
//! - `one_member_whole_store`: the whole exposition through one deflate stream, one thread;
//! - `one_member_16MiB_part`: one 16 MiB part (`Assembled::split`, `Assembled::gzip_range`),
//!   one run of a scrape (`SCRAPE_RUN` in src/server.rs);
//! - `parallel_2_threads_whole_store`: every part, two threads at a time (members
//!   concatenated; no socket write). This is what a gzip scrape cost on every scrape before
//!   scrapes sent per-group deflate segments (`src/gzip.rs`);
//! - `segments_made_whole_store`: every family chunk deflated as its own sync-flushed
//!   segment (`gzip::deflate_segments`), one thread: what the first gzip scrape after every
//!   group was pushed again costs, at most once per push;
//! - `segments_reused_whole_store`: a gzip scrape whose segments exist
//!   (`Assembled::gzip_body`: the body's slices and the CRC-32 of the plain bytes, from the
//!   segments' CRCs, in one pass), one thread: what every other gzip scrape costs.
//! - `inflate_own_whole_store` and `inflate_zlib_rs_whole_store`: every family chunk's
//!   segment inflated back into a buffer the size of the exposition, one thread: what a
//!   plain scrape of a compressed store (`--store.compression on`) costs before the socket,
//!   with ringgate's own decoder (`gzip::inflate_to`, since bda25ea) and with zlib-rs reset
//!   per segment (before).
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
/// The gzip level scrapes used before segments, and the run size (`SCRAPE_RUN` in src/server.rs).
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
    group.throughput(Throughput::Bytes(assembled.len as u64));
    let slices = assembled.slices();
    let mut seg_bytes = 0;
    group.bench_function("segments_made_whole_store", |b| {
        b.iter(|| {
            seg_bytes = slices.iter().map(|s| ringgate::gzip::deflate_segments(s, &[(0, s.len())]).data.len()).sum();
            black_box(seg_bytes)
        })
    });
    let all = 0..parts.last().map_or(0, |r| r.end);
    assembled.make_segments(all.clone());
    // As a gzip scrape holds the store: each chunk by its segment only.
    let mut deflated = ringgate::scrape::assemble(stores.iter().map(|s| s.snapshot("")).collect());
    deflated.keep_deflated_only(all.clone());
    group.bench_function("segments_reused_whole_store", |b| {
        b.iter(|| {
            let mut frames = Vec::new();
            let mut out = Vec::new();
            let (crc, len) = deflated.gzip_body(all.clone(), &mut frames, &mut out);
            black_box((crc, len, out.len()))
        })
    });
    drop(deflated);
    // A compressed store: each chunk kept as its segment, inflated back into place.
    let segments: Vec<_> = slices.iter().map(|s| ringgate::gzip::deflate_segments(s, &[(0, s.len())])).collect();
    let mut out = vec![0u8; assembled.len];
    let inflate_own = |out: &mut [u8]| {
        let mut at = 0;
        for (seg, s) in segments.iter().zip(&slices) {
            ringgate::gzip::inflate_to(seg.get(0), &mut out[at..at + s.len()]);
            at += s.len();
        }
        out[at - 1]
    };
    // Checked once up front, so that the check holds when a filter skips the timed runs.
    inflate_own(&mut out);
    assert!(slices.iter().flat_map(|s| s.iter()).eq(out.iter()), "own inflater reads back the store");
    group.bench_function("inflate_own_whole_store", |b| b.iter(|| black_box(inflate_own(&mut out))));
    let mut z = flate2::Decompress::new(false);
    let mut zout: Vec<u8> = Vec::with_capacity(assembled.len + 1);
    let mut inflate_zlib_rs = |zout: &mut Vec<u8>| {
        zout.clear();
        for seg in &segments {
            z.reset(false);
            z.decompress_vec(seg.get(0), zout, flate2::FlushDecompress::Sync).expect("valid segment");
        }
        zout.len()
    };
    assert_eq!(inflate_zlib_rs(&mut zout), assembled.len, "zlib-rs reads back the store");
    group.bench_function("inflate_zlib_rs_whole_store", |b| b.iter(|| black_box(inflate_zlib_rs(&mut zout))));
    group.finish();
    eprintln!(
        "segments: {} bytes for {} bytes of exposition (ratio {:.1})",
        seg_bytes,
        assembled.len,
        assembled.len as f64 / seg_bytes.max(1) as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
