//! The in-process CPU of one small push: what the small-push rate test (`ringgate-loadgen
//! --mode small`) asks of a shard besides the socket calls.
//!
//! Each iteration takes the load generator's ~100-byte body (one gauge with a `worker` label)
//! for the next of 10,000 groups `job/loadgen_small/instance/gNNNNN`, round robin, and does
//! what `api::push` does with it: the grouping key from the path, `text::parse` with the
//! group's labels injected into this shard's arena, then `Store::push` (replace) into the
//! store that owns the key. Every group is already there, as in the steady state of the test:
//! each push replaces a group pushed 10,000 pushes ago. Two stores share one `Registry`, as
//! the two shards of the 2-core machine do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bumpalo::Bump;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringgate::config::Lifecycle;
use ringgate::grouping::GroupKey;
use ringgate::registry::Registry;
use ringgate::store::{Life, PushMode, Store};

const GROUPS: usize = 10_000;
const SHARDS: usize = 2;

fn body(worker: usize, seq: u64) -> String {
    format!(
        "# HELP loadgen_small_value A small push.\n# TYPE loadgen_small_value gauge\nloadgen_small_value{{worker=\"{worker:03}\"}} {}\n",
        seq % 1_000_000_000
    )
}

fn bench(c: &mut Criterion) {
    let registry = Arc::new(Registry::default());
    let mut stores: Vec<Store> = (0..SHARDS).map(|_| Store::new(registry.clone(), Duration::from_secs(3600))).collect();
    let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::from_secs(300) };
    let paths: Vec<String> = (0..GROUPS).map(|g| format!("job/loadgen_small/instance/g{g:05}")).collect();
    let bodies: Vec<String> = (0..64).map(|w| body(w, 1_234_567 + w as u64)).collect();
    let mut bump = Bump::new();
    let mut push = |i: usize, now: f64| {
        let key = GroupKey::from_path(&paths[i % GROUPS]).unwrap();
        let fams = ringgate::text::parse(bodies[i % 64].as_bytes(), &key.injected(), &bump).unwrap();
        let shard = key.shard(SHARDS);
        stores[shard].push(key, fams, PushMode::Replace, now, life, Instant::now()).unwrap();
        bump.reset();
    };
    for i in 0..GROUPS {
        push(i, 1.7e9);
    }
    let mut group = c.benchmark_group("small_push");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("parse_and_replace_of_10000_groups", |b| {
        b.iter(|| {
            push(black_box(i), 1.7e9 + i as f64 * 1e-5);
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
