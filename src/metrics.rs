//! The gateway's own metrics, served in /metrics beside the pushed ones. Every name is here.
//!
//! Each shard counts in plain `Cell`s (no atomics: only its own thread touches them) and
//! renders its figures, labelled with `shard`, into its scrape snapshot; the scrape merges
//! them with the pushed families like any other.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::expo::{FamilyRenderer, MetricType, RenderedFamily, SampleRole};
use crate::store::{format_float, Removals};

/// Pushed families may not start with this.
pub const PREFIX: &str = "ringgate_";

pub const BUILD_INFO: &str = "ringgate_build_info";
pub const PUSHES: &str = "ringgate_pushes_total";
pub const DELETES: &str = "ringgate_deletes_total";
pub const SCRAPES: &str = "ringgate_scrapes_total";
pub const RECEIVED_BYTES: &str = "ringgate_received_bytes_total";
pub const SENT_BYTES: &str = "ringgate_sent_bytes_total";
pub const PUSH_DURATION: &str = "ringgate_push_duration_seconds";
pub const SCRAPE_DURATION: &str = "ringgate_scrape_duration_seconds";
pub const GROUPS: &str = "ringgate_groups";
pub const IN_FLIGHT_BYTES: &str = "ringgate_push_in_flight_bytes";
pub const BUDGET_WAITS: &str = "ringgate_push_budget_waits_total";
pub const STORED_BYTES: &str = "ringgate_stored_bytes";
pub const GZIP_SEGMENT_BYTES: &str = "ringgate_gzip_segment_bytes";
pub const HEAP_TRIMS: &str = "ringgate_heap_trims_total";
pub const HEAP_TRIM_SECONDS: &str = "ringgate_heap_trim_seconds_total";
pub const HEAP_TRIM_RETURNED: &str = "ringgate_heap_trim_returned_bytes_total";
pub const REMOVALS: &str = "ringgate_group_removals_total";
pub const PERSISTENCE_WRITES: &str = "ringgate_persistence_writes_total";
pub const CONNECTIONS_ACCEPTED: &str = "ringgate_connections_accepted_total";
pub const CONNECTION_STEERING: &str = "ringgate_connection_steering";
pub const BUFFER_POOL_BYTES: &str = "ringgate_buffer_pool_bytes";
pub const BUFFER_POOL_SHARED_BYTES: &str = "ringgate_buffer_pool_shared_bytes";

/// Process-wide heap trims (see `server::trim_after_scrape`): how many, the time they took in
/// microseconds, and the fall in RSS across them.
pub static TRIMS: AtomicU64 = AtomicU64::new(0);
pub static TRIM_MICROS: AtomicU64 = AtomicU64::new(0);
pub static TRIM_RETURNED: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Ok,
    Rejected,
    TooLarge,
    Unsupported,
    Busy,
}

const PUSH_OUTCOMES: [(PushOutcome, &str); 5] = [
    (PushOutcome::Ok, "ok"),
    (PushOutcome::Rejected, "rejected"),
    (PushOutcome::TooLarge, "too_large"),
    (PushOutcome::Unsupported, "unsupported"),
    (PushOutcome::Busy, "busy"),
];

impl PushOutcome {
    pub fn from_status(status: u16) -> PushOutcome {
        match status {
            200..=299 => PushOutcome::Ok,
            413 => PushOutcome::TooLarge,
            415 => PushOutcome::Unsupported,
            429 | 503 => PushOutcome::Busy,
            _ => PushOutcome::Rejected,
        }
    }
}

const PUSH_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
const SCRAPE_BUCKETS: [f64; 10] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    counts: [Cell<u64>; N],
    count: Cell<u64>,
    sum: Cell<f64>,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Histogram { bounds, counts: std::array::from_fn(|_| Cell::new(0)), count: Cell::new(0), sum: Cell::new(0.0) }
    }

    pub fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.set(c.get() + 1);
            }
        }
        self.count.set(self.count.get() + 1);
        self.sum.set(self.sum.get() + v);
    }
}

pub struct Stats {
    pushes: [Cell<u64>; 5],
    pub deletes: Cell<u64>,
    pub scrapes_ok: Cell<u64>,
    pub scrapes_failed: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub push_duration: Histogram<12>,
    pub scrape_duration: Histogram<10>,
    pub persist_ok: Cell<u64>,
    pub persist_failed: Cell<u64>,
    /// Body bytes held under `--push.max-in-flight` (set before rendering).
    pub in_flight_bytes: Cell<u64>,
    /// Pushes whose body waited for room under it.
    pub budget_waits: Cell<u64>,
    /// Connections accepted by this shard.
    pub accepted: Cell<u64>,
    /// This shard's listener asks for the connections of its CPU (see `steer`).
    pub steering: Cell<bool>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            pushes: Default::default(),
            deletes: Cell::new(0),
            scrapes_ok: Cell::new(0),
            scrapes_failed: Cell::new(0),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            push_duration: Histogram::new(PUSH_BUCKETS),
            scrape_duration: Histogram::new(SCRAPE_BUCKETS),
            persist_ok: Cell::new(0),
            in_flight_bytes: Cell::new(0),
            budget_waits: Cell::new(0),
            persist_failed: Cell::new(0),
            accepted: Cell::new(0),
            steering: Cell::new(false),
        }
    }
}

