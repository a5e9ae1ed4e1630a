//! One shard's groups. Owned by exactly one executor thread: no lock, only `&mut self`.
//!
//! What it keeps:
//! - `groups`: grouping key -> the group's families (by name), push times and lifecycle;
//! - `order`: every grouping key, sorted: a scrape lists each family's groups in this order;
//! - `deadlines`: the ordered expiry index of ttl groups and of clear groups nobody took.
//!
//! There is no index by family name: a push only swaps its group's family map, and a scrape
//! gathers each family's chunks by walking the groups in key order ([`Store::snapshot`]).
//!
//! A scrape takes a [`ShardSnapshot`] (reference counts, no byte copies) between two pushes,
//! so it sees every group either wholly before or wholly after any change.
//!
//! Clear-after-scrape: every push gives a group a new generation. A scrape lists the clear
//! groups (key and generation) it was given; only once its response has been written whole
//! does the scraper acknowledge them ([`Store::ack`]). A group is dropped when every required
//! scraper acknowledged its current generation; a push that landed meanwhile has a newer
//! generation, so its data stays for the next scrape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;

use crate::config::Lifecycle;
use crate::expo::{intern, FamilyRenderer, MetricType, RenderedFamily, SampleRole};
use crate::grouping::GroupKey;
use crate::registry::{Registry, TypeConflict};

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
const PUSH_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_TIME_HELP: &str = "Last Unix time when changing this group in the Pushgateway failed.";

/// Families a client may not push: the gateway writes them itself.
pub fn is_reserved_family(name: &str) -> bool {
    name == PUSH_TIME || name == PUSH_FAILURE_TIME || name.starts_with(crate::metrics::PREFIX)
}

pub struct Group {
    pub key: GroupKey,
    pub families: BTreeMap<Arc<str>, Arc<RenderedFamily>>,
    pub push_time: f64,
    pub failure_time: f64,
    /// Rendered bytes of `families` (the two push-time gauges not included).
    pub bytes: usize,
    pub lifecycle: Lifecycle,
    /// The ttl of a ttl group.
    pub ttl: Duration,
    /// When a ttl group expires, or a clear group nobody took is dropped.
    pub deadline: Option<Instant>,
    /// Changes on every push; acknowledgements name the generation they saw.
    pub generation: u64,
    /// Scrapers that received the current generation of a clear group.
    pub taken_by: Vec<Box<str>>,
    /// The label set of the two push-time gauges, `{...}` as rendered (the grouping labels,
    /// `instance=""` added when absent); empty until first rendered.
    time_labels: Box<[u8]>,
    /// The group's rendered `push_time_seconds` and `push_failure_time_seconds`, kept apart
    /// from `families` (which holds what was pushed); a scrape lists them with the rest
    /// ([`Store::snapshot`]), and a push rewrites only its push time.
    times: [Option<Arc<RenderedFamily>>; 2],
}

/// A push's families as the group will hold them: for a replace, the group's new family map
/// (sorted and built in one go; a body naming one family twice is refused by the parsers, were
/// one to the last would win); for a merge, the families to put in.
enum Incoming {
    Replace(BTreeMap<Arc<str>, Arc<RenderedFamily>>),
    Merge(Vec<Arc<RenderedFamily>>),
}

impl Incoming {
    fn iter(&self) -> impl Iterator<Item = &Arc<RenderedFamily>> {
        let (replace, merge) = match self {
            Incoming::Replace(m) => (Some(m.values()), None),
            Incoming::Merge(v) => (None, Some(v.iter())),
        };
        replace.into_iter().flatten().chain(merge.into_iter().flatten())
    }
}

/// Which of a group's push-time gauges changed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Times {
    Push,
    Failure,
    Both,
}

/// What a scrape needs from one shard: its families in name order, each with its groups'
/// rendered chunks in key order, and the clear groups it will acknowledge once written.
#[derive(Default)]
pub struct ShardSnapshot {
    pub families: Vec<Vec<Arc<RenderedFamily>>>,
    pub clear: Vec<(GroupKey, u64)>,
}

