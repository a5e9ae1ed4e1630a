//! The protobuf body decoder: `application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`, a sequence of
//! `varint length, MetricFamily message` as the Go client (`pbutil.WriteDelimited`) sends it.
//!
//! Each family is rendered through [`FamilyRenderer`] into exactly the bytes the text parser
//! produces for the text body Go's `expfmt.MetricFamilyToText` would write for it: the same
//! sample names and suffixes, `le`/`quantile` labels, a `+Inf` bucket added when the classic
//! buckets lack one, every number (values, counts, `le`, `quantile`) formatted as
//! `strconv.FormatFloat(f, 'g', -1, 64)` with `+Inf`, `-Inf`, `NaN` and `0` for both zeros
//! ([`format_float`]). So a store fed by either format holds the same bytes.
//!
//! Why hand-written rather than prost: the schema is five small messages and we read a handful
//! of fields; a generated decoder would allocate a `String` per label and a `Vec` per metric
//! and bucket (owned messages), need a build script (and protoc or prost-build's bundled
//! one) for a schema that has not changed in years, and still leave the rendering to us. This
//! reader borrows every name, label value and help text from the body, keeps its scratch
//! (escaped label values, formatted `le`/`quantile` values, suffixed names) in the request's
//! bump arena, and walks each message with no allocation per sample.
//!
//! Decisions, each where a Prometheus operator would look for it:
//! - Refused: sample timestamps (`timestamp_ms` present, as the Pushgateway does), invalid
//!   metric or label names, `__` label names, duplicate series, text that is not UTF-8,
//!   truncated or malformed messages, protobuf groups, a family named twice in one body, and
//!   `GAUGE_HISTOGRAM` (text format 0.0.4 has no such type; Go's text encoder refuses it too).
//!   A metric without the value message of its family's type is refused, as in Go.
//! - Ignored: unknown fields (skipped per the wire format), exemplars, created timestamps,
//!   `unit`, and the native-histogram fields (schema, spans, deltas, zero bucket). A histogram
//!   with no classic buckets still renders a `+Inf` bucket, `_sum` and `_count` from
//!   `sample_count` (or `sample_count_float` when only that is set: float histograms).
//! - A family with no metrics renders nothing, as a text family with no samples.
//! - Errors carry `line = 0` and say `message N` (1-based index in the body) in the text.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use bumpalo::Bump;

use crate::expo::{is_label_name, is_metric_name, BodyError, FamilyRenderer, MetricType, RenderedFamily, SampleRole};
use crate::grouping::InjectedLabel;

/// Parses a delimited protobuf body and renders its families with `grouping` injected,
/// refusing a body with more than `max_series` samples (text lines, as the text parser counts).
pub fn parse<'a>(
    body: &'a [u8],
    grouping: &[InjectedLabel<'_>],
    bump: &'a Bump,
    max_series: usize,
) -> Result<Vec<RenderedFamily>, BodyError> {
    // Every family into one buffer: the group's stored bytes. Protobuf is denser than the
    // text it renders to; the buffer grows (by remapping, for large ones) if this is short.
    let extra: usize = grouping.iter().map(|l| l.name.len() + l.value.len() + 4).sum();
    let mut r = FamilyRenderer::new(grouping, body.len() * 2 + body.len() / 16 * extra);
    let mut seen: HashSet<&'a [u8], ahash::RandomState> = HashSet::default();
    let mut cx = Ctx { bump, max_series, total: 0, idx: 0, family: b"", scratch: Vec::with_capacity(16) };
    let mut labels: Vec<(&'a [u8], &'a [u8])> = Vec::with_capacity(16);
    let mut rest = body;
    while !rest.is_empty() {
        cx.idx += 1;
        cx.family = b"";
        let len = varint(&mut rest).map_err(|e| cx.err(format_args!("bad length prefix: {e}")))?;
        if len > rest.len() as u64 {
            return Err(
                cx.err(format_args!("truncated: length prefix says {len} bytes, {} left in the body", rest.len()))
            );
        }
        let (msg, tail) = rest.split_at(len as usize);
        rest = tail;
        family(msg, &mut cx, &mut r, &mut labels, &mut seen)?;
    }
    Ok(r.into_families())
}

