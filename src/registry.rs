//! The one piece of state shared by all shards: which TYPE each metric family has, and how
//! many groups hold it. It lets a push be checked against every other group in time
//! proportional to the push (one lookup per pushed family), not to the store.
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

/// A pushed family whose TYPE differs from the same family held by other groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConflict {
    pub family: String,
    pub pushed: MetricType,
    pub held: MetricType,
    pub holders: u32,
}

impl std::fmt::Display for TypeConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "family {:?} is pushed as {} but {} other group(s) hold it as {}",
            self.family,
            self.pushed.as_str(),
            self.holders,
            self.held.as_str()
        )
    }
}

impl Registry {
    /// Atomically checks `added` against everyone else and applies the change: `removed` are
    /// the families this group held that the push replaces (they stop counting), `added` the
    /// families it holds afterwards. On conflict nothing changes.
    pub fn replace(&self, removed: &[(&str, MetricType)], added: &[(&str, MetricType)]) -> Result<(), TypeConflict> {
        let mut map = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for &(name, ty) in added {
            if let Some(&(held, count)) = map.get(name) {
                if held != ty {
                    let own = removed.iter().filter(|(n, _)| *n == name).count() as u32;
                    if count > own {
                        return Err(TypeConflict { family: name.into(), pushed: ty, held, holders: count - own });
                    }
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
        for &(name, ty) in added {
            map.entry(name.into())
                .and_modify(|e| {
                    e.0 = ty;
                    e.1 += 1;
                })
                .or_insert((ty, 1));
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
}

/// The scrapers seen recently, by id: who must receive clear-lifecycle data when no
/// `--clear.scrapers` list is configured.
#[derive(Default)]
pub struct Scrapers {
    seen: Mutex<AHashMap<Box<str>, std::time::Instant>>,
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
}
