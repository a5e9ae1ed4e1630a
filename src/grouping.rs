//! Grouping keys: decoding `/metrics/job/<JOB>{/<LABEL>/<VALUE>}` into a canonical, sorted
//! label set, and the pure function that maps a key to its owning shard.
//!
//! The canonical bytes of a key are `name \0 value \0` for every label, sorted by name, with
//! `job` treated like any other label. They identify the group in the store, order groups in
//! the scrape output and feed the shard hash, so the same group always lands on the same
//! shard, whatever spelling (`@base64`, trailing slash, label order) the client used.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::expo::{escape_label_value, is_label_name};

/// A decoded, validated grouping key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    /// Canonical bytes; see the module docs.
    /// Shared: the store keeps a copy of the key for each family of the group (its index).
    canonical: Arc<[u8]>,
}

/// Why a grouping-key path was refused. Rendered into the 400 response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    MissingJob,
    EmptyJob,
    OddSegments,
    BadLabelName(String),
    ReservedLabelName(String),
    DuplicateLabel(String),
    BadBase64(String),
    BadPercentEncoding(String),
    NotUtf8(String),
    /// A NUL byte in a value: it separates the labels in the canonical bytes.
    NulByte(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::MissingJob => write!(f, "path must start with /metrics/job/<JOB>"),
            PathError::EmptyJob => write!(f, "job name is required and must not be empty"),
            PathError::OddSegments => {
                write!(f, "grouping key must be /<LABEL>/<VALUE> pairs: a label has no value")
            }
            PathError::BadLabelName(n) => write!(f, "invalid label name {n:?} in grouping key"),
            PathError::ReservedLabelName(n) => {
                write!(f, "label name {n:?} in grouping key is reserved (starts with __)")
            }
            PathError::DuplicateLabel(n) => write!(f, "label {n:?} appears twice in grouping key"),
            PathError::BadBase64(s) => write!(f, "invalid URL-safe base64 value {s:?} in grouping key"),
            PathError::BadPercentEncoding(s) => write!(f, "invalid percent-encoding in {s:?}"),
            PathError::NotUtf8(n) => write!(f, "value of label {n:?} in grouping key is not valid UTF-8"),
            PathError::NulByte(n) => write!(f, "value of label {n:?} in grouping key contains a NUL byte"),
        }
    }
}