/// What every step needs: the arena, the limits, and where we are for error messages.
struct Ctx<'a> {
    bump: &'a Bump,
    max_series: usize,
    total: usize,
    /// 1-based index of the message being decoded.
    idx: u32,
    /// Name of the family being decoded, once known.
    family: &'a [u8],
    /// Labels of one sample plus its `le`/`quantile`; the renderer sorts it in place.
    scratch: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Ctx<'a> {
    fn err(&self, msg: impl fmt::Display) -> BodyError {
        if self.family.is_empty() {
            BodyError::new(0, format!("message {}: {msg}", self.idx))
        } else {
            BodyError::new(
                0,
                format!("message {} (family {:?}): {msg}", self.idx, String::from_utf8_lossy(self.family)),
            )
        }
    }

    /// Renders one sample: `labels` plus the optional `le`/`quantile` label.
    fn emit(
        &mut self,
        r: &mut FamilyRenderer<'_>,
        name: &'a [u8],
        labels: &[(&'a [u8], &'a [u8])],
        extra: Option<(&'static [u8], f64)>,
        value: f64,
        role: SampleRole,
    ) -> Result<(), BodyError> {
        self.total += 1;
        if self.total > self.max_series {
            return Err(
                self.err(format_args!("push has more than {} series (raise --push.max-series)", self.max_series))
            );
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(labels);
        if let Some((n, v)) = extra {
            let mut buf = [0u8; FLOAT_BUF];
            let text = self.bump.alloc_slice_copy(format_float(v, &mut buf));
            self.scratch.push((n, text));
        }
        let mut buf = [0u8; FLOAT_BUF];
        let value = format_float(value, &mut buf);
        r.sample(name, &mut self.scratch, value, role, self.idx).map_err(|e| self.err(e.msg))
    }
}

/// Decodes one MetricFamily message and renders it into `r`, unless it has no metrics.
fn family<'a>(
    msg: &'a [u8],
    cx: &mut Ctx<'a>,
    r: &mut FamilyRenderer<'_>,
    labels: &mut Vec<(&'a [u8], &'a [u8])>,
    seen: &mut HashSet<&'a [u8], ahash::RandomState>,
) -> Result<(), BodyError> {
    // Fields may come in any order: find name, help and type before walking the metrics.
    let (mut name, mut help, mut code, mut metrics) = (None, None, 0u64, 0usize);
    for f in Fields::new(msg) {
        let (num, w) = f.map_err(|e| cx.err(e))?;
        match num {
            1 => name = Some(w.bytes(num).map_err(|e| cx.err(e))?),
            2 => help = Some(w.bytes(num).map_err(|e| cx.err(e))?),
            3 => code = w.varint(num).map_err(|e| cx.err(e))?,
            4 => {
                w.bytes(num).map_err(|e| cx.err(e))?;
                metrics += 1;
            }
            _ => {}
        }
    }
    let name = name.unwrap_or_default();
    if !is_metric_name(name) {
        return Err(cx.err(format_args!("invalid metric name {:?}", String::from_utf8_lossy(name))));
    }
    cx.family = name;
    if !seen.insert(name) {
        return Err(cx.err("family appears twice in the body (each family must be one message)"));
    }
    let mtype = match code {
        0 => MetricType::Counter,
        1 => MetricType::Gauge,
        2 => MetricType::Summary,
        3 => MetricType::Untyped,
        4 => MetricType::Histogram,
        5 => {
            return Err(cx.err(
                "GAUGE_HISTOGRAM has no equivalent in text format 0.0.4 and is not accepted; \
                 push it as gauges",
            ))
        }
        c => return Err(cx.err(format_args!("unknown metric type {c}"))),
    };
    let help = match help {
        Some(h) => {
            if std::str::from_utf8(h).is_err() {
                return Err(cx.err("HELP text is not valid UTF-8"));
            }
            Some(escape(cx.bump, h, false))
        }
        None => None,
    };
    if metrics == 0 {
        return Ok(());
    }

    let bump = cx.bump;
    let names = match mtype {
        MetricType::Histogram | MetricType::Summary => Suffixed {
            bucket: concat(bump, name, b"_bucket"),
            sum: concat(bump, name, b"_sum"),
            count: concat(bump, name, b"_count"),
        },
        _ => Suffixed { bucket: name, sum: name, count: name },
    };
    for f in Fields::new(msg) {
        let (num, w) = f.map_err(|e| cx.err(e))?;
        if num == 4 {
            let m = w.bytes(num).map_err(|e| cx.err(e))?;
            metric(m, mtype, name, &names, cx, r, labels)?;
        }
    }
    r.end_family(name, mtype, help).map_err(|e| cx.err(e.msg))
}

