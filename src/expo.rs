//! The exposition model shared by every body format: metric types, name rules, escaping, and
//! the [`FamilyRenderer`] that turns parsed samples into the bytes a scrape serves.
//!
//! Rendering happens once, at push time: every sample line gets the grouping labels merged in
//! (URL labels win over body labels, `instance=""` is added when nobody names an instance),
//! labels sorted by name. A scrape then only copies these bytes.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::grouping::InjectedLabel;
use crate::gzip::{self, Segments};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    pub fn parse(s: &[u8]) -> Option<MetricType> {
        Some(match s {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"summary" => MetricType::Summary,
            b"untyped" => MetricType::Untyped,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<MetricType> {
        [MetricType::Counter, MetricType::Gauge, MetricType::Histogram, MetricType::Summary, MetricType::Untyped]
            .get(c as usize)
            .copied()
    }
}

/// A family of one push, rendered: what the store keeps per (group, family).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedFamily {
    /// Shared with every other group's family of this name (the store interns it).
    pub name: Arc<str>,
    pub mtype: MetricType,
    /// HELP text, escaped as in the exposition format (`\\` and `\n`); `None` when absent.
    /// Shared like `name`.
    pub help: Option<Arc<str>>,
    /// Sample lines, each ending in `\n`.
    pub samples: Chunk,
    pub series: u32,
}

/// Rendered bytes: one family's range of a buffer that may hold the other families of the
/// same group too (see [`pack`]). Reads as `[u8]`.
#[derive(Clone)]
pub struct Chunk {
    buf: Arc<Packed>,
    /// This chunk's range of `buf.bytes`, kept here (not only in `buf.ranges`) so that
    /// reading a chunk, which a scrape does for every group and family, touches one heap
    /// block less.
    start: usize,
    end: usize,
    /// Index of this chunk's range in `buf.ranges` (its deflate segment).
    seg: u32,
}

/// Where a chunk's plain bytes are ([`Chunk::source`]).
pub enum Source<'a> {
    Stored(&'a [u8]),
    /// A deflate segment and the length of the plain bytes it holds.
    Deflated(&'a [u8], usize),
}

/// Bytes of gzip segments held by the store right now (see [`Chunk::deflated`]).
pub static DEFLATED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// One buffer of rendered families and, once a gzip scrape asked for them, the same ranges
/// as deflate segments. A compressed group ([`compress`]) keeps the segments only: `bytes` is
/// empty and `compressed` set.
struct Packed {
    bytes: Vec<u8>,
    compressed: bool,
    ranges: Box<[(usize, usize)]>,
    /// Shared so that a gzip scrape can hold a group's segments without its plain bytes
    /// (see `scrape::Assembled::keep_deflated_only`).
    deflated: OnceLock<Arc<Segments>>,
}

impl Drop for Packed {
    fn drop(&mut self) {
        if let Some(s) = self.deflated.get() {
            DEFLATED_BYTES.fetch_sub(s.data.len(), Ordering::Relaxed);
        }
        give_back(std::mem::take(&mut self.bytes));
    }
}

// Rendered buffers of replaced groups, kept for the next pushes to render into. A group's
// buffer is hundreds of KB, mapped on its own (see `sys::tune_allocator`); without reuse,
// every push cycle unmaps each group's old buffer and maps a new one whose every page faults
// and is zeroed as the renderer first writes it. A push cycle replaces groups of the same
// sizes, so the sizes match.
//
// A shard thread keeps some itself (no lock). A push is rendered on the shard that read it
// but replaces its group on the shard that owns the group, and a scrape lets go of the groups
// it held on its own thread, so buffers also pass through one pool shared by every thread:
// what a thread lets go of beyond its own pool, and what a shard takes when its own has
// nothing that fits. Both are off (0 bytes) until [`enable_buffer_reuse`].
thread_local! {
    static REUSE: std::cell::RefCell<crate::sys::BufPool> =
        const { std::cell::RefCell::new(crate::sys::BufPool::new(0)) };
}

static SHARED_REUSE: std::sync::Mutex<crate::sys::BufPool> = std::sync::Mutex::new(crate::sys::BufPool::new(0));

/// Hands out one shared copy of each family name and HELP text on this thread: a thousand
/// nodes push the same few hundred families, and one allocation per group and family for each
/// string cost about a tenth of the stored exposition. The renderer takes its names from here
/// as it ends each family, so a push allocates no string for a family seen before; the store's
/// groups hold at most one copy per shard thread. Strings nobody else holds any more are
/// dropped whenever the set has doubled since the last sweep.
#[derive(Default)]
struct Interner {
    set: ahash::AHashSet<Arc<str>>,
    sweep_at: usize,
}

impl Interner {
    /// The shared copy of `s`; allocated only the first time `s` is seen (since a sweep).
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(x) = self.set.get(s) {
            return x.clone();
        }
        if self.set.len() >= self.sweep_at {
            self.sweep();
        }
        let x: Arc<str> = s.into();
        self.set.insert(x.clone());
        x
    }

    /// Drops the strings only this set still holds.
    fn sweep(&mut self) {
        self.set.retain(|x| Arc::strong_count(x) > 1);
        self.sweep_at = (self.set.len() * 2).max(4096);
    }
}

thread_local! {
    static STRINGS: std::cell::RefCell<Interner> = std::cell::RefCell::new(Interner::default());
}

/// This thread's shared copy of `s` (see [`Interner`]); a new one during the thread's teardown.
pub fn intern(s: &str) -> Arc<str> {
    STRINGS.try_with(|i| i.borrow_mut().get(s)).unwrap_or_else(|_| s.into())
}

/// Whether this thread's interner holds `s`, after a sweep when asked.
#[cfg(test)]
pub fn interned(s: &str, sweep: bool) -> bool {
    STRINGS.with(|i| {
        let mut i = i.borrow_mut();
        if sweep {
            i.sweep();
        }
        i.set.contains(s)
    })
}

/// Smaller buffers come from the heap, where freeing and allocating them is cheap already.
const REUSE_MIN: usize = 128 * 1024;

/// Keeps up to `own` bytes of rendered buffers on this thread for reuse (shard threads), and
/// up to `shared` bytes in the pool every thread shares (the largest limit asked for).
pub fn enable_buffer_reuse(own: usize, shared: usize) {
    REUSE.with(|r| r.borrow_mut().set_max(own));
    let mut s = SHARED_REUSE.lock().unwrap_or_else(|p| p.into_inner());
    if shared > s.max() {
        s.set_max(shared);
    }
}

/// An empty buffer of at least about `capacity` bytes: a kept one if one fits (it may be up
/// to a sixteenth smaller: rendering grows it if needed), else a new one.
pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
    if capacity >= REUSE_MIN {
        let least = capacity - capacity / 16;
        let own = REUSE.try_with(|r| r.borrow_mut().take(least)).ok().flatten();
        let kept = own.or_else(|| SHARED_REUSE.lock().unwrap_or_else(|p| p.into_inner()).take(least));
        if let Some(mut v) = kept {
            v.clear();
            return v;
        }
    }
    Vec::with_capacity(capacity)
}

