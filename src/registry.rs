//! The one piece of state shared by all shards: which TYPE each metric family has, and how
//! many groups hold it. It lets a push be checked against every other group in time
//! proportional to the push (one lookup per pushed family), not to the store.
//!
//! It also keeps family names apart that strict parsers would merge: a histogram or summary
//! `x` owns the sample names `x_bucket`, `x_sum` and `x_count`, so a family of one of those
//! names cannot be held beside it (Prometheus' parser would read its TYPE line as a second
//! TYPE for `x` and fail the whole scrape).
//!
//! A plain mutex is enough: it is held for one check-and-update of a push's families (a few
//! hundred hash lookups at most), never across an await, and never by a scrape.

use std::sync::Mutex;

use ahash::AHashMap;

use crate::expo::MetricType;

#[derive(Default)]
pub struct Registry {
    families: Mutex<AHashMap<Box<str>, (MetricType, u32)>>,
}

/// A pushed family whose TYPE differs from the same family held by other groups, or whose
/// name collides with a histogram's or summary's sample names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConflict {
    pub family: String,
    pub pushed: MetricType,
    /// The family it conflicts with: the same name, or the colliding one.
    pub other: String,
    pub held: MetricType,
    /// Groups holding `other` (0 when it is in the same push).
    pub holders: u32,
}

impl std::fmt::Display for TypeConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.holders == 0 {
            "this push holds".to_string()
        } else {
            format!("{} other group(s) hold", self.holders)
        };
        if self.family == self.other {
            write!(
                f,
                "family {:?} is pushed as {} but {who} it as {}",
                self.family,
                self.pushed.as_str(),
                self.held.as_str()
            )
        } else {
            write!(
                f,
                "family {:?} ({}) collides with the {} {:?} that {who}: its _bucket, _sum and _count series would share names",
                self.family,
                self.pushed.as_str(),
                self.held.as_str(),
                self.other
            )
        }
    }
}

const SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn has_series_suffixes(t: MetricType) -> bool {
    matches!(t, MetricType::Histogram | MetricType::Summary)
}

/// The families whose names collide with `name` of type `ty`: its own suffixed names when it
/// is a histogram or summary, and its base name when it carries one of those suffixes.
fn colliding(name: &str, ty: MetricType) -> impl Iterator<Item = (String, bool)> + '_ {
    // (other name, whether `other` must be a histogram/summary to collide)
    let own = has_series_suffixes(ty).then(|| SUFFIXES.iter().map(move |s| (format!("{name}{s}"), false)));
    let base = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)).map(|b| (b.to_string(), true));
    own.into_iter().flatten().chain(base)
}