struct Suffixed<'a> {
    bucket: &'a [u8],
    sum: &'a [u8],
    count: &'a [u8],
}

/// Decodes one Metric and renders its samples in the order Go's text encoder writes them.
fn metric<'a>(
    m: &'a [u8],
    mtype: MetricType,
    name: &'a [u8],
    names: &Suffixed<'a>,
    cx: &mut Ctx<'a>,
    r: &mut FamilyRenderer<'_>,
    labels: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<(), BodyError> {
    labels.clear();
    // Value messages by field number: gauge 2, counter 3, summary 4, untyped 5, histogram 7.
    let mut values: [Option<&'a [u8]>; 8] = [None; 8];
    for f in Fields::new(m) {
        let (num, w) = f.map_err(|e| cx.err(e))?;
        match num {
            1 => {
                let lp = w.bytes(num).map_err(|e| cx.err(e))?;
                labels.push(label_pair(lp, cx)?);
            }
            2..=5 | 7 => values[num as usize] = Some(w.bytes(num).map_err(|e| cx.err(e))?),
            6 => return Err(cx.err("samples with timestamps are not allowed in a push")),
            _ => {}
        }
    }
    let field = match mtype {
        MetricType::Gauge => 2,
        MetricType::Counter => 3,
        MetricType::Summary => 4,
        MetricType::Untyped => 5,
        MetricType::Histogram => 7,
    };
    let Some(v) = values[field] else {
        return Err(cx.err(format_args!("expected a {} value in metric", mtype.as_str())));
    };
    match mtype {
        MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
            let mut value = 0.0;
            for f in Fields::new(v) {
                let (num, w) = f.map_err(|e| cx.err(e))?;
                if num == 1 {
                    value = w.double(num).map_err(|e| cx.err(e))?;
                }
            }
            cx.emit(r, name, labels, None, value, SampleRole::Plain)
        }
        MetricType::Summary => {
            let (mut count, mut sum) = (0u64, 0.0);
            for f in Fields::new(v) {
                let (num, w) = f.map_err(|e| cx.err(e))?;
                match num {
                    1 => count = w.varint(num).map_err(|e| cx.err(e))?,
                    2 => sum = w.double(num).map_err(|e| cx.err(e))?,
                    3 => {
                        let (mut q, mut qv) = (0.0, 0.0);
                        for f in Fields::new(w.bytes(num).map_err(|e| cx.err(e))?) {
                            let (num, w) = f.map_err(|e| cx.err(e))?;
                            match num {
                                1 => q = w.double(num).map_err(|e| cx.err(e))?,
                                2 => qv = w.double(num).map_err(|e| cx.err(e))?,
                                _ => {}
                            }
                        }
                        cx.emit(r, name, labels, Some((b"quantile", q)), qv, SampleRole::Quantile)?;
                    }
                    _ => {}
                }
            }
            cx.emit(r, names.sum, labels, None, sum, SampleRole::Plain)?;
            cx.emit(r, names.count, labels, None, count as f64, SampleRole::Plain)
        }
        MetricType::Histogram => {
            let (mut count, mut count_f, mut sum) = (None, None, 0.0);
            let mut inf_seen = false;
            for f in Fields::new(v) {
                let (num, w) = f.map_err(|e| cx.err(e))?;
                match num {
                    1 => count = Some(w.varint(num).map_err(|e| cx.err(e))?),
                    2 => sum = w.double(num).map_err(|e| cx.err(e))?,
                    4 => count_f = Some(w.double(num).map_err(|e| cx.err(e))?),
                    3 => {
                        let (mut le, mut n, mut n_f) = (0.0, None, None);
                        for f in Fields::new(w.bytes(num).map_err(|e| cx.err(e))?) {
                            let (num, w) = f.map_err(|e| cx.err(e))?;
                            match num {
                                1 => n = Some(w.varint(num).map_err(|e| cx.err(e))?),
                                2 => le = w.double(num).map_err(|e| cx.err(e))?,
                                4 => n_f = Some(w.double(num).map_err(|e| cx.err(e))?),
                                _ => {}
                            }
                        }
                        inf_seen |= le == f64::INFINITY;
                        let n = pick_count(n, n_f);
                        cx.emit(r, names.bucket, labels, Some((b"le", le)), n, SampleRole::Bucket)?;
                    }
                    _ => {}
                }
            }
            let count = pick_count(count, count_f);
            if !inf_seen {
                cx.emit(r, names.bucket, labels, Some((b"le", f64::INFINITY)), count, SampleRole::Bucket)?;
            }
            cx.emit(r, names.sum, labels, None, sum, SampleRole::Plain)?;
            cx.emit(r, names.count, labels, None, count, SampleRole::Plain)
        }
    }
}