/// Bytes of group buffers this thread keeps, and bytes in the pool all threads share.
pub fn pooled_bytes() -> (usize, usize) {
    let own = REUSE.try_with(|r| r.try_borrow().map_or(0, |r| r.bytes())).unwrap_or(0);
    let shared = SHARED_REUSE.lock().unwrap_or_else(|p| p.into_inner()).bytes();
    (own, shared)
}

pub(crate) fn give_back(v: Vec<u8>) {
    if v.capacity() < REUSE_MIN {
        return;
    }
    // Not during the thread's teardown, nor re-entered.
    let v = match REUSE.try_with(|r| r.try_borrow_mut().map(|mut r| r.give(v))) {
        Ok(Ok(Ok(()))) => return,
        Ok(Ok(Err(v))) => v,
        _ => return,
    };
    let _ = SHARED_REUSE.lock().unwrap_or_else(|p| p.into_inner()).give(v);
}

impl Chunk {
    /// Asks for the buffer's header, which [`has_deflated`] and [`segment`] read (a hint;
    /// see `scrape::Assembled::keep_deflated_only`).
    ///
    /// [`has_deflated`]: Chunk::has_deflated
    /// [`segment`]: Chunk::segment
    pub fn prefetch_buf(&self) {
        crate::sys::prefetch(Arc::as_ptr(&self.buf));
    }

    /// Asks for the segments' reference count, which [`segment`] raises (a hint, after
    /// [`prefetch_buf`] has brought the buffer's header in).
    ///
    /// [`segment`]: Chunk::segment
    /// [`prefetch_buf`]: Chunk::prefetch_buf
    pub fn prefetch_segments(&self) {
        if let Some(s) = self.buf.deflated.get() {
            crate::sys::prefetch(Arc::as_ptr(s));
        }
    }

    /// Length of the plain bytes (kept for a compressed group too).
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether the plain bytes are gone and only the deflate segment is kept ([`compress`]).
    pub fn is_compressed(&self) -> bool {
        self.buf.compressed
    }

    /// The plain bytes as stored; `None` for a compressed group ([`plain`](Chunk::plain)
    /// inflates those).
    pub fn stored(&self) -> Option<&[u8]> {
        (!self.buf.compressed).then(|| &self.buf.bytes[self.start..self.end])
    }

