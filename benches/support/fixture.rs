//! Shared by benches/scrape.rs and benches/gzip.rs: a store of many node-exporter groups,
//! built through the public push path (`text::parse`, then `Store::push` on the shard the key
//! picks, two shards sharing one `Registry`, as on the 2-core machine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bumpalo::Bump;
use ringgate::config::Lifecycle;
use ringgate::grouping::GroupKey;
use ringgate::registry::Registry;
use ringgate::store::{Life, PushMode, Store};

pub const SHARDS: usize = 2;
pub const CPUS: usize = 192;

pub fn data(file: &str) -> String {
    let path = format!("{}/../shared/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The capture with each per-CPU family's `cpu="0"` and `cpu="1"` series replicated for
/// `cpus` CPUs (even CPUs from cpu 0's lines, odd ones from cpu 1's, as the load generator does).
pub fn scale_cpus(body: &str, cpus: usize) -> String {
    let mut out = String::with_capacity(body.len() * 4);
    let mut block: Vec<&str> = Vec::new();
    let flush = |out: &mut String, block: &mut Vec<&str>| {
        for cpu in 0..cpus {
            let from = if cpu % 2 == 0 { "cpu=\"0\"" } else { "cpu=\"1\"" };
            for line in block.iter().filter(|l| l.contains(from)) {
                out.push_str(&line.replace(from, &format!("cpu=\"{cpu}\"")));
                out.push('\n');
            }
        }
        block.clear();
    };
    for line in body.lines() {
        if line.contains("cpu=\"0\"") || line.contains("cpu=\"1\"") {
            block.push(line);
        } else {
            flush(&mut out, &mut block);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut out, &mut block);
    out
}

/// `groups` groups of `body`, pushed as the server would, over `SHARDS` stores.
pub fn build_stores(body: &str, groups: usize) -> Vec<Store> {
    let registry = Arc::new(Registry::default());
    let mut stores: Vec<Store> = (0..SHARDS).map(|_| Store::new(registry.clone(), Duration::from_secs(3600))).collect();
    let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::from_secs(300) };
    let mut bump = Bump::new();
    for i in 0..groups {
        let key = GroupKey::from_path(&format!("job/node_exporter/instance/node-{i:05}")).unwrap();
        let fams = ringgate::text::parse(body.as_bytes(), &key.injected(), &bump).unwrap();
        let shard = key.shard(SHARDS);
        stores[shard].push(key, fams, PushMode::Replace, 1.7e9, life, Instant::now()).unwrap();
        bump.reset();
    }
    stores
}