impl GroupKey {
    /// Decodes the part of the path after `/metrics/` (it must start with `job/`).
    pub fn from_path(rest: &str) -> Result<GroupKey, PathError> {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segs = rest.split('/');
        // Borrowed from the path unless percent- or base64-encoded: a push's key costs one
        // allocation (its canonical bytes), besides this list.
        let mut labels: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(4);
        while let Some(name) = segs.next() {
            let Some(value) = segs.next() else {
                if labels.is_empty() {
                    return Err(if name == "job" { PathError::EmptyJob } else { PathError::MissingJob });
                }
                return Err(PathError::OddSegments);
            };
            let name = percent_decode(name)?;
            let (name, b64) = match name.strip_suffix("@base64") {
                Some(n) => (Cow::Owned(n.to_string()), true),
                None => (name, false),
            };
            if labels.is_empty() && name != "job" {
                return Err(PathError::MissingJob);
            }
            let value = if b64 {
                let raw = base64_url_decode(value).ok_or_else(|| PathError::BadBase64(value.into()))?;
                Cow::Owned(String::from_utf8(raw).map_err(|_| PathError::NotUtf8(name.to_string()))?)
            } else {
                percent_decode(value)?
            };
            if !is_label_name(name.as_bytes()) {
                return Err(PathError::BadLabelName(name.into()));
            }
            if name.starts_with("__") {
                return Err(PathError::ReservedLabelName(name.into()));
            }
            // The canonical bytes separate names and values with NUL: a NUL in a value would
            // make `job/a%00x%00b` the same group as `job/a/x/b`.
            if value.contains('\0') {
                return Err(PathError::NulByte(name.into()));
            }
            if name == "job" && value.is_empty() {
                return Err(PathError::EmptyJob);
            }
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(PathError::DuplicateLabel(name.into()));
            }
            labels.push((name, value));
        }
        if labels.is_empty() {
            return Err(PathError::MissingJob);
        }
        Ok(GroupKey::from_labels(labels))
    }

    /// Builds a key from already validated labels (restored snapshots, tests).
    pub fn from_labels<N: AsRef<str> + Ord, V: AsRef<str> + Ord>(mut labels: Vec<(N, V)>) -> GroupKey {
        labels.sort();
        let len = labels.iter().map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2).sum();
        // Collected from an iterator of known length: one allocation, where building a Vec
        // and converting it would be two.
        let mut canonical: Arc<[u8]> = std::iter::repeat(0).take(len).collect();
        let out = Arc::get_mut(&mut canonical).expect("a new Arc is unique");
        let mut at = 0;
        for (n, v) in &labels {
            for part in [n.as_ref().as_bytes(), v.as_ref().as_bytes()] {
                out[at..at + part.len()].copy_from_slice(part);
                at += part.len() + 1; // and the NUL, already there
            }
        }
        GroupKey { canonical }
    }

    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// Rebuilds a key from its canonical bytes (snapshot restore). `None` when malformed.
    pub fn from_canonical(bytes: &[u8]) -> Option<GroupKey> {
        let key = GroupKey { canonical: bytes.into() };
        let mut n = 0;
        let mut has_job = false;
        let mut iter = bytes.split(|&b| b == 0);
        while let Some(name) = iter.next() {
            if name.is_empty() && iter.clone().next().is_none() {
                break;
            }
            let value = iter.next()?;
            if !is_label_name(name) || std::str::from_utf8(value).is_err() {
                return None;
            }
            has_job |= name == b"job";
            n += 1;
        }
        (n > 0 && has_job && bytes.last() == Some(&0)).then_some(key)
    }

    /// The labels in canonical (sorted) order, values unescaped.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.canonical.split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = parts.next()?;
            let value = parts.next()?;
            if name.is_empty() {
                return None;
            }
            // Both were validated as UTF-8 when the key was built.
            Some((std::str::from_utf8(name).ok()?, std::str::from_utf8(value).ok()?))
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The labels as they are injected into rendered samples: sorted by name, values escaped
    /// for the exposition format, and `instance=""` marked as a default when the URL has no
    /// `instance` (a body `instance` label then wins; URL labels always win).
    pub fn injected(&self) -> Vec<InjectedLabel<'_>> {
        let mut out: Vec<InjectedLabel<'_>> = self
            .labels()
            .map(|(n, v)| InjectedLabel {
                name: n.as_bytes(),
                value: escape_label_value(v.as_bytes()),
                default_only: false,
            })
            .collect();
        if !out.iter().any(|l| l.name == b"instance") {
            out.push(InjectedLabel { name: b"instance", value: Cow::Borrowed(b""), default_only: true });
            out.sort_by(|a, b| a.name.cmp(b.name));
        }
        out
    }

    /// The shard that owns this group.
    pub fn shard(&self, shards: usize) -> usize {
        shard_for(&self.canonical, shards)
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One grouping label as injected into samples, borrowed from its key (a value is copied only
/// when it needs escaping).
#[derive(Debug, Clone)]
pub struct InjectedLabel<'k> {
    pub name: &'k [u8],
    /// Escaped for the exposition format.
    pub value: Cow<'k, [u8]>,
    /// True for the `instance=""` added when the URL names no instance: a body label wins.
    pub default_only: bool,
}

/// The owning shard of a canonical key: ahash with fixed seeds, so the mapping is the same in
/// every process of one build.
pub fn shard_for(canonical: &[u8], shards: usize) -> usize {
    let state = ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    );
    (state.hash_one(canonical) % shards.max(1) as u64) as usize
}

fn percent_decode(s: &str) -> Result<Cow<'_, str>, PathError> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(PathError::BadPercentEncoding(s.into())),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| PathError::NotUtf8(s.into()))
}

