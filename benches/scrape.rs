//! Scrape assembly time (per-shard snapshots + the by-name merge + the slice list) against store size: the CPU a `GET /metrics` costs before the kernel copies a byte.
//!
//! Each group is the real node-exporter capture (`../shared/data/node-exporter-2cpu.prom`)
//! with its per-CPU series replicated to 192 CPUs, as the load generator's node-exporter
//! payload starts out, pushed to `job/node_exporter/instance/node-NNNNN` through the public
//! path a push takes: `text::parse` with the group's labels injected, then `Store::push` on
//! the shard `GroupKey::shard` picks, two shards sharing one `Registry` as on the 2-core
//! machine. Each iteration does what `api::scrape_all` and the plain write in `server.rs` do:
//! `Store::snapshot` on every shard, `scrape::assemble`, `Assembled::slices`.
//!
//! What it costs grows with the number of (group, family) chunks, not with bytes. Each group
//! here has 285 chunks (the capture's 283 families and the two push-time gauges): 2,000 groups
//! are 0.57 M chunks, about the 1,000-node showcase store (per node 4 groups holding 276, 283,
//! 11 and 3 families, plus 8 push-time chunks: 0.58 M). Throughput is bytes of exposition
//! assembled per second (2,000 of these groups are 0.54 GB, under a third of that store's 1.8 GB).

#[path = "support/fixture.rs"]
mod fixture;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fixture::{build_stores, data, scale_cpus, CPUS};

fn bench(c: &mut Criterion) {
    let body = scale_cpus(&data("node-exporter-2cpu.prom"), CPUS);
    let mut group = c.benchmark_group("scrape");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for groups in [250usize, 1000, 2000, 4000] {
        let stores = build_stores(&body, groups);
        let probe = ringgate::scrape::assemble(stores.iter().map(|s| s.snapshot("")).collect());
        eprintln!(
            "payloads: {groups} groups of {} body bytes: {} bytes of exposition, {} families, {} slices",
            body.len(),
            probe.len,
            probe.families,
            probe.slices().len()
        );
        group.throughput(Throughput::Bytes(probe.len as u64));
        drop(probe);
        group.bench_function(format!("snapshot_assemble_{groups}_groups"), |b| {
            b.iter(|| {
                let snaps = stores.iter().map(|s| s.snapshot("")).collect();
                let assembled = ringgate::scrape::assemble(black_box(snaps));
                black_box(assembled.slices().len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
