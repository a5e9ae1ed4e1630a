//! The text exposition format 0.0.4 parser.
//!
//! It scans with memchr, borrows every name, label value and float from the request body, and
//! keeps its per-family sample lists in the request's bumpalo arena: nothing is allocated on
//! the heap per sample. Each label set is rendered (sorted, grouping labels merged in) as its
//! line is read, once per distinct label text of the body ([`SetMemo`]); each family is then
//! written once by [`FamilyRenderer`] from those sets.
//!
//! Accepted beyond the strict grammar, as Prometheus' own parser (Go's `expfmt`) does: blank
//! lines, comments that are not HELP/TYPE, a HELP or TYPE line that stops after its keyword or
//! its name (a comment to Go), TYPE words in any case, spaces and tabs between tokens, a
//! trailing comma in a label set, samples of one family that are not contiguous. Also
//! accepted, where Go is stricter: CRLF line ends (the `\r` is dropped), blanks after the
//! value or the type, a last line without its newline.
//!
//! Refused where Go accepts: sample timestamps (a pushed sample is stamped by the scrape),
//! `__` label names, a repeated `le` or `quantile` label, a histogram sample without suffix,
//! a `_bucket` without `le` and a summary sample without `quantile` (Go drops those three
//! silently), `\"` in HELP text (newer Go reads it, older parsers of our scrape would not),
//! quoted UTF-8 names. Values and `le`/`quantile` are floats both Go and Rust read (see
//! [`valid_float`]). `tests/prop_parser.rs` checks all this against a slow reference parser.

use ahash::AHashMap;
use bumpalo::collections::Vec as BVec;
use bumpalo::Bump;
use memchr::{memchr, memchr2, memrchr};

use crate::expo::{
    is_metric_name, plain_decimal, sample_suffix_ok, valid_float, BodyError, FamilyRenderer, LabelSets, MetricType,
    Needs, RenderedFamily,
};
use crate::grouping::InjectedLabel;

struct Sample<'a> {
    name: &'a [u8],
    /// The label set as rendered, `{` to `}`, grouping labels merged in: a range of the
    /// body's rendered sets, shared by every sample of the body with the same label text.
    set: Set,
    value: &'a [u8],
    line: u32,
}

/// A rendered label set: its range of the rendered sets of one body.
#[derive(Clone, Copy)]
struct Set {
    start: u32,
    end: u32,
}

/// Label sets rendered so far, by the body text between `{` and `}`.
///
/// Exporters repeat label sets: a GPU exporter writes the same 11 labels of each GPU in every
/// family, a node exporter the same `cpu`/`device` sets across families. A set seen before is
/// then one hash of its text and one copy of its rendered bytes, instead of parsing, sorting,
/// checking and merging its labels again. Only sets that were rendered without error are
/// kept, and everything a set is checked for depends on its text alone (the role's `le` or
/// `quantile` is checked per sample against [`Needs`]), so a reused set is exactly what
/// rendering it again would give. When a body repeats too few sets to pay for the hashing, the
/// memo turns itself off for the rest of the body.
struct SetMemo<'a> {
    sets: AHashMap<&'a [u8], (Set, Needs<'a>)>,
    /// The set of samples without labels (`name value` or `name{} value`).
    empty: Option<(Set, Needs<'a>)>,
    on: bool,
    lookups: u32,
    hits: u32,
}

impl<'a> SetMemo<'a> {
    /// Lookups after which the hit rate is judged, and the least rate (1 in `MIN_HIT_RATE`)
    /// that keeps the memo on.
    const TRIAL: u32 = 256;
    const MIN_HIT_RATE: u32 = 4;

    fn get(&mut self, key: &[u8]) -> Option<(Set, Needs<'a>)> {
        if !self.on {
            return None;
        }
        self.lookups += 1;
        let found = self.sets.get(key).copied();
        if found.is_some() {
            self.hits += 1;
        } else if self.lookups == Self::TRIAL && self.hits * Self::MIN_HIT_RATE < self.lookups {
            self.on = false;
            self.sets = AHashMap::new();
        }
        found
    }
}