/// The integer count, unless only the float one (float histograms) is set.
fn pick_count(n: Option<u64>, n_f: Option<f64>) -> f64 {
    match (n, n_f) {
        (Some(n), _) if n > 0 => n as f64,
        (_, Some(f)) => f,
        (n, None) => n.unwrap_or(0) as f64,
    }
}

/// Decodes a LabelPair into (name, escaped value), validating both.
fn label_pair<'a>(lp: &'a [u8], cx: &Ctx<'a>) -> Result<(&'a [u8], &'a [u8]), BodyError> {
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    for f in Fields::new(lp) {
        let (num, w) = f.map_err(|e| cx.err(e))?;
        match num {
            1 => name = w.bytes(num).map_err(|e| cx.err(e))?,
            2 => value = w.bytes(num).map_err(|e| cx.err(e))?,
            _ => {}
        }
    }
    if !is_label_name(name) {
        return Err(cx.err(format_args!("invalid label name {:?}", String::from_utf8_lossy(name))));
    }
    if name.starts_with(b"__") {
        return Err(cx.err(format_args!("label name {:?} is reserved (starts with __)", String::from_utf8_lossy(name))));
    }
    if std::str::from_utf8(value).is_err() {
        return Err(cx.err(format_args!("value of label {:?} is not valid UTF-8", String::from_utf8_lossy(name))));
    }
    Ok((name, escape(cx.bump, value, true)))
}

/// Escapes for the exposition format into the arena; borrows when nothing needs escaping.
/// Label values escape `\`, `"` and newline; HELP text only `\` and newline.
fn escape<'a>(bump: &'a Bump, v: &'a [u8], quote: bool) -> &'a [u8] {
    let needs = |c: &u8| *c == b'\\' || *c == b'\n' || (quote && *c == b'"');
    if !v.iter().any(needs) {
        return v;
    }
    let mut out = bumpalo::collections::Vec::with_capacity_in(v.len() + 8, bump);
    for &c in v {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(c),
        }
    }
    out.into_bump_slice()
}

fn concat<'a>(bump: &'a Bump, a: &[u8], b: &[u8]) -> &'a [u8] {
    let out = bump.alloc_slice_fill_copy(a.len() + b.len(), 0u8);
    out[..a.len()].copy_from_slice(a);
    out[a.len()..].copy_from_slice(b);
    out
}

/// Room for the longest [`format_float`] output (`-1.7976931348623157e+308` is 24 bytes).
pub const FLOAT_BUF: usize = 32;