/// How a push changes a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// PUT: the pushed families become the whole group.
    Replace,
    /// POST: only the families named in the push are replaced.
    Merge,
}

/// How long a pushed group lives, as the push asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Life {
    pub lifecycle: Lifecycle,
    pub ttl: Duration,
}

/// Why groups left the store without a DELETE.
#[derive(Default, Clone, Copy, Debug)]
pub struct Removals {
    pub ttl_expired: u64,
    pub clear_scraped: u64,
    pub clear_unscraped: u64,
    pub wiped: u64,
}

/// Why a push was not applied.
#[derive(Debug, Clone, PartialEq)]
pub enum PushError {
    Conflict(TypeConflict),
    /// This shard holds its share of `--store.max-groups`.
    TooManyGroups {
        limit: usize,
    },
    /// This shard's share of `--store.max-bytes` would be exceeded.
    StoreFull {
        limit: u64,
    },
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Conflict(c) => c.fmt(f),
            PushError::TooManyGroups { limit } => write!(
                f,
                "the shard owning this group already holds its {limit} groups (raise --store.max-groups)"
            ),
            PushError::StoreFull { limit } => write!(
                f,
                "the shard owning this group would hold more than its {limit} bytes of metrics (raise --store.max-bytes)"
            ),
        }
    }
}

/// A shard's share of the store-wide limits.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub groups: usize,
    pub bytes: u64,
}

impl Budget {
    pub const UNLIMITED: Budget = Budget { groups: usize::MAX, bytes: u64::MAX };
}

pub struct Store {
    budget: Budget,
    groups: AHashMap<GroupKey, Group>,
    /// Every group's key in order: the order of each family's groups in a scrape. Changes only
    /// when a group comes or goes.
    order: BTreeSet<GroupKey>,
    /// The push-time gauges' names and HELP texts, one shared copy each.
    time_names: [(Arc<str>, Arc<str>); 2],
    deadlines: BTreeSet<(Instant, GroupKey)>,
    bytes: usize,
    next_generation: u64,
    /// Clear groups some scraper already took: scrapes must filter while this is non-zero.
    taken: usize,
    clear_max_age: Duration,
    registry: Arc<Registry>,
    pub removals: Removals,
    /// Bumped on every change; persistence writes only when it moved.
    pub version: u64,
}

impl Store {
    pub fn new(registry: Arc<Registry>, clear_max_age: Duration) -> Store {
        Store::with_budget(registry, clear_max_age, Budget::UNLIMITED)
    }