struct Family<'a> {
    name: &'a [u8],
    mtype: Option<MetricType>,
    help: Option<&'a [u8]>,
    samples: BVec<'a, Sample<'a>>,
    /// Bytes of the sample lines, to size the render buffer once.
    bytes: usize,
}

thread_local! {
    /// The label-set buffer of the last body parsed on this thread, empty, for the next one.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer larger than this is not kept for the next body.
const SCRATCH_KEPT: usize = 16 << 20;

/// The buffer a body's label sets are rendered into, taken from the thread and given back
/// (emptied) when dropped, whether the body parsed or not. A node exporter's sets fill about
/// a megabyte: allocated per body, that is a fresh mapping whose every page faults and is
/// zeroed again for each push (glibc maps blocks over 128 KiB on their own, see
/// `sys::tune_allocator`).
struct Scratch(Vec<u8>);

impl Scratch {
    fn take(capacity: usize) -> Scratch {
        let mut v = SCRATCH.try_with(|c| c.take()).unwrap_or_default();
        v.reserve(capacity);
        Scratch(v)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.capacity() <= SCRATCH_KEPT {
            let mut v = std::mem::take(&mut self.0);
            v.clear();
            let _ = SCRATCH.try_with(|c| c.set(v));
        }
    }
}

/// Parses a text-format body and renders its families with `grouping` injected.
pub fn parse<'a>(
    body: &'a [u8],
    grouping: &[InjectedLabel<'_>],
    bump: &'a Bump,
) -> Result<Vec<RenderedFamily>, BodyError> {
    parse_with_limit(body, grouping, bump, usize::MAX)
}

/// As [`parse`], refusing a body with more than `max_series` samples.
pub fn parse_with_limit<'a>(
    body: &'a [u8],
    grouping: &[InjectedLabel<'_>],
    bump: &'a Bump,
    max_series: usize,
) -> Result<Vec<RenderedFamily>, BodyError> {
    let mut families: Vec<Family<'a>> = Vec::new();
    let mut index: AHashMap<&'a [u8], usize> = AHashMap::new();
    let mut labels: Vec<(&'a [u8], &'a [u8])> = Vec::with_capacity(16);
    let sets = LabelSets::new(grouping);
    let mut memo = SetMemo { sets: AHashMap::new(), empty: None, on: true, lookups: 0, hits: 0 };
    // Every label set rendered for this body, one after the other.
    let mut scratch = Scratch::take(body.len() / 4);
    let rendered = &mut scratch.0;
    let mut last: Option<(&'a [u8], usize)> = None;
    let mut pos = 0usize;
    let mut line_no = 0u32;
    let mut total = 0usize;
    // One pass over the whole body (ASCII runs a word at a time) instead of one call per
    // label value and HELP text; when it fails, they are checked one by one to say where.
    let utf8 = std::str::from_utf8(body).is_ok();
    while pos < body.len() {
        let end = memchr(b'\n', &body[pos..]).map_or(body.len(), |i| pos + i);
        let mut line = &body[pos..end];
        pos = end + 1;
        line_no += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let line = skip_blank(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b'#' {
            comment(&line[1..], line_no, utf8, &mut families, &mut index, bump)?;
            continue;
        }
        // Samples of one family mostly come one after the other, so a line mostly starts with
        // the name of the line before, checked already: one comparison of the bytes instead of
        // a class lookup per byte of a long name.
        let (name, rest, same_name) = match last {
            Some((n, _))
                if line.len() > n.len()
                    && line[..n.len()] == *n
                    && CLASS[line[n.len()] as usize] & METRIC_CHAR == 0 =>
            {
                (&line[..n.len()], &line[n.len()..], true)
            }
            _ => {
                let (name, rest) = split_class(line, METRIC_CHAR);
                // Every byte is a name character already: only the first may still be wrong.
                if !name.first().is_some_and(|c| !c.is_ascii_digit()) {
                    return Err(BodyError::new(line_no, format!("invalid metric name at {:?}", lossy_prefix(line))));
                }
                (name, rest, false)
            }
        };
        let rest = skip_blank(rest);
        let (set, needs, rest) = if let Some(inner) = rest.strip_prefix(b"{") {
            // When the line is well formed its last `}` closes the label set: nothing after
            // the set (blanks, a float) holds one. A set whose text was rendered before is
            // reused; the full parse below decides every other case.
            let key = memrchr(b'}', inner).map(|i| &inner[..i]);
            match key.and_then(|k| if k.is_empty() { memo.empty } else { memo.get(k) }) {
                Some((set, needs)) => (set, needs, skip_blank(&inner[key.map_or(0, |k| k.len() + 1)..])),
                None => {
                    labels.clear();
                    let after = label_set(inner, line_no, utf8, &mut labels)?;
                    let start = rendered.len() as u32;
                    let needs = sets.render(name, &mut labels, line_no, rendered)?;
                    let set = Set { start, end: rendered.len() as u32 };
                    match key {
                        // The parse ended at that last `}`: the key is the whole set.
                        Some(k) if after.as_ptr() == k.as_ptr().wrapping_add(k.len() + 1) => {
                            if k.is_empty() {
                                memo.empty = Some((set, needs));
                            } else if memo.on {
                                memo.sets.insert(k, (set, needs));
                            }
                        }
                        _ => {}
                    }
                    (set, needs, skip_blank(after))
                }
            }
        } else {
            let (set, needs) = match memo.empty {
                Some(e) => e,
                None => {
                    let start = rendered.len() as u32;
                    let needs = sets.render(name, &mut [], line_no, rendered)?;
                    let e = (Set { start, end: rendered.len() as u32 }, needs);
                    memo.empty = Some(e);
                    e
                }
            };
            (set, needs, rest)
        };
        // Mostly the value is a plain decimal that ends the line: then it is checked already.
        let (value, rest) = if plain_decimal(rest) {
            (rest, &rest[rest.len()..])
        } else {
            let (value, rest) = split_class(rest, NOT_BLANK);
            if value.is_empty() {
                return Err(BodyError::new(line_no, format!("sample {:?} has no value", lossy(name))));
            }
            if !valid_float(value) {
                return Err(BodyError::new(line_no, format!("invalid sample value {:?}", lossy(value))));
            }
            (value, skip_blank(rest))
        };
        if !rest.is_empty() {
            let msg = if rest.iter().all(|c| c.is_ascii_digit() || *c == b'-') {
                "samples with timestamps are not allowed in a push".to_string()
            } else {
                format!("unexpected text {:?} after the sample value", lossy(rest))
            };
            return Err(BodyError::new(line_no, msg));
        }
        total += 1;
        if total > max_series {
            return Err(BodyError::new(
                line_no,
                format!("push has more than {max_series} series (raise --push.max-series)"),
            ));
        }
        // Samples of one family mostly come one after the other: the name decides its family
        // for good once it has one (see `family_of`), so the last lookup is reused.
        let fi = match last {
            Some((_, i)) if same_name => i,
            Some((n, i)) if n == name => i,
            _ => family_of(name, &mut families, &mut index, bump)?,
        };
        last = Some((name, fi));
        let fam = &mut families[fi];
        let mtype = fam.mtype.unwrap_or(MetricType::Untyped);
        let role = sample_suffix_ok(mtype, fam.name, name).map_err(|m| BodyError::new(line_no, m))?;
        needs.check(name, role, line_no)?;
        fam.bytes += name.len() + (set.end - set.start) as usize + value.len() + 2;
        fam.samples.push(Sample { name, set, value, line: line_no });
    }

    // Every family into one buffer, sized once: the group's stored bytes.
    let size = families.iter().map(|f| f.bytes).sum();
    let mut r = FamilyRenderer::new(grouping, size);
    for fam in families {
        if fam.samples.is_empty() {
            continue;
        }
        for s in fam.samples {
            r.sample_with_set(s.name, &rendered[s.set.start as usize..s.set.end as usize], s.value, s.line);
        }
        r.end_family(fam.name, fam.mtype.unwrap_or(MetricType::Untyped), fam.help)?;
    }
    Ok(r.into_families())
}

/// Finds the family a sample name belongs to, creating an untyped one when none matches.
fn family_of<'a>(
    name: &'a [u8],
    families: &mut Vec<Family<'a>>,
    index: &mut AHashMap<&'a [u8], usize>,
    bump: &'a Bump,
) -> Result<usize, BodyError> {
    if let Some(&i) = index.get(name) {
        return Ok(i);
    }
    // A summary has no `_bucket` samples: `x_bucket` next to summary `x` is a family of its own.
    for (suffix, of_summary) in [(&b"_bucket"[..], false), (b"_sum", true), (b"_count", true)] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(&i) = index.get(base) {
                match families[i].mtype {
                    Some(MetricType::Histogram) => return Ok(i),
                    Some(MetricType::Summary) if of_summary => return Ok(i),
                    _ => {}
                }
            }
        }
    }
    Ok(new_family(name, None, families, index, bump))
}