/// Formats `f` as Go's text encoder does (`expfmt.writeFloat`): `NaN`, `+Inf`, `-Inf`, `0`
/// for both zeros, otherwise `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that
/// read back to `f`, in exponent form (`1e+06`, `1.5e-07`) when the exponent is below -4 or at
/// least 6 (Go's threshold for the shortest `'g'` form), plain decimals otherwise.
pub fn format_float(f: f64, buf: &mut [u8; FLOAT_BUF]) -> &[u8] {
    if f.is_nan() {
        return b"NaN";
    }
    if f.is_infinite() {
        return if f > 0.0 { b"+Inf" } else { b"-Inf" };
    }
    if f == 0.0 {
        return b"0";
    }
    // Rust's `{:e}` without precision prints the shortest round-tripping digits, as Go's
    // shortest mode does: `d[.ddd]e<exp>`.
    let mut sci = StackBuf { buf: [0; FLOAT_BUF], len: 0 };
    write!(sci, "{:e}", f.abs()).expect("a float's {:e} fits in 32 bytes");
    let sci = &sci.buf[..sci.len];
    let e = sci.iter().position(|&c| c == b'e').expect("{:e} output has an exponent");
    let mut digits = [0u8; 20];
    let mut nd = 0;
    for &c in &sci[..e] {
        if c != b'.' {
            digits[nd] = c;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    let exp: i32 = std::str::from_utf8(&sci[e + 1..]).ok().and_then(|s| s.parse().ok()).expect("{:e} exponent");

    let mut out = StackBuf { buf: [0; FLOAT_BUF], len: 0 };
    if f < 0.0 {
        out.push(b"-");
    }
    if !(-4..6).contains(&exp) {
        out.push(&digits[..1]);
        if nd > 1 {
            out.push(b".");
            out.push(&digits[1..]);
        }
        out.push(if exp < 0 { b"e-" } else { b"e+" });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b"0");
        }
        write!(out, "{a}").expect("fits");
    } else {
        // The decimal point sits after `dp` digits (dp <= 0: before them, after zeros).
        let dp = exp + 1;
        if dp <= 0 {
            out.push(b"0.");
            for _ in 0..-dp {
                out.push(b"0");
            }
            out.push(digits);
        } else {
            let dp = dp as usize;
            if dp >= nd {
                out.push(digits);
                for _ in nd..dp {
                    out.push(b"0");
                }
            } else {
                out.push(&digits[..dp]);
                out.push(b".");
                out.push(&digits[dp..]);
            }
        }
    }
    let len = out.len;
    *buf = out.buf;
    &buf[..len]
}

struct StackBuf {
    buf: [u8; FLOAT_BUF],
    len: usize,
}

impl StackBuf {
    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

// --- The wire format: just enough of it, borrowing from the body. ---

/// One field's payload, by wire type.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32,
}

impl<'a> Wire<'a> {
    fn kind(self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::I64(_) => "64-bit",
            Wire::Len(_) => "length-delimited",
            Wire::I32 => "32-bit",
        }
    }

    fn bytes(self, num: u32) -> Result<&'a [u8], String> {
        match self {
            Wire::Len(b) => Ok(b),
            w => Err(format!("malformed: field {num} is {}, expected length-delimited", w.kind())),
        }
    }

    fn varint(self, num: u32) -> Result<u64, String> {
        match self {
            Wire::Varint(v) => Ok(v),
            w => Err(format!("malformed: field {num} is {}, expected varint", w.kind())),
        }
    }

    fn double(self, num: u32) -> Result<f64, String> {
        match self {
            Wire::I64(v) => Ok(f64::from_bits(v)),
            w => Err(format!("malformed: field {num} is {}, expected a double", w.kind())),
        }
    }
}