    pub fn with_budget(registry: Arc<Registry>, clear_max_age: Duration, budget: Budget) -> Store {
        Store {
            budget,
            groups: AHashMap::new(),
            order: BTreeSet::new(),
            time_names: [
                (intern(PUSH_TIME), intern(PUSH_TIME_HELP)),
                (intern(PUSH_FAILURE_TIME), intern(PUSH_FAILURE_TIME_HELP)),
            ],
            deadlines: BTreeSet::new(),
            bytes: 0,
            next_generation: 1,
            taken: 0,
            clear_max_age,
            registry,
            removals: Removals::default(),
            version: 0,
        }
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

    pub fn get(&self, key: &GroupKey) -> Option<&Group> {
        self.groups.get(key)
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
        life: Life,
        clock: Instant,
    ) -> Result<(), PushError> {
        let old = self.groups.get(&key);
        if old.is_none() && self.groups.len() >= self.budget.groups {
            self.record_failure(&key, now);
            return Err(PushError::TooManyGroups { limit: self.budget.groups });
        }
        let incoming: usize = families.iter().map(|f| f.samples.len()).sum();
        let outgoing: usize = match (old, mode) {
            (None, _) => 0,
            (Some(g), PushMode::Replace) => g.bytes,
            (Some(g), PushMode::Merge) => {
                families.iter().filter_map(|f| g.families.get(&f.name)).map(|o| o.samples.len()).sum()
            }
        };
        if (self.bytes - outgoing + incoming) as u64 > self.budget.bytes {
            self.record_failure(&key, now);
            return Err(PushError::StoreFull { limit: self.budget.bytes });
        }
        let incoming = match mode {
            PushMode::Replace => Incoming::Replace(
                families
                    .into_iter()
                    .map(|f| {
                        let f = Arc::new(f);
                        (f.name.clone(), f)
                    })
                    .collect(),
            ),
            PushMode::Merge => Incoming::Merge(families.into_iter().map(Arc::new).collect()),
        };
        // The registry changes only when the group's set of (family, type) does: a group pushed
        // again with the families it holds, the usual case, skips it (and its lock).
        let unchanged = match (old, &incoming) {
            (None, _) => incoming.iter().next().is_none(),
            (Some(g), Incoming::Replace(new)) => {
                new.len() == g.families.len()
                    && new.iter().zip(&g.families).all(|((n, f), (o, of))| n == o && f.mtype == of.mtype)
            }
            (Some(g), Incoming::Merge(new)) => {
                new.iter().all(|f| g.families.get(&f.name).is_some_and(|o| o.mtype == f.mtype))
            }
        };
        if !unchanged {
            let removed: Vec<(&str, MetricType)> = match (old, &incoming) {
                (None, _) => Vec::new(),
                (Some(g), Incoming::Replace(_)) => g.families.values().map(|f| (&*f.name, f.mtype)).collect(),
                (Some(g), Incoming::Merge(new)) => {
                    new.iter().filter_map(|f| g.families.get(&f.name).map(|o| (&*o.name, o.mtype))).collect()
                }
            };
            let added: Vec<(&str, MetricType)> = incoming.iter().map(|f| (&*f.name, f.mtype)).collect();
            if let Err(e) = self.registry.replace(&removed, &added) {
                self.record_failure(&key, now);
                return Err(PushError::Conflict(e));
            }
        }
        self.version += 1;
        let generation = self.next_generation;
        self.next_generation += 1;
        let group = match self.groups.get_mut(&key) {
            Some(g) => g,
            None => {
                self.order.insert(key.clone());
                self.groups.entry(key.clone()).or_insert_with(|| Group {
                    key: key.clone(),
                    families: BTreeMap::new(),
                    push_time: 0.0,
                    failure_time: 0.0,
                    bytes: 0,
                    lifecycle: life.lifecycle,
                    ttl: life.ttl,
                    deadline: None,
                    generation,
                    taken_by: Vec::new(),
                    time_labels: Box::default(),
                    times: [None, None],
                })
            }
        };
        // Names and HELP texts come shared already (`expo::intern`, when rendered).
        match incoming {
            Incoming::Replace(new) => {
                let bytes: usize = new.values().map(|f| f.samples.len()).sum();
                self.bytes = self.bytes - group.bytes + bytes;
                group.bytes = bytes;
                group.families = new;
            }
            Incoming::Merge(new) => {
                for f in new {
                    group.bytes += f.samples.len();
                    self.bytes += f.samples.len();
                    if let Some(old) = group.families.insert(f.name.clone(), f) {
                        group.bytes -= old.samples.len();
                        self.bytes -= old.samples.len();
                    }
                }
            }
        }
        group.push_time = now;
        group.generation = generation;
        if !group.taken_by.is_empty() {
            group.taken_by.clear();
            self.taken -= 1;
        }
        group.lifecycle = life.lifecycle;
        group.ttl = life.ttl;
        let deadline = match life.lifecycle {
            Lifecycle::Persistent => None,
            Lifecycle::Ttl => Some(clock + life.ttl),
            Lifecycle::Clear => Some(clock + self.clear_max_age),
        };
        if let Some(old) = std::mem::replace(&mut group.deadline, deadline) {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, key.clone()));
        }
        render_times(group, &self.time_names, Times::Push);
        Ok(())
    }

    /// Records a failed push on an existing group (a missing group is not created).
    pub fn record_failure(&mut self, key: &GroupKey, now: f64) {
        if let Some(g) = self.groups.get_mut(key) {
            g.failure_time = now;
            self.version += 1;
            render_times(g, &self.time_names, Times::Failure);
        }
    }

    /// Removes a group; `false` when there was none.
    pub fn delete(&mut self, key: &GroupKey) -> bool {
        let Some(g) = self.groups.remove(key) else { return false };
        let removed: Vec<(&str, MetricType)> = g.families.values().map(|f| (&*f.name, f.mtype)).collect();
        // Removing never conflicts.
        let _ = self.registry.replace(&removed, &[]);
        self.order.remove(key);
        if let Some(d) = g.deadline {
            self.deadlines.remove(&(d, key.clone()));
        }
        if !g.taken_by.is_empty() {
            self.taken -= 1;
        }
        self.bytes -= g.bytes;
        self.version += 1;
        true
    }

    /// Removes every group of this shard at once: one registry update, maps dropped whole.
    pub fn wipe(&mut self) -> usize {
        let n = self.groups.len();
        let removed: Vec<(&str, MetricType)> =
            self.groups.values().flat_map(|g| g.families.values().map(|f| (&*f.name, f.mtype))).collect();
        let _ = self.registry.replace(&removed, &[]);
        drop(removed);
        self.groups = AHashMap::new();
        self.order = BTreeSet::new();
        self.deadlines = BTreeSet::new();
        self.bytes = 0;
        self.taken = 0;
        self.removals.wiped += n as u64;
        self.version += 1;
        n
    }

    /// Drops the groups whose deadline passed; returns when the next one is due.
    pub fn expire(&mut self, clock: Instant) -> Option<Instant> {
        while let Some((d, key)) = self.deadlines.first().cloned() {
            if d > clock {
                return Some(d);
            }
            let clear = self.groups.get(&key).is_some_and(|g| g.lifecycle == Lifecycle::Clear);
            self.delete(&key);
            if clear {
                self.removals.clear_unscraped += 1;
            } else {
                self.removals.ttl_expired += 1;
            }
        }
        None
    }

    /// A snapshot for `scraper`: clear groups it already took are left out.
    pub fn snapshot(&self, scraper: &str) -> ShardSnapshot {
        let taken = |g: &Group| g.taken_by.iter().any(|s| &**s == scraper);
        // Each family's chunks, gathered group by group in key order into one list per name.
        // Groups pushed by the same kind of client hold the same families, so the list the
        // previous group's i-th family went to is tried first; a name not seen there is
        // looked up by hash.
        let mut lists: Vec<Vec<Arc<RenderedFamily>>> = Vec::new();
        let mut by_name: AHashMap<&str, usize> = AHashMap::new();
        let mut hint: Vec<(&str, usize)> = Vec::new();
        let mut times = [Vec::with_capacity(self.order.len()), Vec::with_capacity(self.order.len())];
        for g in self.order.iter().filter_map(|k| self.groups.get(k)) {
            if self.taken > 0 && taken(g) {
                continue;
            }
            for (i, f) in g.families.values().enumerate() {
                let list = match hint.get(i) {
                    Some(&(name, list)) if name == &*f.name => list,
                    _ => {
                        let list = *by_name.entry(&f.name).or_insert_with(|| {
                            lists.push(Vec::new());
                            lists.len() - 1
                        });
                        match hint.get_mut(i) {
                            Some(h) => *h = (&f.name, list),
                            None => hint.push((&f.name, list)),
                        }
                        list
                    }
                };
                lists[list].push(f.clone());
            }
            for (out, f) in times.iter_mut().zip(&g.times) {
                out.extend(f.iter().cloned());
            }
        }
        let mut families = lists;
        families.extend(times.into_iter().filter(|t| !t.is_empty()));
        families.sort_unstable_by(|a, b| a[0].name.cmp(&b[0].name));
        let clear = self
            .groups
            .values()
            .filter(|g| g.lifecycle == Lifecycle::Clear && !taken(g))
            .map(|g| (g.key.clone(), g.generation))
            .collect();
        ShardSnapshot { families, clear }
    }

    /// `scraper` received these clear groups whole. A group goes once `done` says every
    /// required scraper has it; a newer generation (pushed meanwhile) is kept.
    pub fn ack(&mut self, scraper: &str, items: &[(GroupKey, u64)], done: impl Fn(&[Box<str>]) -> bool) {
        for (key, generation) in items {
            let Some(g) = self.groups.get_mut(key) else { continue };
            if g.generation != *generation || g.lifecycle != Lifecycle::Clear {
                continue;
            }
            if !g.taken_by.iter().any(|s| &**s == scraper) {
                if g.taken_by.is_empty() {
                    self.taken += 1;
                }
                g.taken_by.push(scraper.into());
            }
            if done(&g.taken_by) {
                self.delete(key);
                self.removals.clear_scraped += 1;
            }
        }
    }

    /// Puts back a group read from a snapshot file. `deadline` is already converted to this
    /// process' clock. Refused (false) when its types conflict with groups already restored.
    pub fn restore(&mut self, r: RestoredGroup, deadline: Option<Instant>) -> bool {
        let added: Vec<(&str, MetricType)> = r.families.iter().map(|f| (&*f.name, f.mtype)).collect();
        if self.groups.contains_key(&r.key) || self.registry.replace(&[], &added).is_err() {
            return false;
        }
        drop(added);
        let key = r.key.clone();
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut group = Group {
            key: key.clone(),
            families: BTreeMap::new(),
            push_time: r.push_time,
            failure_time: r.failure_time,
            bytes: 0,
            lifecycle: r.lifecycle,
            ttl: r.ttl,
            deadline,
            generation,
            taken_by: r.taken_by,
            time_labels: Box::default(),
            times: [None, None],
        };
        for mut f in r.families {
            f.name = intern(&f.name);
            f.help = f.help.map(|h| intern(&h));
            let f = Arc::new(f);
            group.bytes += f.samples.len();
            group.families.insert(f.name.clone(), f);
        }
        self.bytes += group.bytes;
        if !group.taken_by.is_empty() {
            self.taken += 1;
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, key.clone()));
        }
        render_times(&mut group, &self.time_names, Times::Both);
        self.order.insert(key.clone());
        self.groups.insert(key, group);
        true
    }
}