fn new_family<'a>(
    name: &'a [u8],
    mtype: Option<MetricType>,
    families: &mut Vec<Family<'a>>,
    index: &mut AHashMap<&'a [u8], usize>,
    bump: &'a Bump,
) -> usize {
    families.push(Family { name, mtype, help: None, samples: BVec::new_in(bump), bytes: 0 });
    index.insert(name, families.len() - 1);
    families.len() - 1
}

/// A `#` line: HELP and TYPE are checked and recorded, anything else is a comment.
///
/// As in Go's parser, a HELP or TYPE line that ends after its keyword or after its metric name
/// is a comment too, and the name is looked up as a sample name is: `# TYPE x_sum gauge` after
/// `# TYPE x summary` is a second TYPE for `x`, not a new family (which strict parsers of the
/// scrape would refuse).
fn comment<'a>(
    line: &'a [u8],
    line_no: u32,
    utf8: bool,
    families: &mut Vec<Family<'a>>,
    index: &mut AHashMap<&'a [u8], usize>,
    bump: &'a Bump,
) -> Result<(), BodyError> {
    let line = skip_blank(line);
    let (keyword, rest) = take_while(line, |c| c != b' ' && c != b'\t');
    let is_help = keyword == b"HELP";
    if !is_help && keyword != b"TYPE" {
        return Ok(());
    }
    let (name, rest) = take_while(skip_blank(rest), |c| c != b' ' && c != b'\t');
    let rest = skip_blank(rest);
    if name.is_empty() {
        return Ok(());
    }
    if !is_metric_name(name) {
        return Err(BodyError::new(
            line_no,
            format!("invalid metric name {:?} in {} line", lossy(name), lossy(keyword)),
        ));
    }
    if rest.is_empty() {
        return Ok(());
    }
    if is_help {
        check_help(rest, line_no, utf8)?;
        let i = family_of(name, families, index, bump)?;
        let fam = &mut families[i];
        if fam.help.is_some() {
            return Err(BodyError::new(line_no, format!("second HELP line for {}", which(name, fam))));
        }
        fam.help = Some(rest);
        return Ok(());
    }
    let (ty, rest) = take_while(rest, |c| c != b' ' && c != b'\t');
    if !skip_blank(rest).is_empty() {
        return Err(BodyError::new(line_no, format!("unexpected text after TYPE of {:?}", lossy(name))));
    }
    let Some(mtype) = type_word(ty) else {
        return Err(BodyError::new(line_no, format!("unknown metric type {:?} for {:?}", lossy(ty), lossy(name))));
    };
    let i = family_of(name, families, index, bump)?;
    let fam = &mut families[i];
    if fam.mtype.is_some() {
        return Err(BodyError::new(line_no, format!("second TYPE line for {}", which(name, fam))));
    }
    if !fam.samples.is_empty() {
        return Err(BodyError::new(line_no, format!("TYPE line for {} after its samples", which(name, fam))));
    }
    fam.mtype = Some(mtype);
    Ok(())
}