/// Iterates the fields of one message. Stops after the first error.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(msg: &'a [u8]) -> Self {
        Fields { rest: msg }
    }

    fn next_field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = varint(&mut self.rest).map_err(|e| format!("malformed field key: {e}"))?;
        let num = key >> 3;
        if num == 0 || num > (1 << 29) - 1 {
            return Err(format!("malformed: field number {num} out of range"));
        }
        let num = num as u32;
        let w = match key & 7 {
            0 => Wire::Varint(varint(&mut self.rest).map_err(|e| format!("malformed field {num}: {e}"))?),
            1 => Wire::I64(u64::from_le_bytes(take(&mut self.rest, 8, num)?.try_into().expect("8 bytes"))),
            2 => {
                let len = varint(&mut self.rest).map_err(|e| format!("malformed length of field {num}: {e}"))?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                Wire::Len(take(&mut self.rest, len, num)?)
            }
            5 => {
                take(&mut self.rest, 4, num)?;
                Wire::I32
            }
            3 | 4 => return Err(format!("malformed: field {num} uses protobuf groups, not supported")),
            t => return Err(format!("malformed: field {num} has invalid wire type {t}")),
        };
        Ok((num, w))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.next_field();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize, num: u32) -> Result<&'a [u8], String> {
    if n > rest.len() {
        return Err(format!("truncated: field {num} needs {n} bytes, {} left in the message", rest.len()));
    }
    let (a, b) = rest.split_at(n);
    *rest = b;
    Ok(a)
}