fn inc(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

/// One sample of a self-metric family: name suffix, labels beyond `shard`, value.
type Sample<'a> = (&'a str, &'a [(&'a str, &'a str)], String);
/// A single label (name, value).
type OneLabel<'a> = [(&'a str, &'a str); 1];

impl Stats {
    pub fn push(&self, outcome: PushOutcome) {
        let i = PUSH_OUTCOMES.iter().position(|(o, _)| *o == outcome).unwrap_or(1);
        inc(&self.pushes[i], 1);
    }

    pub fn received(&self, n: usize) {
        inc(&self.bytes_in, n as u64);
    }

    pub fn sent(&self, n: usize) {
        inc(&self.bytes_out, n as u64);
    }

    /// This shard's self-metric families, sorted by name.
    pub fn render(&self, shard: usize, groups: usize, stored: usize, removals: &Removals) -> Vec<Arc<RenderedFamily>> {
        let s = shard.to_string();
        let mut out = Vec::new();
        let mut fam = |name: &str, ty: MetricType, help: &str, samples: &[Sample<'_>]| {
            let mut r = FamilyRenderer::new(&[], 256);
            for (suffix, labels, value) in samples {
                let full = format!("{name}{suffix}");
                let mut ls: Vec<(&[u8], &[u8])> = vec![(b"shard", s.as_bytes())];
                ls.extend(labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                r.sample(full.as_bytes(), &mut ls, value.as_bytes(), SampleRole::Plain, 0).expect("valid self-metric");
            }
            out.push(Arc::new(r.finish(name.as_bytes(), ty, Some(help.as_bytes())).expect("unique series")));
        };
        if shard == 0 {
            fam(
                BUILD_INFO,
                MetricType::Gauge,
                "Build information of the ringgate binary.",
                &[("", &[("version", env!("CARGO_PKG_VERSION"))], "1".into())],
            );
        }
        let pushes: Vec<(&str, OneLabel<'_>, String)> = PUSH_OUTCOMES
            .iter()
            .zip(&self.pushes)
            .map(|((_, n), c)| ("", [("outcome", *n)], c.get().to_string()))
            .collect();
        let pushes: Vec<Sample<'_>> = pushes.iter().map(|(a, b, c)| (*a, &b[..], c.clone())).collect();
        fam(PUSHES, MetricType::Counter, "Pushes (PUT and POST) received, by outcome.", &pushes);
        fam(DELETES, MetricType::Counter, "Group deletions received.", &[("", &[], self.deletes.get().to_string())]);
        fam(
            SCRAPES,
            MetricType::Counter,
            "Scrapes of /metrics served by this shard, by outcome (failed: not written whole).",
            &[
                ("", &[("outcome", "ok")], self.scrapes_ok.get().to_string()),
                ("", &[("outcome", "failed")], self.scrapes_failed.get().to_string()),
            ],
        );
        fam(
            RECEIVED_BYTES,
            MetricType::Counter,
            "Request body bytes received.",
            &[("", &[], self.bytes_in.get().to_string())],
        );
        fam(SENT_BYTES, MetricType::Counter, "Scrape body bytes sent.", &[("", &[], self.bytes_out.get().to_string())]);
        let hist = |bounds: &[f64], counts: &[Cell<u64>], count: u64, sum: f64| {
            let mut v: Vec<(String, String)> =
                bounds.iter().zip(counts).map(|(b, c)| (format_float(*b), c.get().to_string())).collect();
            v.push(("+Inf".into(), count.to_string()));
            (v, count.to_string(), format_float(sum))
        };
        for (name, help, (buckets, count, sum)) in [
            (
                PUSH_DURATION,
                "Time from a push's last body byte to its answer.",
                hist(
                    &self.push_duration.bounds,
                    &self.push_duration.counts,
                    self.push_duration.count.get(),
                    self.push_duration.sum.get(),
                ),
            ),
            (
                SCRAPE_DURATION,
                "Time to assemble and write a scrape.",
                hist(
                    &self.scrape_duration.bounds,
                    &self.scrape_duration.counts,
                    self.scrape_duration.count.get(),
                    self.scrape_duration.sum.get(),
                ),
            ),
        ] {
            let les: Vec<[(&str, &str); 1]> = buckets.iter().map(|(le, _)| [("le", le.as_str())]).collect();
            let mut samples: Vec<Sample<'_>> =
                buckets.iter().zip(&les).map(|((_, c), l)| ("_bucket", &l[..], c.clone())).collect();
            samples.push(("_sum", &[], sum));
            samples.push(("_count", &[], count));
            let mut r = FamilyRenderer::new(&[], 1024);
            for (suffix, labels, value) in &samples {
                let full = format!("{name}{suffix}");
                let mut ls: Vec<(&[u8], &[u8])> = vec![(b"shard", s.as_bytes())];
                ls.extend(labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                let role = if *suffix == "_bucket" { SampleRole::Bucket } else { SampleRole::Plain };
                r.sample(full.as_bytes(), &mut ls, value.as_bytes(), role, 0).expect("valid histogram");
            }
            out.push(Arc::new(
                r.finish(name.as_bytes(), MetricType::Histogram, Some(help.as_bytes())).expect("unique"),
            ));
        }
        let mut fam = |name: &str, ty: MetricType, help: &str, samples: &[(&[(&str, &str)], String)]| {
            let mut r = FamilyRenderer::new(&[], 256);
            for (labels, value) in samples {
                let mut ls: Vec<(&[u8], &[u8])> = vec![(b"shard", s.as_bytes())];
                ls.extend(labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                r.sample(name.as_bytes(), &mut ls, value.as_bytes(), SampleRole::Plain, 0).expect("valid self-metric");
            }
            out.push(Arc::new(r.finish(name.as_bytes(), ty, Some(help.as_bytes())).expect("unique series")));
        };
        fam(GROUPS, MetricType::Gauge, "Groups held by this shard.", &[(&[], groups.to_string())]);
        fam(
            IN_FLIGHT_BYTES,
            MetricType::Gauge,
            "Request body bytes read or being read and not yet applied (of --push.max-in-flight).",
            &[(&[], self.in_flight_bytes.get().to_string())],
        );
        fam(
            BUDGET_WAITS,
            MetricType::Counter,
            "Pushes whose body waited, unread, for room under --push.max-in-flight.",
            &[(&[], self.budget_waits.get().to_string())],
        );
        fam(
            STORED_BYTES,
            MetricType::Gauge,
            "Rendered exposition bytes held by this shard.",
            &[(&[], stored.to_string())],
        );
        fam(
            REMOVALS,
            MetricType::Counter,
            "Groups removed without a DELETE, by reason.",
            &[
                (&[("reason", "ttl_expired")], removals.ttl_expired.to_string()),
                (&[("reason", "clear_scraped")], removals.clear_scraped.to_string()),
                (&[("reason", "clear_unscraped")], removals.clear_unscraped.to_string()),
                (&[("reason", "wiped")], removals.wiped.to_string()),
            ],
        );
        fam(
            PERSISTENCE_WRITES,
            MetricType::Counter,
            "Snapshot writes of this shard's groups, by outcome.",
            &[
                (&[("outcome", "ok")], self.persist_ok.get().to_string()),
                (&[("outcome", "failed")], self.persist_failed.get().to_string()),
            ],
        );
        fam(
            CONNECTIONS_ACCEPTED,
            MetricType::Counter,
            "Connections accepted by this shard.",
            &[(&[], self.accepted.get().to_string())],
        );
        fam(
            CONNECTION_STEERING,
            MetricType::Gauge,
            "1 while this shard's listener takes the new connections of the CPU it is pinned to (--http.connection-steering).",
            &[(&[], (self.steering.get() as u8).to_string())],
        );
        // Read on the shard's own thread: these pools are its own.
        let (group_pool, shared_pool) = crate::expo::pooled_bytes();
        fam(
            BUFFER_POOL_BYTES,
            MetricType::Gauge,
            "Bytes of freed buffers this shard keeps for the next pushes: request bodies (up to --push.max-in-flight) and rendered groups.",
            &[
                (&[("pool", "group")], group_pool.to_string()),
                (&[("pool", "request_body")], crate::http::Body::pooled_bytes().to_string()),
            ],
        );
        if shard == 0 {
            // Process-wide (not counted per shard): shown once, without `shard`.
            let global = |name: &str, mtype: MetricType, help: &str, value: String| {
                Arc::new(RenderedFamily {
                    name: name.into(),
                    mtype,
                    help: Some(help.into()),
                    samples: format!("{name} {value}\n").into_bytes().into(),
                    series: 1,
                })
            };
            let deflated = crate::expo::DEFLATED_BYTES.load(Ordering::Relaxed);
            out.push(global(
                GZIP_SEGMENT_BYTES,
                MetricType::Gauge,
                "Bytes of deflate segments held: compressed groups (in place of their text) and segments gzip scrapes made for the others.",
                deflated.to_string(),
            ));
            out.push(global(
                BUFFER_POOL_SHARED_BYTES,
                MetricType::Gauge,
                "Bytes of freed group buffers kept in the pool all threads share.",
                shared_pool.to_string(),
            ));
            out.push(global(
                HEAP_TRIMS,
                MetricType::Counter,
                "Times free heap pages were returned to the kernel after a large scrape.",
                TRIMS.load(Ordering::Relaxed).to_string(),
            ));
            out.push(global(
                HEAP_TRIM_SECONDS,
                MetricType::Counter,
                "Time spent returning free heap pages to the kernel.",
                format_float(TRIM_MICROS.load(Ordering::Relaxed) as f64 / 1e6),
            ));
            out.push(global(
                HEAP_TRIM_RETURNED,
                MetricType::Counter,
                "Fall in resident memory across the heap trims.",
                TRIM_RETURNED.load(Ordering::Relaxed).to_string(),
            ));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