    /// The plain bytes: borrowed as stored, or inflated from the segment of a compressed group.
    pub fn plain(&self) -> Cow<'_, [u8]> {
        match self.stored() {
            Some(b) => Cow::Borrowed(b),
            None => {
                let mut out = Vec::with_capacity(self.len());
                self.plain_into(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Appends the plain bytes to `out` (copied, or inflated for a compressed group).
    pub fn plain_into(&self, out: &mut Vec<u8>) {
        match self.source() {
            Source::Stored(b) => out.extend_from_slice(b),
            Source::Deflated(seg, len) => gzip::inflate_segment(seg, len, out),
        }
    }

    /// Where the plain bytes come from: the stored bytes, or the deflate segment of a
    /// compressed group and the plain length it inflates to.
    pub fn source(&self) -> Source<'_> {
        match self.stored() {
            Some(b) => Source::Stored(b),
            None => Source::Deflated(self.deflated(), self.len()),
        }
    }

    /// Whether [`deflated`](Chunk::deflated) is ready (costs nothing to call).
    pub fn has_deflated(&self) -> bool {
        self.buf.deflated.get().is_some()
    }

    /// The CRC of these bytes, once [`deflated`](Chunk::deflated) is ready (costs nothing to
    /// call).
    pub fn plain_crc(&self) -> Option<gzip::PlainCrc> {
        self.buf.deflated.get().map(|s| s.plain[self.seg as usize])
    }

    /// These bytes as an independent raw deflate segment (see `crate::gzip`). The first call
    /// for any chunk of a buffer compresses every range of that buffer, once; concurrent
    /// callers wait for it; later calls are free until the buffer is replaced.
    pub fn deflated(&self) -> &[u8] {
        self.segments().get(self.seg as usize)
    }

    /// The segments of this chunk's buffer (made if needed, as [`deflated`](Chunk::deflated)
    /// does) and the index of this chunk's own.
    pub fn segment(&self) -> (Arc<Segments>, u32) {
        (self.segments().clone(), self.seg)
    }

    fn segments(&self) -> &Arc<Segments> {
        let p = &*self.buf;
        p.deflated.get_or_init(|| {
            let s = gzip::deflate_segments(&p.bytes, &p.ranges);
            DEFLATED_BYTES.fetch_add(s.data.len(), Ordering::Relaxed);
            Arc::new(s)
        })
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Chunk {
        let end = v.len();
        let ranges = Box::new([(0, end)]);
        Chunk {
            buf: Arc::new(Packed { bytes: v, compressed: false, ranges, deflated: OnceLock::new() }),
            start: 0,
            end,
            seg: 0,
        }
    }
}

impl PartialEq for Chunk {
    fn eq(&self, other: &Chunk) -> bool {
        self.plain() == other.plain()
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.plain()), f)
    }
}

/// Moves the rendered bytes of one group's families into a single buffer, each family keeping
/// its range of it. A stored group is then one allocation instead of one per family: replacing
/// it frees one block (large ones go straight back to the kernel) instead of fragmenting the
/// heap with hundreds of family-sized holes every push cycle. Costs one copy of the rendered
/// bytes, small beside parsing them. The gzip segments of the buffer, when made, are one
/// allocation too.
pub fn pack(families: &mut [RenderedFamily]) {
    if families.is_empty() {
        return;
    }
    let first = &families[0].samples.buf;
    if first.ranges.len() == families.len()
        && families.iter().enumerate().all(|(i, f)| Arc::ptr_eq(&f.samples.buf, first) && f.samples.seg as usize == i)
    {
        // Rendered into one buffer already (`FamilyRenderer::into_families`).
        return;
    }
    let total = families.iter().map(|f| f.samples.len()).sum();
    let mut bytes = Vec::with_capacity(total);
    let mut ranges = Vec::with_capacity(families.len());
    for f in families.iter() {
        let start = bytes.len();
        f.samples.plain_into(&mut bytes);
        ranges.push((start, bytes.len()));
    }
    let buf = Arc::new(Packed { bytes, compressed: false, ranges: ranges.into(), deflated: OnceLock::new() });
    for (i, f) in families.iter_mut().enumerate() {
        let (start, end) = buf.ranges[i];
        f.samples = Chunk { buf: buf.clone(), start, end, seg: i as u32 };
    }
}

/// Groups whose rendered bytes reach this size are kept compressed when [`compress`] is on:
/// the large exporter pushes that make up nearly all of a big store. Smaller ones (a status
/// push, a batch job's few series) stay plain, so small pushes cost no deflate.
pub const COMPRESS_MIN: usize = 64 * 1024;

thread_local! {
    static COMPRESS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Turns keeping large groups compressed ([`compress`]) on or off for pushes this thread
/// handles from now on (`--store.compression`; shard threads set it at start).
pub fn set_compression(on: bool) {
    COMPRESS.with(|c| c.set(on));
}

/// Keeps a packed group ([`pack`]) as its deflate segments only, when compression is on for
/// this thread and the group's bytes reach [`COMPRESS_MIN`]: the rendered buffer goes back
/// to the buffer pool at once, for the next push to render into, and the store holds about a
/// fifth of the bytes (the segments a gzip scrape sends as they are). A plain scrape inflates
/// them again. Fresh memory is what a large store's first push cycle waits for: on this
/// project's test VM the host hands out new pages at 0.35 to 2 GB/s (see
/// `bench-results/compressed-store-2026-11-22/`), which at thousands of nodes was slower than
/// the pushes arrived. Deflating costs the shard about what the next gzip scrape would have
/// spent making the same segments.
pub fn compress(families: &mut [RenderedFamily]) {
    if families.is_empty() || !COMPRESS.with(|c| c.get()) {
        return;
    }
    let first = &families[0].samples.buf;
    if first.compressed || first.bytes.len() < COMPRESS_MIN || first.deflated.get().is_some() {
        return;
    }
    if !families.iter().all(|f| Arc::ptr_eq(&f.samples.buf, first)) {
        return;
    }
    let first = first.clone();
    let segments = gzip::deflate_segments(&first.bytes, &first.ranges);
    DEFLATED_BYTES.fetch_add(segments.data.len(), Ordering::Relaxed);
    let buf = Arc::new(Packed {
        bytes: Vec::new(),
        compressed: true,
        ranges: first.ranges.clone(),
        deflated: OnceLock::from(Arc::new(segments)),
    });
    for f in families.iter_mut() {
        f.samples.buf = buf.clone();
    }
    #[cfg(debug_assertions)]
    for f in families.iter() {
        let mut back = Vec::new();
        f.samples.plain_into(&mut back);
        debug_assert_eq!(&back[..], &first.bytes[f.samples.start..f.samples.end], "segment inflates back");
    }
    // The last handle on the plain buffer: dropping it gives the buffer back to the pool.
    drop(first);
}

/// A push rejected while parsing or rendering. `line` is 1-based; 0 when not tied to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub line: u32,
    pub msg: String,
}

impl BodyError {
    pub fn new(line: u32, msg: impl Into<String>) -> BodyError {
        BodyError { line, msg: msg.into() }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.msg)
        } else {
            f.write_str(&self.msg)
        }
    }
}