/// Reads a base-128 varint of at most 10 bytes.
fn varint(rest: &mut &[u8]) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&b) = rest.get(i) else {
            return Err("truncated varint");
        };
        if i == 9 && b > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *rest = &rest[i + 1..];
            return Ok(v);
        }
    }
    Err("varint overflows 64 bits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::GroupKey;

    const BASIC_PB: &[u8] = include_bytes!("../tests/fixtures/basic.pb");
    const BASIC_TXT: &str = include_str!("../tests/fixtures/basic.txt");
    const GPU_PB: &[u8] = include_bytes!("../tests/fixtures/gpu.pb");
    const GPU_TXT: &str = include_str!("../tests/fixtures/gpu.txt");

    fn grouping() -> Vec<InjectedLabel<'static>> {
        static KEY: std::sync::LazyLock<GroupKey> =
            std::sync::LazyLock::new(|| GroupKey::from_path("job/j/gpu/url-wins").unwrap());
        KEY.injected()
    }

    fn decode(body: &[u8]) -> Result<Vec<RenderedFamily>, BodyError> {
        let bump = Bump::new();
        parse(body, &grouping(), &bump, usize::MAX)
    }

    fn text(body: &str) -> Vec<RenderedFamily> {
        let bump = Bump::new();
        crate::text::parse(body.as_bytes(), &grouping(), &bump).unwrap()
    }

    #[test]
    fn fixtures_render_like_the_text_body() {
        for (pb, txt) in [(BASIC_PB, BASIC_TXT), (GPU_PB, GPU_TXT)] {
            let got = decode(pb).unwrap();
            let want = text(txt);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    g,
                    w,
                    "\n{}\nvs\n{}",
                    String::from_utf8_lossy(&g.samples.plain()),
                    String::from_utf8_lossy(&w.samples.plain())
                );
            }
        }
    }

    #[test]
    fn fixture_details() {
        let fams = decode(BASIC_PB).unwrap();
        let names: Vec<&str> = fams.iter().map(|f| &*f.name).collect();
        // The empty family is left out; order is the body's.
        assert_eq!(
            names,
            [
                "http_requests_total",
                "node_floats",
                "no_help_untyped",
                "utf8_labels",
                "rpc_duration_seconds",
                "http_request_duration_seconds",
                "native_only_seconds"
            ]
        );
        assert_eq!(fams[0].help.as_deref(), Some("Requests.\\nWith a \"newline\" and a \\\\ backslash."));
        assert_eq!(fams[2].help, None);
        let s = |i: usize| String::from_utf8(fams[i].samples.plain().to_vec()).unwrap();
        assert!(
            s(0).contains("{code=\"a\\\"b\\\\c\\nd\",gpu=\"url-wins\",instance=\"\",job=\"j\",method=\"PUT\"} 0\n"),
            "{}",
            s(0)
        );
        assert!(
            s(6).contains("native_only_seconds_bucket{gpu=\"url-wins\",instance=\"\",job=\"j\",le=\"+Inf\"} 5\n"),
            "{}",
            s(6)
        );
        assert!(s(5).contains("le=\"1e+06\"} 1e+06\n"));
        // URL grouping labels win over body labels of the same name.
        let gpu = decode(GPU_PB).unwrap();
        assert!(std::str::from_utf8(&gpu[0].samples.plain()).unwrap().lines().all(|l| l.contains("gpu=\"url-wins\"")));
        assert_eq!(gpu[0].series, 8);
    }

    #[test]
    fn go_float_formatting() {
        let cases: &[(f64, &str)] = &[
            (1e6, "1e+06"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (999999.5, "999999.5"),
            (-0.0, "0"),
            (0.0, "0"),
            (-1.0, "-1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-f64::MAX, "-1.7976931348623157e+308"),
            (0.1, "0.1"),
            (100000.0, "100000"),
            (-3.25e-10, "-3.25e-10"),
            (1.7560473e7, "1.7560473e+07"),
            (0.000123, "0.000123"),
            (123.456, "123.456"),
        ];
        for &(f, want) in cases {
            let mut buf = [0; FLOAT_BUF];
            assert_eq!(std::str::from_utf8(format_float(f, &mut buf)).unwrap(), want, "{f:e}");
        }
        // Whatever it writes reads back to the same float.
        let mut x = 1.0e-300_f64;
        while x < 1e300 {
            for v in [x, -x, x * 1.2345678901234567] {
                let mut buf = [0; FLOAT_BUF];
                let s = std::str::from_utf8(format_float(v, &mut buf)).unwrap().to_string();
                assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
            }
            x *= 7.3;
        }
    }

    // --- A tiny encoder for hand-made bad bodies. ---

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn len_field(out: &mut Vec<u8>, num: u32, data: &[u8]) {
        put_varint(out, u64::from(num) << 3 | 2);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    fn varint_field(out: &mut Vec<u8>, num: u32, v: u64) {
        put_varint(out, u64::from(num) << 3);
        put_varint(out, v);
    }

    fn double_field(out: &mut Vec<u8>, num: u32, v: f64) {
        put_varint(out, u64::from(num) << 3 | 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn label(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut lp = Vec::new();
        len_field(&mut lp, 1, name);
        len_field(&mut lp, 2, value);
        lp
    }

    /// A gauge metric with the given labels and value.
    fn gauge_metric(labels: &[(&[u8], &[u8])], v: f64) -> Vec<u8> {
        let mut m = Vec::new();
        for (n, val) in labels {
            len_field(&mut m, 1, &label(n, val));
        }
        let mut g = Vec::new();
        double_field(&mut g, 1, v);
        len_field(&mut m, 2, &g);
        m
    }

    fn fam(name: &[u8], mtype: u64, metrics: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        len_field(&mut f, 1, name);
        varint_field(&mut f, 3, mtype);
        for m in metrics {
            len_field(&mut f, 4, m);
        }
        f
    }

    fn delimited(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            put_varint(&mut out, m.len() as u64);
            out.extend_from_slice(m);
        }
        out
    }

    #[test]
    fn hand_made_body_and_field_order() {
        // Metrics before name and type: the fields may come in any order.
        let mut f = Vec::new();
        len_field(&mut f, 4, &gauge_metric(&[(b"a", b"1")], 2.5));
        len_field(&mut f, 2, b"help");
        varint_field(&mut f, 3, 1);
        len_field(&mut f, 1, b"g");
        let fams = decode(&delimited(&[f])).unwrap();
        assert_eq!(&*fams[0].samples.plain(), b"g{a=\"1\",gpu=\"url-wins\",instance=\"\",job=\"j\"} 2.5\n");
        assert_eq!(fams[0].mtype, MetricType::Gauge);
        assert!(decode(b"").unwrap().is_empty());
    }

    #[test]
    fn rejections_say_which_message() {
        let ok = fam(b"ok", 1, &[gauge_metric(&[], 1.0)]);
        let mut with_ts = gauge_metric(&[], 1.0);
        varint_field(&mut with_ts, 6, 1700000000000);
        let mut counter_as_gauge = Vec::new();
        len_field(&mut counter_as_gauge, 2, &[]);
        let mut group = fam(b"g", 1, &[]);
        put_varint(&mut group, 5 << 3 | 3);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (fam(b"g", 1, &[with_ts]), "timestamps"),
            (fam(b"1g", 1, &[gauge_metric(&[], 1.0)]), "invalid metric name"),
            (fam(b"", 1, &[gauge_metric(&[], 1.0)]), "invalid metric name"),
            (fam(b"g", 1, &[gauge_metric(&[(b"a-b", b"1")], 1.0)]), "invalid label name"),
            (fam(b"g", 1, &[gauge_metric(&[(b"__x", b"1")], 1.0)]), "reserved"),
            (fam(b"g", 1, &[gauge_metric(&[(b"a", b"\xff")], 1.0)]), "not valid UTF-8"),
            (
                fam(b"g", 1, &[gauge_metric(&[(b"a", b"1")], 1.0), gauge_metric(&[(b"a", b"1")], 2.0)]),
                "duplicate series",
            ),
            (fam(b"g", 1, &[gauge_metric(&[(b"a", b"1"), (b"a", b"2")], 1.0)]), "duplicate label"),
            (fam(b"ok", 1, &[gauge_metric(&[(b"x", b"1")], 1.0)]), "appears twice"),
            (fam(b"g", 5, &[gauge_metric(&[], 1.0)]), "GAUGE_HISTOGRAM"),
            (fam(b"g", 9, &[gauge_metric(&[], 1.0)]), "unknown metric type"),
            (fam(b"g", 0, &[counter_as_gauge]), "expected a counter"),
            (fam(b"h", 4, &[gauge_metric(&[(b"le", b"1")], 1.0)]), "expected a histogram"),
            (group, "groups"),
            (vec![0x0a, 0x05, b'g'], "truncated"),
            (vec![0x0a, 0x80], "truncated"),
            (vec![0x0f], "invalid wire type"),
            (vec![0x00], "field number 0"),
            (vec![0x0a, 0x01, b'g', 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], "overflows"),
            (vec![0x08, 0x01], "expected length-delimited"),
        ];
        for (msg, want) in cases {
            let body = delimited(&[ok.clone(), msg.clone()]);
            let e = decode(&body).expect_err(want);
            assert!(e.msg.contains(want), "{want}: {e}");
            assert!(e.msg.starts_with("message 2"), "{want}: {e}");
            assert_eq!(e.line, 0);
        }
        let mut help = fam(b"g", 1, &[gauge_metric(&[], 1.0)]);
        len_field(&mut help, 2, b"\xc3");
        assert!(decode(&delimited(&[help])).unwrap_err().msg.contains("HELP text is not valid UTF-8"));
        let mut body = delimited(&[ok]);
        body.extend_from_slice(&[0x10, 0x0a]);
        let e = decode(&body).unwrap_err();
        assert!(e.msg.starts_with("message 2: truncated"), "{e}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let boundaries = {
            let mut b = vec![0];
            let mut rest = BASIC_PB;
            while !rest.is_empty() {
                let len = varint(&mut rest).unwrap() as usize;
                rest = &rest[len..];
                b.push(BASIC_PB.len() - rest.len());
            }
            b
        };
        for cut in 0..BASIC_PB.len() {
            let r = decode(&BASIC_PB[..cut]);
            assert_eq!(r.is_ok(), boundaries.contains(&cut), "cut at {cut}: {r:?}");
        }
        // Flipped bytes: errors or renders, never panics.
        for i in 0..BASIC_PB.len() {
            let mut b = BASIC_PB.to_vec();
            b[i] ^= 0x55;
            let _ = decode(&b);
        }
    }

    #[test]
    fn max_series_counts_rendered_lines() {
        let bump = Bump::new();
        let n = text(BASIC_TXT).iter().map(|f| f.series as usize).sum::<usize>();
        assert!(parse(BASIC_PB, &grouping(), &bump, n).is_ok());
        let e = parse(BASIC_PB, &grouping(), &bump, n - 1).unwrap_err();
        assert!(e.msg.contains(&format!("more than {} series", n - 1)), "{e}");
    }
}