/// A group as persisted: everything but the in-process clock.
pub struct RestoredGroup {
    pub key: GroupKey,
    pub families: Vec<RenderedFamily>,
    pub push_time: f64,
    pub failure_time: f64,
    pub lifecycle: Lifecycle,
    pub ttl: Duration,
    /// Unix time at which the group expires, if it does.
    pub expires_at: Option<f64>,
    pub taken_by: Vec<Box<str>>,
}

/// Renders a group's `push_time_seconds` and `push_failure_time_seconds`, those `which` names
/// and any not rendered yet, after a push, a failed one or a restore. This runs on every push,
/// so the label set is rendered once per group (through [`FamilyRenderer`], as any pushed
/// sample) and reused.
fn render_times(g: &mut Group, names: &[(Arc<str>, Arc<str>); 2], which: Times) {
    if g.time_labels.is_empty() {
        let injected = g.key.injected();
        let mut r = FamilyRenderer::new(&injected, 128);
        r.sample(PUSH_TIME.as_bytes(), &mut [], b"0", SampleRole::Plain, 0).expect("gauge without labels renders");
        let f = r.finish(PUSH_TIME.as_bytes(), MetricType::Gauge, None).expect("one series");
        // `push_time_seconds{...} 0\n`
        g.time_labels = f.samples.plain()[PUSH_TIME.len()..f.samples.len() - 3].into();
    }
    let wanted = [which != Times::Failure, which != Times::Push];
    for (i, ((name, help), value)) in names.iter().zip([g.push_time, g.failure_time]).enumerate() {
        if !wanted[i] && g.times[i].is_some() {
            continue;
        }
        let mut v = FloatText::default();
        let v = v.format(value);
        let mut line = Vec::with_capacity(name.len() + g.time_labels.len() + v.len() + 2);
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(&g.time_labels);
        line.push(b' ');
        line.extend_from_slice(v);
        line.push(b'\n');
        g.times[i] = Some(Arc::new(RenderedFamily {
            name: name.clone(),
            mtype: MetricType::Gauge,
            help: Some(help.clone()),
            samples: line.into(),
            series: 1,
        }));
    }
}