/// URL-safe base64 with optional padding; `=` alone is the empty value.
fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover sextet cannot encode a byte.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> Result<Vec<(String, String)>, PathError> {
        GroupKey::from_path(p).map(|k| k.labels().map(|(a, b)| (a.into(), b.into())).collect())
    }

    #[test]
    fn decodes_plain_and_base64() {
        assert_eq!(key("job/a").unwrap(), vec![("job".into(), "a".into())]);
        assert_eq!(key("job/a/").unwrap(), vec![("job".into(), "a".into())]);
        assert_eq!(
            key("job/a/instance@base64/Zm9vL2Jhcg/x@base64/=").unwrap(),
            vec![("instance".into(), "foo/bar".into()), ("job".into(), "a".into()), ("x".into(), "".into())]
        );
        assert_eq!(key("job@base64/Zm9vL2Jhcg==").unwrap(), vec![("job".into(), "foo/bar".into())]);
        assert_eq!(key("job/a%20b").unwrap(), vec![("job".into(), "a b".into())]);
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(key("job/"), Err(PathError::EmptyJob));
        assert_eq!(key("job/a/b"), Err(PathError::OddSegments));
        assert_eq!(key("foo/a"), Err(PathError::MissingJob));
        assert_eq!(key("job/a/__x/1"), Err(PathError::ReservedLabelName("__x".into())));
        assert_eq!(key("job/a/1x/1"), Err(PathError::BadLabelName("1x".into())));
        assert_eq!(key("job/a/x/1/x/2"), Err(PathError::DuplicateLabel("x".into())));
        assert!(matches!(key("job@base64/!!"), Err(PathError::BadBase64(_))));
        assert_eq!(key("job@base64/="), Err(PathError::EmptyJob));
        // Found by the grouping fuzz target: NUL would alias another key's canonical bytes.
        assert_eq!(key("job/a%00x%00b"), Err(PathError::NulByte("job".into())));
        assert_eq!(key("job/a/x@base64/YQBi"), Err(PathError::NulByte("x".into())));
    }

    #[test]
    fn spelling_does_not_change_the_key_or_shard() {
        let a = GroupKey::from_path("job/j/instance/i/zone/z").unwrap();
        let b = GroupKey::from_path("job@base64/ag/zone/z/instance/i/").unwrap();
        assert_eq!(a, b);
        for n in 1..8 {
            assert_eq!(a.shard(n), b.shard(n));
            assert!(a.shard(n) < n);
        }
        assert_eq!(GroupKey::from_canonical(a.canonical()), Some(a));
    }

    #[test]
    fn canonical_bytes_and_injected_labels() {
        let k = GroupKey::from_path("job/j/zone/a%22b/instance@base64/bGluZQpicmVhaw").unwrap();
        assert_eq!(k.canonical(), b"instance\0line\nbreak\0job\0j\0zone\0a\"b\0");
        let from_owned = GroupKey::from_labels(vec![
            ("zone".to_string(), "a\"b".to_string()),
            ("job".to_string(), "j".to_string()),
            ("instance".to_string(), "line\nbreak".to_string()),
        ]);
        assert_eq!(from_owned, k);
        let inj = k.injected();
        let got: Vec<(&[u8], &[u8], bool)> = inj.iter().map(|l| (l.name, &*l.value, l.default_only)).collect();
        assert_eq!(
            got,
            vec![
                (&b"instance"[..], &b"line\\nbreak"[..], false),
                (&b"job"[..], &b"j"[..], false),
                (&b"zone"[..], &b"a\\\"b"[..], false)
            ]
        );
        // Plain values are borrowed from the key, escaped ones copied.
        assert!(matches!(inj[1].value, Cow::Borrowed(_)) && matches!(inj[2].value, Cow::Owned(_)));
        let no_instance = GroupKey::from_path("job/j").unwrap();
        let inj = no_instance.injected();
        let got: Vec<(&[u8], &[u8], bool)> = inj.iter().map(|l| (l.name, &*l.value, l.default_only)).collect();
        assert_eq!(got, vec![(&b"instance"[..], &b""[..], true), (&b"job"[..], &b"j"[..], false)]);
    }

    #[test]
    fn shard_function_is_stable_and_spreads() {
        let k = GroupKey::from_path("job/node/instance/n1").unwrap();
        assert_eq!(k.shard(1), 0);
        let first = k.shard(4);
        assert_eq!(k.shard(4), first);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[GroupKey::from_path(&format!("job/node/instance/n{i}")).unwrap().shard(4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
