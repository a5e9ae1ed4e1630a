//! One shard's groups. Owned by exactly one executor thread: no lock, only `&mut self`.
//!
//! Two views of the same `Arc`ed rendered families are kept in step:
//! - `groups`: grouping key -> the group's families and push times (push, delete, APIs);
//! - `index`: family name -> grouping key -> rendered family (scrape order: families sorted
//!   by name, groups sorted by key within a family).
//!
//! A scrape takes a [`ShardSnapshot`] (reference counts, no byte copies) between two pushes,
//! so it sees every group either wholly before or wholly after any change.

use std::collections::BTreeMap;
use std::sync::Arc;

use ahash::AHashMap;

use crate::expo::{FamilyRenderer, MetricType, RenderedFamily, SampleRole};
use crate::grouping::GroupKey;
use crate::registry::{Registry, TypeConflict};

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
const PUSH_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";

/// Families a client may not push: the gateway writes them itself.
pub fn is_reserved_family(name: &str) -> bool {
    name == PUSH_TIME || name == PUSH_FAILURE_TIME
}

pub struct Group {
    pub key: GroupKey,
    pub families: BTreeMap<Box<str>, Arc<RenderedFamily>>,
    pub push_time: f64,
    pub failure_time: f64,
    /// Rendered bytes of `families` (the two push-time gauges not included).
    pub bytes: usize,
}

/// What a scrape needs from one shard: its families in name order, each with its groups'
/// rendered chunks in key order.
#[derive(Default)]
pub struct ShardSnapshot {
    pub families: Vec<Vec<Arc<RenderedFamily>>>,
}

impl ShardSnapshot {
    pub fn bytes(&self) -> usize {
        self.families.iter().flatten().map(|f| f.samples.len()).sum()
    }
}

pub struct Store {
    groups: AHashMap<GroupKey, Group>,
    index: BTreeMap<Box<str>, BTreeMap<GroupKey, Arc<RenderedFamily>>>,
    bytes: usize,
    registry: Arc<Registry>,
}

/// How a push changes a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// PUT: the pushed families become the whole group.
    Replace,
    /// POST: only the families named in the push are replaced.
    Merge,
}

impl Store {
    pub fn new(registry: Arc<Registry>) -> Store {
        Store { groups: AHashMap::new(), index: BTreeMap::new(), bytes: 0, registry }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, key: &GroupKey) -> bool {
        self.groups.contains_key(key)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Applies a push. On a type conflict nothing but the failure time changes.
    pub fn push(
        &mut self,
        key: GroupKey,
        families: Vec<RenderedFamily>,
        mode: PushMode,
        now: f64,
    ) -> Result<(), TypeConflict> {
        let old = self.groups.get(&key);
        let removed: Vec<(Box<str>, MetricType)> = match (old, mode) {
            (None, _) => Vec::new(),
            (Some(g), PushMode::Replace) => g.families.values().map(|f| (f.name.clone(), f.mtype)).collect(),
            (Some(g), PushMode::Merge) => {
                families.iter().filter_map(|f| g.families.get(&f.name).map(|o| (o.name.clone(), o.mtype))).collect()
            }
        };
        let removed_refs: Vec<(&str, MetricType)> = removed.iter().map(|(n, t)| (&**n, *t)).collect();
        let added: Vec<(&str, MetricType)> = families.iter().map(|f| (&*f.name, f.mtype)).collect();
        if let Err(e) = self.registry.replace(&removed_refs, &added) {
            self.record_failure(&key, now);
            return Err(e);
        }
        drop(added);
        drop(removed_refs);
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            key: key.clone(),
            families: BTreeMap::new(),
            push_time: 0.0,
            failure_time: 0.0,
            bytes: 0,
        });
        for (name, _) in &removed {
            if let Some(f) = group.families.remove(name) {
                group.bytes -= f.samples.len();
                self.bytes -= f.samples.len();
                unindex(&mut self.index, name, &key);
            }
        }
        for f in families {
            let f = Arc::new(f);
            group.bytes += f.samples.len();
            self.bytes += f.samples.len();
            self.index.entry(f.name.clone()).or_default().insert(key.clone(), f.clone());
            if let Some(old) = group.families.insert(f.name.clone(), f) {
                // A body naming one family twice is refused by the parsers; keep counts right anyway.
                group.bytes -= old.samples.len();
                self.bytes -= old.samples.len();
            }
        }
        group.push_time = now;
        self.render_times(&key);
        Ok(())
    }

    /// Records a failed push on an existing group (a missing group is not created).
    pub fn record_failure(&mut self, key: &GroupKey, now: f64) {
        if let Some(g) = self.groups.get_mut(key) {
            g.failure_time = now;
            self.render_times(key);
        }
    }

    /// Removes a group; `false` when there was none.
    pub fn delete(&mut self, key: &GroupKey) -> bool {
        let Some(g) = self.groups.remove(key) else { return false };
        let removed: Vec<(&str, MetricType)> = g.families.values().map(|f| (&*f.name, f.mtype)).collect();
        // Removing never conflicts.
        let _ = self.registry.replace(&removed, &[]);
        for name in g.families.keys() {
            unindex(&mut self.index, name, key);
        }
        unindex(&mut self.index, PUSH_TIME, key);
        unindex(&mut self.index, PUSH_FAILURE_TIME, key);
        self.bytes -= g.bytes;
        true
    }

    /// Removes every group of this shard.
    pub fn wipe(&mut self) -> usize {
        let keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        for k in &keys {
            self.delete(k);
        }
        keys.len()
    }

    pub fn snapshot(&self) -> ShardSnapshot {
        ShardSnapshot { families: self.index.values().map(|groups| groups.values().cloned().collect()).collect() }
    }

    fn render_times(&mut self, key: &GroupKey) {
        let Some(g) = self.groups.get(key) else { return };
        let injected = key.injected();
        for (name, help, value) in
            [(PUSH_TIME, PUSH_TIME_HELP, g.push_time), (PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, g.failure_time)]
        {
            let mut r = FamilyRenderer::new(&injected, 128);
            let v = format_float(value);
            r.sample(name.as_bytes(), &mut [], v.as_bytes(), SampleRole::Plain, 0)
                .expect("gauge without labels renders");
            let f = r.finish(name.as_bytes(), MetricType::Gauge, Some(help.as_bytes())).expect("one series");
            self.index.entry(name.into()).or_default().insert(key.clone(), Arc::new(f));
        }
    }
}

fn unindex(index: &mut BTreeMap<Box<str>, BTreeMap<GroupKey, Arc<RenderedFamily>>>, name: &str, key: &GroupKey) {
    if let Some(groups) = index.get_mut(name) {
        groups.remove(key);
        if groups.is_empty() {
            index.remove(name);
        }
    }
}

/// Formats a float as the exposition format reads it back exactly.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}