/// A TYPE word in any case: Go's parser upper-cases it before looking it up.
fn type_word(ty: &[u8]) -> Option<MetricType> {
    let mut buf = [0u8; 9];
    let lower = buf.get_mut(..ty.len())?;
    lower.copy_from_slice(ty);
    lower.make_ascii_lowercase();
    MetricType::parse(lower)
}

/// Names the family of `name` in a message, saying so when it is a histogram or summary's.
fn which(name: &[u8], fam: &Family<'_>) -> String {
    if name == fam.name {
        format!("{:?}", lossy(name))
    } else {
        let t = fam.mtype.map_or("family", MetricType::as_str);
        format!("{:?} (a sample name of {t} {:?})", lossy(name), lossy(fam.name))
    }
}

/// HELP text: valid UTF-8 (already known when `utf8`, the whole body is), and only `\\` and
/// `\n` escapes.
fn check_help(text: &[u8], line_no: u32, utf8: bool) -> Result<(), BodyError> {
    if !utf8 && std::str::from_utf8(text).is_err() {
        return Err(BodyError::new(line_no, "HELP text is not valid UTF-8"));
    }
    let mut rest = text;
    while let Some(i) = memchr(b'\\', rest) {
        match rest.get(i + 1) {
            Some(b'\\' | b'n') => rest = &rest[i + 2..],
            _ => return Err(BodyError::new(line_no, "invalid escape sequence in HELP text (only \\\\ and \\n)")),
        }
    }
    Ok(())
}