pub fn is_metric_name(s: &[u8]) -> bool {
    match s.split_first() {
        Some((&c, rest)) => {
            (c.is_ascii_alphabetic() || c == b'_' || c == b':')
                && rest.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        }
        None => false,
    }
}

pub fn is_label_name(s: &[u8]) -> bool {
    match s.split_first() {
        Some((&c, rest)) => {
            (c.is_ascii_alphabetic() || c == b'_') && rest.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        }
        None => false,
    }
}

/// Escapes a raw label value for the exposition format; borrowed when nothing needs escaping.
pub fn escape_label_value(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|c| matches!(c, b'\\' | b'"' | b'\n')) {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len() + 1);
    for &c in v {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes raw HELP text for the exposition format.
pub fn escape_help(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// Validates a float as the exposition format writes it: what both Go's `ParseFloat` (as
/// Prometheus' text parsers call it) and Rust read: decimals, exponents, `NaN`, `Inf`,
/// `Infinity`, signed or not, in any case.
///
/// Rust reads two things Go refuses, and a scrape with either fails in Prometheus as a whole:
/// a signed NaN (`+NaN`, `-nan`), and a literal beyond the largest float (`1e400`), which Rust
/// rounds to infinity and Go reports as out of range.
pub fn valid_float(v: &[u8]) -> bool {
    plain_decimal(v) || parsed_float(v)
}

/// [`valid_float`] the long way, by parsing.
fn parsed_float(v: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(v) else { return false };
    let Ok(f) = s.parse::<f64>() else { return false };
    if f.is_finite() {
        return true;
    }
    let unsigned = s.strip_prefix(['+', '-']);
    if f.is_nan() {
        return unsigned.is_none();
    }
    let word = unsigned.unwrap_or(s);
    word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity")
}

/// The common case, decided without parsing: an optional sign, digits with at most one `.`
/// (at least one digit), at most 300 characters, so the value is finite. Go's `ParseFloat`
/// and Rust's `f64::from_str` both read every such string; anything else takes the full check.
pub fn plain_decimal(v: &[u8]) -> bool {
    let digits = match v.first() {
        Some(b'-' | b'+') => &v[1..],
        _ => v,
    };
    if digits.is_empty() || digits.len() > 300 {
        return false;
    }
    let (mut dot, mut digit) = (false, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => digit = true,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    digit
}

/// Which sample names and labels a family of a given type admits.
pub fn sample_suffix_ok(mtype: MetricType, family: &[u8], sample: &[u8]) -> Result<SampleRole, String> {
    let suffix = &sample[family.len()..];
    let role = match (mtype, suffix) {
        (MetricType::Histogram, b"_bucket") => SampleRole::Bucket,
        (MetricType::Histogram | MetricType::Summary, b"_sum" | b"_count") => SampleRole::Plain,
        (MetricType::Summary, b"") => SampleRole::Quantile,
        (MetricType::Histogram, _) => {
            return Err(format!(
                "sample {:?} does not belong to histogram {:?} (expected _bucket, _sum or _count)",
                String::from_utf8_lossy(sample),
                String::from_utf8_lossy(family)
            ))
        }
        (_, b"") => SampleRole::Plain,
        _ => {
            return Err(format!(
                "sample {:?} does not belong to {} {:?}",
                String::from_utf8_lossy(sample),
                mtype.as_str(),
                String::from_utf8_lossy(family)
            ))
        }
    };
    Ok(role)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleRole {
    Plain,
    /// Histogram `_bucket`: needs an `le` label holding a float.
    Bucket,
    /// Summary sample without suffix: needs a `quantile` label holding a float.
    Quantile,
}

/// Per-series label limits (`--push.max-labels`, `--push.max-label-length`). They live in a
/// thread-local because every shard thread applies its own configuration to whatever parser
/// it runs, and the parsers of every body format share [`FamilyRenderer`]; a thread that never
/// sets them (benches, fuzzing) has no limits.
#[derive(Clone, Copy, Debug)]
pub struct LabelLimits {
    pub max_labels: usize,
    pub max_value_len: usize,
}

thread_local! {
    static LABEL_LIMITS: std::cell::Cell<LabelLimits> =
        const { std::cell::Cell::new(LabelLimits { max_labels: usize::MAX, max_value_len: usize::MAX }) };
}

/// Sets the label limits of every renderer created on this thread from now on.
pub fn set_label_limits(l: LabelLimits) {
    LABEL_LIMITS.with(|c| c.set(l));
}

/// Renders the samples of one family, or of every family of a push one after the other into
/// one buffer ([`end_family`](FamilyRenderer::end_family), then
/// [`into_families`](FamilyRenderer::into_families)): the buffer is then the group's stored
/// bytes as they are, with no copy into a packed buffer and no allocation per family but its
/// name and HELP text (see [`pack`]). Label values arrive already escaped (validated by the parser); the grouping
/// labels are merged in sorted order.
pub struct FamilyRenderer<'g> {
    /// The grouping labels and label limits every sample's set is rendered with.
    sets: LabelSets<'g>,
    out: Vec<u8>,
    /// Where the family being rendered starts in `out`.
    family_start: usize,
    /// Byte ranges of each sample's series identity (name and labels) in `out`, with its line,
    /// for the family being rendered.
    ids: Vec<(u32, u32, u32)>,
    /// Scratch of the duplicate check: (hash of a series identity, index in `ids`).
    hashes: Vec<(u64, u32)>,
    hasher: ahash::RandomState,
    /// Families ended so far: their metadata and range of `out`.
    done: Vec<Ended>,
}

struct Ended {
    name: Arc<str>,
    mtype: MetricType,
    help: Option<Arc<str>>,
    range: (usize, usize),
    series: u32,
}

impl<'g> FamilyRenderer<'g> {
    pub fn new(grouping: &'g [InjectedLabel<'g>], capacity: usize) -> Self {
        FamilyRenderer {
            sets: LabelSets::new(grouping),
            out: buffer(capacity),
            family_start: 0,
            ids: Vec::new(),
            hashes: Vec::new(),
            // Random keys, so that a body cannot be made of colliding series on purpose (equal
            // hashes are compared byte for byte, each with the ones before it).
            hasher: ahash::RandomState::new(),
            done: Vec::new(),
        }
    }

    /// Appends one sample. `labels` holds (name, escaped value) and is sorted here in place.
    /// Duplicate body label names are refused; `role` demands `le` or `quantile`.
    pub fn sample(
        &mut self,
        name: &[u8],
        labels: &mut [(&[u8], &[u8])],
        value: &[u8],
        role: SampleRole,
        line: u32,
    ) -> Result<(), BodyError> {
        let start = self.out.len();
        self.out.extend_from_slice(name);
        let checked =
            self.sets.render(name, labels, line, &mut self.out).and_then(|needs| needs.check(name, role, line));
        if let Err(e) = checked {
            self.out.truncate(start);
            return Err(e);
        }
        self.end_sample(start, value, line);
        Ok(())
    }

    /// Appends one sample whose label set was rendered by [`LabelSets::render`] (for the
    /// same grouping labels) and whose role was checked against it ([`Needs::check`]).
    pub fn sample_with_set(&mut self, name: &[u8], set: &[u8], value: &[u8], line: u32) {
        let start = self.out.len();
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(set);
        self.end_sample(start, value, line);
    }

    fn end_sample(&mut self, start: usize, value: &[u8], line: u32) {
        let out = &mut self.out;
        let end = out.len() as u32;
        out.push(b' ');
        out.extend_from_slice(value);
        out.push(b'\n');
        self.ids.push((start as u32, end, line));
    }

    /// Ends the family whose samples were given since the last call, refusing duplicate
    /// series. The next samples start a new family in the same buffer.
    pub fn end_family(&mut self, name: &[u8], mtype: MetricType, help: Option<&[u8]>) -> Result<(), BodyError> {
        // Exporters mostly write a family's series sorted, and series in strictly increasing
        // byte order are all different: then one comparison of neighbours per series does.
        let sorted = || {
            self.ids.windows(2).all(|w| {
                let (a, b) = (w[0], w[1]);
                self.out[a.0 as usize..a.1 as usize] < self.out[b.0 as usize..b.1 as usize]
            })
        };
        if self.ids.len() > 1 && !sorted() {
            self.hashes.clear();
            for (i, &(s, e, _)) in self.ids.iter().enumerate() {
                self.hashes.push((self.hasher.hash_one(&self.out[s as usize..e as usize]), i as u32));
            }
            self.hashes.sort_unstable();
            // Equal hashes are contiguous now; the bytes decide. The error names the first
            // sample (in body order) that repeats an earlier one, as a set filled in order would.
            let id = |k: u32| {
                let (s, e, _) = self.ids[k as usize];
                &self.out[s as usize..e as usize]
            };
            let mut first_repeat: Option<u32> = None;
            for run in self.hashes.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                // Sorted by (hash, index): each sample is compared with the ones before it.
                for (n, &(_, y)) in run.iter().enumerate().skip(1) {
                    if run[..n].iter().any(|&(_, x)| id(x) == id(y)) && first_repeat.map_or(true, |f| y < f) {
                        first_repeat = Some(y);
                    }
                }
            }
            if let Some(y) = first_repeat {
                let (s, e, line) = self.ids[y as usize];
                let series = String::from_utf8_lossy(&self.out[s as usize..e as usize]);
                return Err(BodyError::new(line, format!("duplicate series {series}")));
            }
        }
        self.done.push(Ended {
            // Names were validated as ASCII by the parser.
            name: intern(&String::from_utf8_lossy(name)),
            mtype,
            help: help.map(|h| intern(&String::from_utf8_lossy(h))),
            range: (self.family_start, self.out.len()),
            series: self.ids.len() as u32,
        });
        self.ids.clear();
        self.family_start = self.out.len();
        Ok(())
    }

    /// The families ended so far, their samples sharing one buffer.
    pub fn into_families(mut self) -> Vec<RenderedFamily> {
        debug_assert_eq!(self.family_start, self.out.len(), "samples after the last end_family");
        if self.out.capacity() - self.out.len() > self.out.len() / 8 + 4096 {
            // The capacity was an estimate; a large buffer is mapped on its own, and giving
            // back its tail is a remap, not a copy.
            self.out.shrink_to_fit();
        }
        let ranges: Box<[(usize, usize)]> = self.done.iter().map(|d| d.range).collect();
        let buf = Arc::new(Packed { bytes: self.out, compressed: false, ranges, deflated: OnceLock::new() });
        self.done
            .into_iter()
            .enumerate()
            .map(|(i, d)| RenderedFamily {
                name: d.name,
                mtype: d.mtype,
                help: d.help,
                samples: Chunk { buf: buf.clone(), start: d.range.0, end: d.range.1, seg: i as u32 },
                series: d.series,
            })
            .collect()
    }

    /// Ends the one family rendered and returns it.
    pub fn finish(mut self, name: &[u8], mtype: MetricType, help: Option<&[u8]>) -> Result<RenderedFamily, BodyError> {
        self.end_family(name, mtype, help)?;
        Ok(self.into_families().pop().expect("one family was ended"))
    }
}

/// Renders label sets on their own, for parsers that reuse one rendered set for every sample
/// with the same body labels (see `text::parse`): what [`FamilyRenderer::sample`] writes
/// between the name and the value, refused for the same reasons.
pub struct LabelSets<'g> {
    grouping: &'g [InjectedLabel<'g>],
    limits: LabelLimits,
}

