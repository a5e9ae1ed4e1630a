//! Lock-free latency histogram (log-linear buckets, ~1.5 % resolution) and error counters.
//!
//! Workers record into shared atomics, so there is no lock on the push path and the monitor
//! can compute a window's percentiles by diffing two snapshots.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB_BITS: u32 = 6; // 64 sub-buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
const MAX_EXP: u32 = 40; // 2^40 us ~ 12.7 days: far beyond any run
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

/// Histogram of durations in microseconds.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let e = e.min(MAX_EXP);
    let sub = (v >> (e - SUB_BITS)).min(2 * SUB - 1) - SUB;
    (SUB + (e - SUB_BITS) as u64 * SUB + sub) as usize
}

/// Lower bound and width of a bucket.
fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let e = (i - SUB) / SUB + SUB_BITS as u64;
    let sub = (i - SUB) % SUB;
    let shift = e - SUB_BITS as u64;
    ((SUB + sub) << shift, 1 << shift)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    pub fn record_us(&self, us: u64) {
        self.counts[index(us)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    pub fn record(&self, d: std::time::Duration) {
        self.record_us(d.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            total: self.total.load(Relaxed),
            sum_us: self.sum_us.load(Relaxed),
            max_us: self.max_us.load(Relaxed),
        }
    }
}

/// A frozen copy of a histogram; two snapshots can be subtracted to get a window.
#[derive(Clone, Debug)]
pub struct Snapshot {
    counts: Vec<u64>,
    pub total: u64,
    sum_us: u64,
    /// Exact maximum (for a window diff: the max of the later snapshot's window bucket).
    max_us: u64,
}

impl Snapshot {
    pub fn empty() -> Self {
        Snapshot { counts: vec![0; BUCKETS], total: 0, sum_us: 0, max_us: 0 }
    }

    /// Counts recorded after `earlier` was taken. The max is the upper edge of the highest
    /// non-empty bucket of the window (clamped to the overall max).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let counts: Vec<u64> = self.counts.iter().zip(&earlier.counts).map(|(a, b)| a.saturating_sub(*b)).collect();
        let max_us = counts
            .iter()
            .rposition(|&c| c > 0)
            .map(|i| {
                let (lo, w) = bucket_bounds(i);
                (lo + w - 1).min(self.max_us)
            })
            .unwrap_or(0);
        Snapshot {
            counts,
            total: self.total.saturating_sub(earlier.total),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
            max_us,
        }
    }

    /// Quantile in seconds (bucket midpoint, clamped to the max); None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bucket_bounds(i);
                let mid = lo as f64 + (w as f64 - 1.0) / 2.0;
                return Some(mid.min(self.max_us as f64) / 1e6);
            }
        }
        Some(self.max_us as f64 / 1e6)
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_s(&self) -> Option<f64> {
        (self.total > 0).then(|| self.max_us as f64 / 1e6)
    }

    pub fn mean_s(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum_us as f64 / self.total as f64 / 1e6)
    }

    pub fn to_json(&self) -> crate::json::Json {
        crate::json::Json::obj()
            .with("count", self.total)
            .with("p50", self.quantile(0.50))
            .with("p95", self.quantile(0.95))
            .with("p99", self.quantile(0.99))
            .with("max", self.max_s())
            .with("mean", self.mean_s())
    }
}

/// What went wrong with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client timeout expired while sending or waiting for the answer.
    Timeout,
    /// The client timeout expired before a pooled connection was free (never sent).
    TimeoutQueued,
    /// TCP connect failed (refused, unreachable...).
    Connect,
    /// Reset, broken pipe, early EOF, unparsable response.
    Io,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::TimeoutQueued => "timeout_queued",
            ErrorKind::Connect => "connect",
            ErrorKind::Io => "io",
        }
    }
}

/// Counters of failures by kind, plus HTTP status codes (index = code).
pub struct Errors {
    kinds: [AtomicU64; 4],
    status: Box<[AtomicU64]>,
    samples: std::sync::Mutex<Vec<String>>,
}

impl Default for Errors {
    fn default() -> Self {
        Self::new()
    }
}

impl Errors {
    pub fn new() -> Self {
        Errors {
            kinds: Default::default(),
            status: (0..600).map(|_| AtomicU64::new(0)).collect(),
            samples: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn kind(&self, k: ErrorKind, detail: &str) {
        self.kinds[k as usize].fetch_add(1, Relaxed);
        self.sample(format!("{}: {}", k.name(), detail));
    }

    pub fn status(&self, code: u16, body: &str) {
        self.status[(code as usize).min(599)].fetch_add(1, Relaxed);
        self.sample(format!("http {}: {}", code, body.trim()));
    }

    /// Keep the first few distinct messages so a report says *why* pushes failed.
    fn sample(&self, msg: String) {
        let mut s = self.samples.lock().unwrap();
        if s.len() < 8 && !s.iter().any(|m| m == &msg) {
            s.push(msg);
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.iter().map(|k| k.load(Relaxed)).sum::<u64>()
            + self.status.iter().map(|k| k.load(Relaxed)).sum::<u64>()
    }

    pub fn to_json(&self) -> crate::json::Json {
        use crate::json::Json;
        let mut j = Json::obj();
        for k in [ErrorKind::Timeout, ErrorKind::TimeoutQueued, ErrorKind::Connect, ErrorKind::Io] {
            j.push(k.name(), self.kinds[k as usize].load(Relaxed));
        }
        let mut http = Json::obj();
        for (code, c) in self.status.iter().enumerate() {
            let c = c.load(Relaxed);
            if c > 0 {
                http.push(&code.to_string(), c);
            }
        }
        j.push("http_status", http);
        let samples: Vec<Json> =
            self.samples.lock().unwrap().iter().map(|s| Json::Str(s.chars().take(300).collect())).collect();
        j.push("samples", samples);
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..200_000u64).chain([1 << 30, (1 << 39) + 12345]) {
            let i = index(v);
            assert!(i >= last || v >= 200_000);
            last = i;
            let (lo, w) = bucket_bounds(i);
            assert!(lo <= v && v < lo + w, "v={v} i={i} lo={lo} w={w}");
            assert!(w as f64 <= (v as f64 / 32.0).max(1.0));
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record_us(us * 1000); // 1 ms .. 1 s
        }
        let s = h.snapshot();
        let p50 = s.quantile(0.5).unwrap();
        let p99 = s.quantile(0.99).unwrap();
        assert!((p50 - 0.5).abs() < 0.02, "{p50}");
        assert!((p99 - 0.99).abs() < 0.03, "{p99}");
        assert_eq!(s.max_s(), Some(1.0));
        let before = h.snapshot();
        h.record_us(5_000_000);
        let w = h.snapshot().since(&before);
        assert_eq!(w.total, 1);
        assert!((w.quantile(0.99).unwrap() - 5.0).abs() < 0.1);
    }
}