/// Parses `name="value", ...}` (the `{` already consumed) into `out`; returns what follows `}`.
/// Values are checked for UTF-8 unless `utf8` says the whole body is.
fn label_set<'a>(
    mut s: &'a [u8],
    line_no: u32,
    utf8: bool,
    out: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<&'a [u8], BodyError> {
    loop {
        s = skip_blank(s);
        match s.first() {
            Some(b'}') => return Ok(&s[1..]),
            None => return Err(BodyError::new(line_no, "label set is not closed with '}'")),
            _ => {}
        }
        let (name, rest) = split_class(s, LABEL_CHAR);
        if !name.first().is_some_and(|c| !c.is_ascii_digit()) {
            return Err(BodyError::new(line_no, format!("invalid label name at {:?}", lossy_prefix(s))));
        }
        if name.starts_with(b"__") {
            return Err(BodyError::new(line_no, format!("label name {:?} is reserved (starts with __)", lossy(name))));
        }
        let rest = skip_blank(rest);
        let Some(rest) = rest.strip_prefix(b"=") else {
            return Err(BodyError::new(line_no, format!("expected '=' after label name {:?}", lossy(name))));
        };
        let rest = skip_blank(rest);
        let Some(rest) = rest.strip_prefix(b"\"") else {
            return Err(BodyError::new(line_no, format!("value of label {:?} must be quoted", lossy(name))));
        };
        let mut i = 0;
        loop {
            match memchr2(b'"', b'\\', &rest[i..]) {
                None => return Err(BodyError::new(line_no, format!("value of label {:?} is not closed", lossy(name)))),
                Some(j) if rest[i + j] == b'"' => {
                    i += j;
                    break;
                }
                Some(j) => match rest.get(i + j + 1) {
                    Some(b'\\' | b'"' | b'n') => i += j + 2,
                    _ => {
                        return Err(BodyError::new(
                            line_no,
                            format!("invalid escape sequence in value of label {:?}", lossy(name)),
                        ))
                    }
                },
            }
        }
        let value = &rest[..i];
        if !utf8 && std::str::from_utf8(value).is_err() {
            return Err(BodyError::new(line_no, format!("value of label {:?} is not valid UTF-8", lossy(name))));
        }
        out.push((name, value));
        s = skip_blank(&rest[i + 1..]);
        match s.first() {
            Some(b',') => s = &s[1..],
            Some(b'}') => return Ok(&s[1..]),
            _ => {
                return Err(BodyError::new(
                    line_no,
                    format!("expected ',' or '}}' after value of label {:?}", lossy(name)),
                ))
            }
        }
    }
}