impl<'g> LabelSets<'g> {
    /// With the label limits of this thread, as [`FamilyRenderer::new`].
    pub fn new(grouping: &'g [InjectedLabel<'g>]) -> Self {
        LabelSets { grouping, limits: LABEL_LIMITS.with(|c| c.get()) }
    }

    /// Appends `{...}` for `labels` (sorted here in place) to `out`. `name` is the sample's,
    /// for error messages.
    pub fn render<'l>(
        &self,
        name: &[u8],
        labels: &mut [(&[u8], &'l [u8])],
        line: u32,
        out: &mut Vec<u8>,
    ) -> Result<Needs<'l>, BodyError> {
        write_label_set(self.grouping, self.limits, name, labels, line, out)
    }
}

/// What a label set holds of the two labels a sample's role may need.
#[derive(Clone, Copy, Debug)]
pub struct Needs<'l> {
    le: Option<&'l [u8]>,
    quantile: Option<&'l [u8]>,
}

impl Needs<'_> {
    /// Refuses a `_bucket` sample without a float `le` and a summary quantile sample without
    /// a float `quantile`.
    pub fn check(&self, name: &[u8], role: SampleRole, line: u32) -> Result<(), BodyError> {
        let (needed, got): (&[u8], _) = match role {
            SampleRole::Bucket => (b"le", self.le),
            SampleRole::Quantile => (b"quantile", self.quantile),
            SampleRole::Plain => return Ok(()),
        };
        match got {
            Some(v) if valid_float(v) => Ok(()),
            Some(v) => Err(BodyError::new(
                line,
                format!(
                    "label {:?} must hold a float, got {:?}",
                    String::from_utf8_lossy(needed),
                    String::from_utf8_lossy(v)
                ),
            )),
            None => Err(BodyError::new(
                line,
                format!(
                    "sample {:?} needs a {:?} label",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(needed)
                ),
            )),
        }
    }
}

