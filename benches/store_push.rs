//! The store's share of a large push: `Store::push` (replace) of one node-exporter group, its
//! body already parsed and rendered, into a store of 2,000 such groups — the index and map
//! updates, the registry check and the release of the group's previous families. Parsing is
//! measured by `parse_render`; this is what the owning shard adds to it.
//!
//! The group is the real capture (`../shared/data/node-exporter-2cpu.prom`) scaled to 192
//! CPUs as in `scrape` and `gzip` (283 families). Each iteration replaces the next group,
//! round robin, with the families of a previous push of the same body (reference counts, no
//! byte copies), as the second push cycle of the stress test does.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use bumpalo::Bump;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fixture::{build_stores, data, scale_cpus, CPUS, SHARDS};
use ringgate::config::Lifecycle;
use ringgate::grouping::GroupKey;
use ringgate::store::{Life, PushMode};

const GROUPS: usize = 2000;

fn bench(c: &mut Criterion) {
    let body = scale_cpus(&data("node-exporter-2cpu.prom"), CPUS);
    let mut stores = build_stores(&body, GROUPS);
    let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::from_secs(300) };
    let keys: Vec<GroupKey> =
        (0..GROUPS).map(|i| GroupKey::from_path(&format!("job/node_exporter/instance/node-{i:05}")).unwrap()).collect();
    // One rendering per group, as its pushes would bring.
    let bump = Bump::new();
    let rendered: Vec<_> =
        keys.iter().map(|k| ringgate::text::parse(body.as_bytes(), &k.injected(), &bump).unwrap()).collect();
    let mut group = c.benchmark_group("store_push");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("replace_node_exporter_group_of_2000", |b| {
        b.iter(|| {
            let g = i % GROUPS;
            let fams = rendered[g].clone();
            let key = keys[g].clone();
            stores[key.shard(SHARDS)]
                .push(key, black_box(fams), PushMode::Replace, 1.7e9, life, Instant::now())
                .unwrap();
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