#[inline]
fn skip_blank(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &s[n..]
}

/// Byte classes for [`split_class`]: the characters of metric names, of label names, and
/// everything but a blank (space, tab).
const METRIC_CHAR: u8 = 1;
const LABEL_CHAR: u8 = 2;
const NOT_BLANK: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            t[c] = METRIC_CHAR | LABEL_CHAR;
        } else if b == b':' {
            t[c] = METRIC_CHAR;
        }
        if b != b' ' && b != b'\t' {
            t[c] |= NOT_BLANK;
        }
        c += 1;
    }
    t
};

/// Splits `s` after its longest prefix of bytes in `class`: one table lookup per byte, the
/// inner loop of the parser.
#[inline]
fn split_class(s: &[u8], class: u8) -> (&[u8], &[u8]) {
    let mut n = 0;
    while n < s.len() && CLASS[s[n] as usize] & class != 0 {
        n += 1;
    }
    s.split_at(n)
}

#[inline]
fn take_while(s: &[u8], f: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&c| f(c)).count();
    s.split_at(n)
}

fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

fn lossy_prefix(s: &[u8]) -> String {
    let mut end = s.len().min(40);
    while end < s.len() && std::str::from_utf8(&s[..end]).is_err() && end < 44 {
        end += 1;
    }
    lossy(&s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::GroupKey;

    fn render(body: &str) -> Result<String, BodyError> {
        let key = GroupKey::from_path("job/j").unwrap();
        let bump = Bump::new();
        let fams = parse(body.as_bytes(), &key.injected(), &bump)?;
        let mut s = String::new();
        for f in fams {
            s.push_str(&format!("{} {} {:?}\n", f.name, f.mtype.as_str(), f.help));
            s.push_str(std::str::from_utf8(&f.samples.plain()).unwrap());
        }
        Ok(s)
    }

    /// The label-set buffer kept on this thread: its address and capacity.
    fn kept_scratch() -> (usize, usize) {
        SCRATCH.with(|c| {
            let v = c.take();
            let seen = (v.as_ptr() as usize, v.capacity());
            c.set(v);
            seen
        })
    }

    #[test]
    fn the_label_set_buffer_is_kept_for_the_next_body_even_after_an_error() {
        let body: String = (0..5000).map(|i| format!("m{{cpu=\"{i}\",mode=\"idle\"}} 1\n")).collect();
        render(&body).unwrap();
        let (addr, cap) = kept_scratch();
        assert!(cap >= 5000 * 20, "kept {cap} bytes");
        // The next body renders into the same buffer, and an error gives it back too.
        let bad = format!("{body}m{{cpu=\"0\",mode=\"idle\"}} 2\n");
        assert!(render(&bad).unwrap_err().msg.contains("duplicate series"));
        assert_eq!(kept_scratch(), (addr, cap));
        render(&body).unwrap();
        assert_eq!(kept_scratch(), (addr, cap));
    }

    #[test]
    fn renders_with_grouping_labels() {
        let out = render("# HELP a Some help\n# TYPE a counter\na{z=\"1\",b=\"x\"} 3\nb 1e3\n").unwrap();
        assert_eq!(
            out,
            "a counter Some(\"Some help\")\na{b=\"x\",instance=\"\",job=\"j\",z=\"1\"} 3\n\
             b untyped None\nb{instance=\"\",job=\"j\"} 1e3\n"
        );
    }

    #[test]
    fn body_instance_kept_url_job_wins() {
        let out = render("a{instance=\"i\",job=\"other\"} 1\n").unwrap();
        assert!(out.contains("a{instance=\"i\",job=\"j\"} 1\n"), "{out}");
    }

    #[test]
    fn histogram_and_summary_suffixes() {
        let ok = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1\ns_count 2\n";
        render(ok).unwrap();
        assert_eq!(render("# TYPE h histogram\nh 1\n").unwrap_err().line, 2);
        assert!(render("# TYPE h histogram\nh_bucket 1\n").unwrap_err().msg.contains("le"));
        assert!(render("# TYPE s summary\ns 1\n").unwrap_err().msg.contains("quantile"));
        assert!(render("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n").is_err());
    }

    #[test]
    fn rejections_name_the_line() {
        let cases = [
            ("a 1 1234\n", "timestamps"),
            ("a{b=\"1\",b=\"2\"} 1\n", "duplicate label"),
            ("a 1\na 2\n", "duplicate series"),
            ("a{__b=\"1\"} 1\n", "reserved"),
            ("a{b=\"\\x\"} 1\n", "escape"),
            ("a one\n", "invalid sample value"),
            ("1a 1\n", "invalid metric name"),
            ("a{b=1} 1\n", "quoted"),
            ("a{b=\"1\" 1\n", "expected ','"),
            ("# TYPE a gauge\n# TYPE a gauge\n", "second TYPE"),
            ("# TYPE a foo\n", "unknown metric type"),
            ("a 1\n# TYPE a gauge\n", "after its samples"),
            ("# HELP a x\\y\n", "escape"),
            ("a\n", "no value"),
        ];
        for (body, want) in cases {
            let e = render(&format!("# ok\n{body}")).unwrap_err();
            assert!(e.msg.contains(want), "{body:?}: {e}");
            assert!(e.line >= 2, "{body:?}: {e}");
        }
    }

    #[test]
    fn lines_after_one_of_the_same_name_are_read_in_full() {
        // Names that start with the name before, values that are not plain decimals, blanks
        // and timestamps after a value, each following a line of the same family.
        let body = "# TYPE a summary\na{quantile=\"0.5\"} 1\na_sum 2\na_count 3\na:x 4\n\
                    a{quantile=\"0.9\"} 5 \na{quantile=\"0.99\"}\t-6.5e3\nb 1\nb2 2\nc{x=\"1\"} NaN\nc{x=\"2\"} 7\n";
        let out = render(body).unwrap();
        for want in [
            "a{instance=\"\",job=\"j\",quantile=\"0.5\"} 1\n",
            "a{instance=\"\",job=\"j\",quantile=\"0.9\"} 5\n",
            "a{instance=\"\",job=\"j\",quantile=\"0.99\"} -6.5e3\n",
            "a_sum{instance=\"\",job=\"j\"} 2\n",
            "a_count{instance=\"\",job=\"j\"} 3\n",
            "a:x{instance=\"\",job=\"j\"} 4\n",
            "b2{instance=\"\",job=\"j\"} 2\n",
            "c{instance=\"\",job=\"j\",x=\"1\"} NaN\n",
        ] {
            assert!(out.contains(want), "{want:?} not in {out}");
        }
        assert!(out.contains("a:x untyped"), "{out}");
        for (body, want) in [
            ("a{x=\"1\"} 1\na{x=\"2\"} 2 1234\n", "timestamps"),
            ("a{x=\"1\"} 1\na{x=\"2\"} 2x\n", "invalid sample value"),
            ("a{x=\"1\"} 1\na\n", "no value"),
            ("a{x=\"1\"} 1\na{x=\"2\"}\n", "no value"),
            ("a{x=\"1\"} 1\na{x=\"2\"} 1e\n", "invalid sample value"),
            ("a{x=\"1\"} 1\na{x=\"1\"} 2\n", "duplicate series"),
        ] {
            let e = render(body).unwrap_err();
            assert!(e.msg.contains(want) && e.line == 2, "{body:?}: {e}");
        }
    }

    #[test]
    fn tolerated_forms() {
        let out = render("a { b = \"1\" , } -Inf\r\n\n# comment\n\tc\t+Inf\nd{}.5\n").unwrap();
        assert!(out.contains("a{b=\"1\",instance=\"\",job=\"j\"} -Inf\n"), "{out}");
        assert!(out.contains("d{instance=\"\",job=\"j\"} .5\n"), "{out}");
    }

    #[test]
    fn a_reused_label_set_is_checked_against_each_samples_role() {
        // The same label text, first in a gauge (where `le` is any label), then in a
        // histogram's buckets, where it must hold a float.
        let ok = "g{a=\"1\",le=\"0.5\"} 1\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"0.5\"} 1\nh_sum 1\nh_count 1\n";
        let out = render(ok).unwrap();
        assert!(out.contains("g{a=\"1\",instance=\"\",job=\"j\",le=\"0.5\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{a=\"1\",instance=\"\",job=\"j\",le=\"0.5\"} 1\n"), "{out}");
        let bad = "g{a=\"1\",le=\"x\"} 1\ng{a=\"2\"} 1\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"x\"} 1\n";
        let e = render(bad).unwrap_err();
        assert_eq!((e.line, e.msg.as_str()), (4, "label \"le\" must hold a float, got \"x\""));
        // A set without `le`, seen before, still lacks it in a bucket.
        let e = render("g{a=\"1\"} 1\n# TYPE h histogram\nh_bucket{a=\"1\"} 1\n").unwrap_err();
        assert_eq!((e.line, e.msg.as_str()), (3, "sample \"h_bucket\" needs a \"le\" label"));
    }

    #[test]
    fn label_sets_in_any_order_or_spacing_render_alike_and_collide_as_series() {
        let out = render("m{b=\"1\",a=\"}\"} 1\nn{b=\"1\",a=\"}\"}  2\nn{ a=\"}\", b=\"1\" } 3\n").unwrap_err();
        assert_eq!((out.line, out.msg.as_str()), (3, "duplicate series n{a=\"}\",b=\"1\",instance=\"\",job=\"j\"}"));
        let out = render("m{b=\"1\",a=\"}\"} 1\nn{b=\"1\",a=\"}\"}\t2\nn{b=\"2\",a=\"}\"} 3\n").unwrap();
        assert!(
            out.contains(
                "n{a=\"}\",b=\"1\",instance=\"\",job=\"j\"} 2\nn{a=\"}\",b=\"2\",instance=\"\",job=\"j\"} 3\n"
            ),
            "{out}"
        );
        // Text after a reused set is still checked.
        let e = render("m{a=\"1\"} 1\nn{a=\"1\"} 2 }\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn bodies_that_repeat_few_label_sets_render_the_same_without_the_memo() {
        // More distinct sets than the memo's trial, then repeats of the first ones: the memo
        // is off by then, and every set is rendered in full.
        let n = SetMemo::TRIAL as usize * 2;
        let mut body = String::new();
        let mut want = String::from("m untyped None\n");
        for i in 0..n {
            body.push_str(&format!("m{{z=\"{i}\",a=\"x\"}} {i}\n"));
            want.push_str(&format!("m{{a=\"x\",instance=\"\",job=\"j\",z=\"{i}\"}} {i}\n"));
        }
        want.push_str("n untyped None\n");
        for i in 0..n {
            body.push_str(&format!("n{{z=\"{i}\",a=\"x\"}} 1\n"));
            want.push_str(&format!("n{{a=\"x\",instance=\"\",job=\"j\",z=\"{i}\"}} 1\n"));
        }
        assert_eq!(render(&body).unwrap(), want);
    }

    #[test]
    fn real_payloads_parse() {
        for f in ["node-exporter-2cpu.prom", "prometheus-server.prom"] {
            let path = format!("{}/../shared/data/{f}", env!("CARGO_MANIFEST_DIR"));
            let Ok(body) = std::fs::read_to_string(&path) else { panic!("fixture {path} missing") };
            let out = render(&body).unwrap_or_else(|e| panic!("{f}: {e}"));
            let samples = body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
            assert_eq!(out.lines().filter(|l| l.contains('{')).count(), samples, "{f}");
        }
    }
}