/// `a < b` in byte order, for label names: short, and mostly different from their first
/// byte on, so a loop the compiler keeps inline beats a call to `memcmp`, which is what
/// comparing slices with `<` costs (a tenth of parsing a node exporter's push before).
#[inline]
fn name_lt(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// Checks a sample's body labels against the limits and for repeated names, sorts them, and
/// appends them to `out` as `{...}` with `grouping` merged in: URL labels win over body
/// labels, except the default `instance=""`, which a body `instance` replaces.
fn write_label_set<'l>(
    grouping: &[InjectedLabel<'_>],
    lim: LabelLimits,
    name: &[u8],
    labels: &mut [(&[u8], &'l [u8])],
    line: u32,
    out: &mut Vec<u8>,
) -> Result<Needs<'l>, BodyError> {
    if labels.len() + grouping.len() > lim.max_labels {
        return Err(BodyError::new(
            line,
            format!(
                "series {:?} has {} labels with the grouping labels, more than {} (raise --push.max-labels)",
                String::from_utf8_lossy(name),
                labels.len() + grouping.len(),
                lim.max_labels
            ),
        ));
    }
    if let Some(l) = labels.iter().find(|l| l.1.len() > lim.max_value_len) {
        return Err(BodyError::new(
            line,
            format!(
                "value of label {:?} is {} bytes, more than {} (raise --push.max-label-length)",
                String::from_utf8_lossy(l.0),
                l.1.len(),
                lim.max_value_len
            ),
        ));
    }
    // Exporters mostly write their labels sorted already.
    if !labels.windows(2).all(|w| name_lt(w[0].0, w[1].0)) {
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for w in labels.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(BodyError::new(line, format!("duplicate label {:?}", String::from_utf8_lossy(w[0].0))));
            }
        }
    }
    let mut needs = Needs { le: None, quantile: None };
    for &(n, v) in labels.iter() {
        match n {
            b"le" => needs.le = Some(v),
            b"quantile" => needs.quantile = Some(v),
            _ => {}
        }
    }
    out.push(b'{');
    let (mut i, mut j) = (0, 0);
    let g = grouping;
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, n: &[u8], v: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(n);
        out.extend_from_slice(b"=\"");
        out.extend_from_slice(v);
        out.push(b'"');
    };
    while i < labels.len() || j < g.len() {
        if j == g.len() || (i < labels.len() && name_lt(labels[i].0, g[j].name)) {
            put(out, labels[i].0, labels[i].1);
            i += 1;
        } else if i == labels.len() || name_lt(g[j].name, labels[i].0) {
            put(out, g[j].name, &g[j].value);
            j += 1;
        } else {
            // Same name in URL and body: the URL wins, except the default instance.
            if g[j].default_only {
                put(out, labels[i].0, labels[i].1);
            } else {
                put(out, g[j].name, &g[j].value);
            }
            i += 1;
            j += 1;
        }
    }
    out.push(b'}');
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_one_renderer_share_one_buffer_in_order() {
        let mut r = FamilyRenderer::new(&[], 16);
        r.sample(b"a", &mut [], b"1", SampleRole::Plain, 1).unwrap();
        r.end_family(b"a", MetricType::Gauge, Some(b"help of a")).unwrap();
        for i in 0..3 {
            let v = i.to_string();
            r.sample(b"b", &mut [(b"i", v.as_bytes())], b"2", SampleRole::Plain, 2 + i).unwrap();
        }
        r.end_family(b"b", MetricType::Counter, None).unwrap();
        let fams = r.into_families();
        assert_eq!(fams.len(), 2);
        assert_eq!(&*fams[0].samples.plain(), b"a{} 1\n");
        assert_eq!(&*fams[1].samples.plain(), b"b{i=\"0\"} 2\nb{i=\"1\"} 2\nb{i=\"2\"} 2\n");
        assert_eq!((fams[0].series, fams[1].series), (1, 3));
        assert_eq!((&*fams[0].name, fams[0].help.as_deref()), ("a", Some("help of a")));
        assert!(Arc::ptr_eq(&fams[0].samples.buf, &fams[1].samples.buf));
        // Already one buffer in order: pack leaves it as it is.
        let mut packed = fams.clone();
        pack(&mut packed);
        assert!(Arc::ptr_eq(&packed[0].samples.buf, &fams[0].samples.buf));
        // Each range is its own deflate segment.
        assert_eq!(fams[1].samples.segment().1, 1);
    }

    #[test]
    fn a_duplicate_is_reported_at_its_first_repeat_and_only_within_a_family() {
        let mut r = FamilyRenderer::new(&[], 16);
        let lines: [(&[u8], u32); 6] = [(b"x", 1), (b"y", 2), (b"z", 3), (b"y", 4), (b"x", 5), (b"y", 6)];
        for (v, line) in lines {
            r.sample(b"m", &mut [(b"l", v)], b"1", SampleRole::Plain, line).unwrap();
        }
        let e = r.end_family(b"m", MetricType::Gauge, None).unwrap_err();
        assert_eq!((e.line, e.msg.as_str()), (4, "duplicate series m{l=\"y\"}"));
        // The same series in two families is no duplicate.
        let mut r = FamilyRenderer::new(&[], 16);
        r.sample(b"m", &mut [], b"1", SampleRole::Plain, 1).unwrap();
        r.end_family(b"m", MetricType::Gauge, None).unwrap();
        r.sample(b"m", &mut [], b"1", SampleRole::Plain, 2).unwrap();
        r.end_family(b"n", MetricType::Gauge, None).unwrap();
        assert_eq!(r.into_families().len(), 2);
    }

    #[test]
    fn series_in_order_pass_the_duplicate_check_and_a_repeat_among_them_does_not() {
        let end = |values: &[&str]| {
            let mut r = FamilyRenderer::new(&[], 16);
            for (i, v) in values.iter().enumerate() {
                r.sample(b"m", &mut [(b"l", v.as_bytes())], b"1", SampleRole::Plain, i as u32 + 1).unwrap();
            }
            r.end_family(b"m", MetricType::Gauge, None).map(|()| r.into_families()[0].series).map_err(|e| e.line)
        };
        let many: Vec<String> = (0..1000).map(|i| format!("{i:04}")).collect();
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        assert_eq!(end(&many), Ok(1000));
        assert_eq!(end(&["a", "b", "c"]), Ok(3));
        // In order but for a repeat next to its first, or far from it.
        assert_eq!(end(&["a", "b", "b", "c"]), Err(3));
        assert_eq!(end(&["a", "b", "c", "a"]), Err(4));
        let mut late = many.clone();
        late.push("0500");
        assert_eq!(end(&late), Err(1001));
    }

    #[test]
    fn a_replaced_groups_buffer_is_rendered_into_again_on_threads_that_keep_them() {
        let render = |n: usize| {
            let mut r = FamilyRenderer::new(&[], n * 16);
            for i in 0..n {
                let v = i.to_string();
                r.sample(b"m", &mut [(b"i", v.as_bytes())], b"1", SampleRole::Plain, 1).unwrap();
            }
            r.end_family(b"m", MetricType::Gauge, None).unwrap();
            r.into_families()
        };
        enable_buffer_reuse(4 * REUSE_MIN, 0);
        let first = render(20_000);
        let ptr = first[0].samples.stored().unwrap().as_ptr();
        drop(first);
        REUSE.with(|r| assert_eq!(r.borrow().len(), 1, "kept when let go"));
        let second = render(20_000);
        assert_eq!(second[0].samples.stored().unwrap().as_ptr(), ptr, "the kept buffer is reused");
        assert_eq!(second[0].series, 20_000);
        assert!(second[0].samples.plain().starts_with(b"m{i=\"0\"} 1\nm{i=\"1\"} 1\n"));
        // A small family does not take it; the limit holds.
        drop(second);
        let small = render(10);
        assert_ne!(small[0].samples.stored().unwrap().as_ptr(), ptr);
        let many: Vec<_> = (0..8).map(|_| render(20_000)).collect();
        drop(many);
        REUSE.with(|r| {
            let r = r.borrow();
            assert!(r.bytes() <= 4 * REUSE_MIN && !r.is_empty(), "{} bytes in {}", r.bytes(), r.len());
        });
    }

    #[test]
    fn plain_decimals_are_floats_the_long_way_too() {
        let long = "9".repeat(300);
        let too_long = "9".repeat(400);
        let yes = ["0", "1", "-1", "+1", "1.", ".5", "-.5", "007", "3.14159", "123456789012345678901234567890", &long];
        for v in yes {
            assert!(plain_decimal(v.as_bytes()), "{v}");
            assert!(parsed_float(v.as_bytes()), "{v}");
        }
        // Not plain: left to the full check, which decides each as before.
        for (v, valid) in [
            ("", false),
            (".", false),
            ("-", false),
            ("1.2.3", false),
            ("1e3", true),
            ("NaN", true),
            ("+Inf", true),
            ("--1", false),
            ("1_000", false),
            (too_long.as_str(), false),
        ] {
            assert!(!plain_decimal(v.as_bytes()), "{v}");
            assert_eq!(valid_float(v.as_bytes()), valid, "{v}");
        }
    }
}