/// Formats a float as the exposition format reads it back exactly.
pub fn format_float(v: f64) -> String {
    let mut t = FloatText::default();
    String::from_utf8_lossy(t.format(v)).into_owned()
}

/// Room to format one float as [`format_float`] does, without a heap allocation. Rust's
/// shortest round-trip form never uses an exponent: the longest is the smallest negative subnormal, 326 bytes.
struct FloatText {
    buf: [u8; 400],
    len: usize,
}

impl Default for FloatText {
    fn default() -> FloatText {
        FloatText { buf: [0; 400], len: 0 }
    }
}

impl std::fmt::Write for FloatText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl FloatText {
    fn format(&mut self, v: f64) -> &[u8] {
        use std::fmt::Write;
        self.len = 0;
        if v.is_nan() {
            return b"NaN";
        } else if v.is_infinite() {
            return if v > 0.0 { b"+Inf" } else { b"-Inf" };
        }
        write!(self, "{v}").expect("an f64 fits");
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, help: &str, line: &str) -> RenderedFamily {
        RenderedFamily {
            name: name.into(),
            mtype: MetricType::Gauge,
            help: Some(help.into()),
            samples: line.as_bytes().to_vec().into(),
            series: 1,
        }
    }

    #[test]
    fn groups_share_one_copy_of_each_family_name_and_help_text() {
        let mut s = Store::new(Arc::new(Registry::default()), Duration::from_secs(60));
        let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::ZERO };
        let keys: Vec<GroupKey> =
            (0..3).map(|i| GroupKey::from_path(&format!("job/j/instance/n{i}")).unwrap()).collect();
        for (i, k) in keys.iter().enumerate() {
            // Rendered as a push is: the renderer hands out the shared strings.
            let body = format!("# HELP temp Temperature.\n# TYPE temp gauge\ntemp {i}\n");
            let fams = crate::text::parse(body.as_bytes(), &k.injected(), &bumpalo::Bump::new()).unwrap();
            s.push(k.clone(), fams, PushMode::Replace, 1.0, life, Instant::now()).unwrap();
        }
        let fams: Vec<&Arc<RenderedFamily>> = keys.iter().map(|k| &s.get(k).unwrap().families["temp"]).collect();
        for f in &fams[1..] {
            assert!(Arc::ptr_eq(&f.name, &fams[0].name), "one copy of the name");
            assert!(Arc::ptr_eq(f.help.as_ref().unwrap(), fams[0].help.as_ref().unwrap()), "one copy of the HELP");
        }
        // The group's map holds the same shared name as its key.
        let (held, _) = s.get(&keys[0]).unwrap().families.get_key_value("temp").unwrap();
        assert!(Arc::ptr_eq(held, &fams[0].name));
        // Bytes and contents are those pushed.
        assert_eq!(&*fams[2].samples.plain(), b"temp{instance=\"n2\",job=\"j\"} 2\n");
        // Strings nobody holds any more are let go at the next sweep.
        for k in &keys {
            assert!(s.delete(k));
        }
        assert!(crate::expo::interned("Temperature.", false));
        assert!(!crate::expo::interned("temp", true) && !crate::expo::interned("Temperature.", false));
    }

    /// What a scrape of `s` lists, push-time gauges aside: (family, bytes) in scrape order.
    fn listed(s: &Store) -> Vec<(String, String)> {
        let snap = s.snapshot("");
        let all = snap.families.iter().flatten().filter(|f| !f.name.starts_with("push_"));
        all.map(|f| (f.name.to_string(), String::from_utf8_lossy(&f.samples.plain()).into_owned())).collect()
    }

    #[test]
    fn replace_and_merge_keep_the_scrape_and_byte_counts_in_step_with_the_groups() {
        let mut s = Store::new(Arc::new(Registry::default()), Duration::from_secs(60));
        let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::ZERO };
        let (a, b) = (GroupKey::from_path("job/a").unwrap(), GroupKey::from_path("job/b").unwrap());
        let push = |s: &mut Store, k: &GroupKey, fams: &[(&str, &str)], mode| {
            let fams = fams.iter().map(|(n, line)| family(n, "h", line)).collect();
            s.push(k.clone(), fams, mode, 1.0, life, Instant::now()).unwrap();
        };
        let pair = |n: &str, l: &str| (n.to_string(), l.to_string());
        push(&mut s, &a, &[("x", "x 1\n"), ("y", "y 1\n")], PushMode::Replace);
        push(&mut s, &b, &[("y", "y 9\n")], PushMode::Replace);
        // Replace: y is pushed again (its slot replaced), x is gone, z is new.
        push(&mut s, &a, &[("y", "y 22\n"), ("z", "z 3\n")], PushMode::Replace);
        // (Within a family, groups in key order: a before b.)
        assert_eq!(listed(&s), [pair("y", "y 22\n"), pair("y", "y 9\n"), pair("z", "z 3\n")]);
        // Merge: z replaced, w added, y kept.
        push(&mut s, &a, &[("z", "z 4444\n"), ("w", "w 5\n")], PushMode::Merge);
        assert_eq!(listed(&s), [pair("w", "w 5\n"), pair("y", "y 22\n"), pair("y", "y 9\n"), pair("z", "z 4444\n")]);
        let group_bytes: Vec<usize> = [&a, &b].iter().map(|k| s.get(k).unwrap().bytes).collect();
        assert_eq!(group_bytes, ["w 5\ny 22\nz 4444\n".len(), "y 9\n".len()]);
        assert_eq!(s.bytes(), group_bytes.iter().sum::<usize>());
        // The registry counts each family once per holding group.
        assert_eq!(s.registry.len(), 3);
        assert!(s.delete(&a) && s.delete(&b));
        assert_eq!((s.bytes(), s.registry.len()), (0, 0));
        assert!(s.snapshot("").families.is_empty());
        assert!(s.order.is_empty());
    }

    /// A scrape's view of one family: each group's bytes, in the order the snapshot lists them.
    fn scraped(snap: &ShardSnapshot, name: &str) -> Vec<String> {
        let fam = snap.families.iter().find(|f| &*f[0].name == name);
        fam.map(|f| f.iter().map(|c| String::from_utf8_lossy(&c.samples.plain()).into_owned()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn push_times_are_scraped_in_key_order_and_a_push_rewrites_only_its_own() {
        let registry = Arc::new(Registry::default());
        let mut s = Store::new(registry.clone(), Duration::from_secs(60));
        let life = Life { lifecycle: Lifecycle::Persistent, ttl: Duration::ZERO };
        let jobs = ["b", "a", "c"];
        let keys: Vec<GroupKey> = jobs.iter().map(|j| GroupKey::from_path(&format!("job/{j}")).unwrap()).collect();
        for (i, k) in keys.iter().enumerate() {
            let fams = vec![family("x", "h", &format!("x{{job=\"{}\"}} 1\n", jobs[i]))];
            s.push(k.clone(), fams, PushMode::Replace, 100.0 + i as f64, life, Instant::now()).unwrap();
        }
        let snap = s.snapshot("");
        let names: Vec<&str> = snap.families.iter().map(|f| &*f[0].name).collect();
        assert_eq!(names, ["push_failure_time_seconds", "push_time_seconds", "x"]);
        assert_eq!(
            scraped(&snap, PUSH_TIME),
            [
                "push_time_seconds{instance=\"\",job=\"a\"} 101\n",
                "push_time_seconds{instance=\"\",job=\"b\"} 100\n",
                "push_time_seconds{instance=\"\",job=\"c\"} 102\n"
            ]
        );
        assert_eq!(scraped(&snap, PUSH_FAILURE_TIME)[0], "push_failure_time_seconds{instance=\"\",job=\"a\"} 0\n");
        let (a, b) = (&keys[1], &keys[0]);
        let held = |s: &Store, k: &GroupKey| s.get(k).unwrap().times.clone().map(Option::unwrap);
        let before = [held(&s, a), held(&s, b)];
        // A push rewrites its group's push time; its failure time and every other group's stay
        // the very same rendered family.
        s.push(a.clone(), vec![family("x", "h", "x{job=\"a\"} 2\n")], PushMode::Replace, 200.5, life, Instant::now())
            .unwrap();
        let after = [held(&s, a), held(&s, b)];
        assert!(!Arc::ptr_eq(&after[0][0], &before[0][0]) && Arc::ptr_eq(&after[0][1], &before[0][1]));
        assert!(Arc::ptr_eq(&after[1][0], &before[1][0]) && Arc::ptr_eq(&after[1][1], &before[1][1]));
        // A failed push rewrites only the failure time.
        s.record_failure(a, 300.25);
        let failed = held(&s, a);
        assert!(Arc::ptr_eq(&failed[0], &after[0][0]) && !Arc::ptr_eq(&failed[1], &after[0][1]));
        let snap = s.snapshot("");
        assert_eq!(scraped(&snap, PUSH_TIME)[0], "push_time_seconds{instance=\"\",job=\"a\"} 200.5\n");
        assert_eq!(scraped(&snap, PUSH_FAILURE_TIME)[0], "push_failure_time_seconds{instance=\"\",job=\"a\"} 300.25\n");
        assert_eq!(scraped(&snap, "x"), ["x{job=\"a\"} 2\n", "x{job=\"b\"} 1\n", "x{job=\"c\"} 1\n"]);
        // The same family set again does not touch the registry; a new set does, and a
        // conflicting one is refused with the group left as it was.
        assert_eq!(registry.len(), 1);
        s.push(b.clone(), vec![family("y", "h", "y 1\n")], PushMode::Replace, 400.0, life, Instant::now()).unwrap();
        assert_eq!(registry.len(), 2);
        let mut counter = family("x", "h", "x 1\n");
        counter.mtype = MetricType::Counter;
        let e = s.push(b.clone(), vec![counter], PushMode::Replace, 500.0, life, Instant::now()).unwrap_err();
        assert!(matches!(e, PushError::Conflict(_)), "{e:?}");
        assert_eq!(scraped(&s.snapshot(""), "y"), ["y 1\n"]);
        assert_eq!(s.get(b).unwrap().failure_time, 500.0);
        // A deleted group leaves the push-time families too.
        for k in &keys {
            assert!(s.delete(k));
        }
        assert!(s.snapshot("").families.is_empty());
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn floats_format_without_the_heap_as_they_did_with_it() {
        for v in [
            0.0,
            -0.0,
            1.5,
            1795358491.814976,
            1e21,
            1e-7,
            f64::MAX,
            f64::MIN,
            5e-324,
            -5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let want = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
            } else {
                format!("{v}")
            };
            assert_eq!(format_float(v), want);
        }
    }
}