impl Registry {
    /// Atomically checks `added` against everyone else and applies the change: `removed` are
    /// the families this group held that the push replaces (they stop counting), `added` the
    /// families it holds afterwards. On conflict nothing changes.
    pub fn replace(&self, removed: &[(&str, MetricType)], added: &[(&str, MetricType)]) -> Result<(), TypeConflict> {
        // Counts of this group's replaced families, and the pushed ones by name: lookups
        // instead of a scan of the other list per family (a push has hundreds).
        let mut own: AHashMap<&str, u32> = AHashMap::with_capacity(removed.len());
        for &(name, _) in removed {
            *own.entry(name).or_default() += 1;
        }
        let mut pushed: AHashMap<&str, MetricType> = AHashMap::with_capacity(added.len());
        for &(name, ty) in added {
            pushed.entry(name).or_insert(ty);
        }
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        // Holders of `name` other than this group's replaced families.
        let others = |map: &AHashMap<Box<str>, (MetricType, u32)>, name: &str| {
            map.get(name).and_then(|&(held, count)| {
                let own = own.get(name).copied().unwrap_or(0);
                (count > own).then_some((held, count - own))
            })
        };
        for &(name, ty) in added {
            if let Some((held, holders)) = others(&map, name) {
                if held != ty {
                    return Err(TypeConflict { family: name.into(), pushed: ty, other: name.into(), held, holders });
                }
            }
            for (other, needs_suffixed) in colliding(name, ty) {
                let conflict = |held: MetricType, holders| {
                    (!needs_suffixed || has_series_suffixes(held)).then(|| TypeConflict {
                        family: name.into(),
                        pushed: ty,
                        other: other.clone(),
                        held,
                        holders,
                    })
                };
                if let Some(c) = others(&map, &other).and_then(|(held, n)| conflict(held, n)) {
                    return Err(c);
                }
                if let Some(c) = pushed.get(other.as_str()).and_then(|&held| conflict(held, 0)) {
                    return Err(c);
                }
            }
        }
        // Added first, then removed: a family the group pushes again keeps its entry (no
        // removal and new key for each family of each push).
        for &(name, ty) in added {
            match map.get_mut(name) {
                Some(e) => {
                    e.0 = ty;
                    e.1 += 1;
                }
                None => {
                    map.insert(name.into(), (ty, 1));
                }
            }
        }
        for &(name, _) in removed {
            if let Some(e) = map.get_mut(name) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    map.remove(name);
                }
            }
        }
        Ok(())
    }

    /// Forgets every family (wipe).
    pub fn clear(&self) {
        self.families.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.families.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricType::*;

    #[test]
    fn conflicts_only_with_other_groups() {
        let r = Registry::default();
        r.replace(&[], &[("a", Gauge)]).unwrap();
        // The only holder may change its own type.
        r.replace(&[("a", Gauge)], &[("a", Counter)]).unwrap();
        r.replace(&[], &[("a", Counter)]).unwrap();
        let e = r.replace(&[], &[("a", Gauge)]).unwrap_err();
        assert_eq!(e.holders, 2);
        let e = r.replace(&[("a", Counter)], &[("a", Gauge)]).unwrap_err();
        assert_eq!(e.holders, 1);
        r.replace(&[("a", Counter)], &[]).unwrap();
        r.replace(&[("a", Counter)], &[("a", Gauge)]).unwrap();
        assert_eq!(r.len(), 1);
        r.replace(&[("a", Gauge)], &[]).unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn suffixed_names_collide_with_histograms_and_summaries() {
        let r = Registry::default();
        r.replace(&[], &[("h", Histogram)]).unwrap();
        let e = r.replace(&[], &[("h_count", Gauge)]).unwrap_err();
        assert_eq!((e.other.as_str(), e.holders), ("h", 1));
        assert!(e.to_string().contains("collides with the histogram \"h\""), "{e}");
        // A gauge named like a suffix of a gauge is fine.
        r.replace(&[], &[("g", Gauge), ("g_sum", Gauge)]).unwrap();
        // The other way round, and within one push.
        r.replace(&[], &[("s_sum", Gauge)]).unwrap();
        assert_eq!(r.replace(&[], &[("s", Summary)]).unwrap_err().other, "s_sum");
        let e = r.replace(&[], &[("x", Summary), ("x_sum", Untyped)]).unwrap_err();
        assert_eq!(e.holders, 0);
        // Replacing one's own colliding family is fine.
        r.replace(&[("s_sum", Gauge)], &[("s", Summary)]).unwrap();
    }
}

/// The scrapers seen recently, by id: who must receive clear-lifecycle data when no
/// `--clear.scrapers` list is configured. Also counts, per scraper, the scrapes carrying
/// clear groups whose acknowledgement has not reached the owners yet (see [`AckPending`]).
#[derive(Default)]
pub struct Scrapers {
    seen: Mutex<AHashMap<Box<str>, std::time::Instant>>,
    pending: Mutex<AHashMap<Box<str>, usize>>,
}

impl Scrapers {
    pub fn seen(&self, id: &str, now: std::time::Instant) {
        let mut m = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(id) {
            Some(t) => *t = now,
            None => {
                m.insert(id.into(), now);
            }
        }
    }

    /// Scrapers seen within `max_age` of `now`; older ones are forgotten.
    pub fn active(&self, now: std::time::Instant, max_age: std::time::Duration) -> Vec<Box<str>> {
        let mut m = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, t| now.saturating_duration_since(*t) <= max_age);
        m.keys().cloned().collect()
    }

    /// Scrapes by `id` whose clear groups are not acknowledged yet.
    pub fn pending(&self, id: &str) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied().unwrap_or(0)
    }

    /// Counts one more such scrape until the returned guard is dropped.
    pub fn begin_ack(self: &std::sync::Arc<Self>, id: &str) -> AckPending {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()).entry(id.into()).or_insert(0) += 1;
        AckPending { scrapers: self.clone(), id: id.into() }
    }
}

/// A scrape that carries clear groups, from its snapshot until its acknowledgement was
/// applied by every owner (or the scrape failed). The scraper's next scrape waits for it, so
/// a scraper that reads the whole response and scrapes again at once does not get the same
/// groups twice.
pub struct AckPending {
    scrapers: std::sync::Arc<Scrapers>,
    id: Box<str>,
}

impl Drop for AckPending {
    fn drop(&mut self) {
        let mut m = self.scrapers.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&*self.id) {
            *n -= 1;
            if *n == 0 {
                m.remove(&*self.id);
            }
        }
    }
}
