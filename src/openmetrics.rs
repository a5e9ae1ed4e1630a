//! OpenMetrics text bodies (`application/openmetrics-text`), accepted by rewriting them into
//! text format 0.0.4 in the request arena and handing that to [`crate::text`].
//!
//! Why a pre-pass and not a second parser: the two grammars share names, label sets, escapes
//! and values; what differs is family naming, a few types, and extras 0.0.4 cannot carry. A
//! rewrite that maps exactly one input line to one output line keeps every error's line
//! number right, and leaves one parser (and one set of validations) for both formats. The
//! rewrite copies the body once into the arena; nothing is allocated on the heap per sample.
//!
//! The mapping is the one the official clients use when they write an OpenMetrics registry
//! as 0.0.4 (client_python's `generate_latest`, Prometheus' own text output):
//!
//! | OpenMetrics family `foo` of type | 0.0.4 family                                    |
//! |---|---|
//! | counter (samples `foo_total`)    | counter `foo_total` (HELP and TYPE renamed)      |
//! | gauge, histogram, summary        | the same                                        |
//! | unknown                          | untyped `foo`                                   |
//! | info (samples `foo_info`)        | gauge `foo_info`                                |
//! | stateset                         | gauge `foo` (one series per state, value 0/1)   |
//! | gaugehistogram                   | refused, see below                              |
//!
//! - `gaugehistogram` is refused with a message: 0.0.4 has no type for it. As a `histogram`
//!   it would claim counter semantics its buckets do not have; as a gauge family it cannot
//!   hold `_bucket`, `_gcount` and `_gsum` samples under one name; splitting it would invent
//!   families the client never declared. The client can push those series as gauges.
//! - `_created` samples of counters, histograms and summaries are dropped: 0.0.4 has no place
//!   for them and a pushed series is stamped by the scrape anyway.
//! - Exemplars (` # {labels} value [timestamp]` after a sample) are stripped.
//! - `# UNIT` lines are dropped (the unit already ends the family name).
//! - HELP text: OpenMetrics' `\"` escape becomes a plain `"`, as 0.0.4 writes it.
//! - Sample timestamps are refused, as in every push format.
//! - `# EOF` must be the last line (a final newline after it is allowed); any text after it is
//!   refused. A completely empty body is taken as an empty push (no families), like an
//!   empty text body, so an empty PUT empties its group whatever its Content-Type.
//! - A counter family's samples must be named `<family>_total` (a family already declared as
//!   `foo_total` may use `foo_total` itself); info samples `<family>_info`, likewise.
//! - Beyond that the 0.0.4 parser's leniency applies (blank lines, other comments, samples of
//!   a family that are not contiguous): the point is to take what clients send, not to lint it.

use ahash::AHashMap;
use bumpalo::collections::Vec as BVec;
use bumpalo::Bump;
use memchr::{memchr, memchr_iter};

use crate::expo::{BodyError, RenderedFamily};
use crate::grouping::InjectedLabel;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OmType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Unknown,
    Info,
    StateSet,
}

impl OmType {
    fn parse(s: &[u8]) -> Option<OmType> {
        Some(match s {
            b"counter" => OmType::Counter,
            b"gauge" => OmType::Gauge,
            b"histogram" => OmType::Histogram,
            b"gaugehistogram" => OmType::GaugeHistogram,
            b"summary" => OmType::Summary,
            b"unknown" => OmType::Unknown,
            b"info" => OmType::Info,
            b"stateset" => OmType::StateSet,
            _ => return None,
        })
    }

    /// The 0.0.4 type written in the TYPE line.
    fn text_type(self) -> &'static [u8] {
        match self {
            OmType::Counter => b"counter",
            OmType::Gauge | OmType::Info | OmType::StateSet => b"gauge",
            OmType::Histogram => b"histogram",
            OmType::Summary => b"summary",
            OmType::Unknown | OmType::GaugeHistogram => b"untyped",
        }
    }

    /// The suffix the family's 0.0.4 name gains (unless it already ends with it).
    fn name_suffix(self) -> &'static [u8] {
        match self {
            OmType::Counter => b"_total",
            OmType::Info => b"_info",
            _ => b"",
        }
    }

    /// Sample-name suffixes that belong to a family of this type.
    fn suffixes(self) -> &'static [&'static [u8]] {
        match self {
            OmType::Counter => &[b"_total", b"_created"],
            OmType::Histogram => &[b"_bucket", b"_count", b"_sum", b"_created"],
            OmType::Summary => &[b"_count", b"_sum", b"_created"],
            OmType::Info => &[b"_info"],
            _ => &[],
        }
    }
}

/// Parses an OpenMetrics body and renders its families with `grouping` injected, refusing
/// more than `max_series` samples.
pub fn parse<'a>(
    body: &'a [u8],
    grouping: &[InjectedLabel<'_>],
    bump: &'a Bump,
    max_series: usize,
) -> Result<Vec<RenderedFamily>, BodyError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let text = to_text(body, bump)?;
    crate::text::parse_with_limit(text, grouping, bump, max_series)
}

/// Rewrites an OpenMetrics body as 0.0.4 text, one output line per input line.
fn to_text<'a>(body: &'a [u8], bump: &'a Bump) -> Result<&'a [u8], BodyError> {
    let content = strip_eof(body)?;

    // Pass 1: family types, since a HELP line may come before its TYPE.
    let mut types: AHashMap<&'a [u8], OmType> = AHashMap::new();
    let mut metadata = 0usize;
    for_each_line(content, |line, line_no| {
        let Some(rest) = line.strip_prefix(b"#") else {
            return Ok(());
        };
        let (keyword, rest) = token(rest);
        if keyword == b"TYPE" {
            let (name, rest) = token(rest);
            let (ty, _) = token(rest);
            let t = OmType::parse(ty).ok_or_else(|| {
                BodyError::new(line_no, format!("unknown OpenMetrics type {:?} for {:?}", lossy(ty), lossy(name)))
            })?;
            if t == OmType::GaugeHistogram {
                return Err(BodyError::new(
                    line_no,
                    format!(
                        "gaugehistogram {:?} has no equivalent in text format 0.0.4 and is not accepted; \
                         push its series as gauges",
                        lossy(name)
                    ),
                ));
            }
            types.insert(name, t);
        }
        metadata += usize::from(keyword == b"TYPE" || keyword == b"HELP");
        Ok(())
    })?;

    // Pass 2: the rewrite. Names only grow by `_total`/`_info` in HELP and TYPE lines.
    let mut out = BVec::with_capacity_in(content.len() + 1 + metadata * 6, bump);
    for_each_line(content, |line, line_no| {
        if let Some(rest) = line.strip_prefix(b"#") {
            metadata_line(line, rest, line_no, &types, &mut out)?;
        } else {
            sample_line(line, line_no, &types, &mut out)?;
        }
        out.push(b'\n');
        Ok(())
    })?;
    Ok(out.into_bump_slice())
}

/// Checks the `# EOF` ending and returns what precedes it.
fn strip_eof(body: &[u8]) -> Result<&[u8], BodyError> {
    let b = body.strip_suffix(b"\n").unwrap_or(body);
    match b.strip_suffix(b"# EOF") {
        Some(content) if content.is_empty() || content.ends_with(b"\n") => Ok(content),
        _ => {
            let lines = memchr_iter(b'\n', b).count() as u32 + 1;
            Err(BodyError::new(lines, "OpenMetrics body must end with a \"# EOF\" line"))
        }
    }
}

/// Calls `f` with each line (without its `\n`) and its 1-based number.
fn for_each_line<'a>(
    content: &'a [u8],
    mut f: impl FnMut(&'a [u8], u32) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    let mut pos = 0;
    let mut line_no = 0u32;
    while pos < content.len() {
        let end = memchr(b'\n', &content[pos..]).map_or(content.len(), |i| pos + i);
        line_no += 1;
        f(&content[pos..end], line_no)?;
        pos = end + 1;
    }
    Ok(())
}

/// A `#` line: TYPE and HELP renamed, UNIT dropped, `# EOF` before the end refused, other
/// comments kept (the text parser ignores them).
fn metadata_line<'a>(
    line: &'a [u8],
    rest: &'a [u8],
    line_no: u32,
    types: &AHashMap<&'a [u8], OmType>,
    out: &mut BVec<'_, u8>,
) -> Result<(), BodyError> {
    let (keyword, after) = token(rest);
    match keyword {
        b"EOF" if token(after).0.is_empty() => {
            Err(BodyError::new(line_no + 1, "text after \"# EOF\" (it must be the last line)"))
        }
        b"UNIT" => Ok(()),
        b"TYPE" => {
            let (name, rest) = token(after);
            let t = types.get(name).copied().unwrap_or(OmType::Unknown);
            out.extend_from_slice(b"# TYPE ");
            push_name(out, name, t);
            out.push(b' ');
            out.extend_from_slice(t.text_type());
            // Let the text parser see anything after the type, to refuse it.
            out.extend_from_slice(token(rest).1);
            Ok(())
        }
        b"HELP" => {
            let (name, rest) = token(after);
            let t = types.get(name).copied().unwrap_or(OmType::Unknown);
            out.extend_from_slice(b"# HELP ");
            push_name(out, name, t);
            out.push(b' ');
            let mut text = skip_blank(rest);
            // OpenMetrics escapes `"` in HELP text; 0.0.4 writes it as is.
            while let Some(i) = memchr(b'\\', text) {
                out.extend_from_slice(&text[..i]);
                match text.get(i + 1) {
                    Some(b'"') => out.push(b'"'),
                    Some(&c) => out.extend_from_slice(&[b'\\', c]),
                    None => out.push(b'\\'),
                }
                text = &text[(i + 2).min(text.len())..];
            }
            out.extend_from_slice(text);
            Ok(())
        }
        _ => {
            out.extend_from_slice(line);
            Ok(())
        }
    }
}

/// The 0.0.4 name of family `name` of type `t`.
fn push_name(out: &mut BVec<'_, u8>, name: &[u8], t: OmType) {
    out.extend_from_slice(name);
    let suffix = t.name_suffix();
    if !name.ends_with(suffix) {
        out.extend_from_slice(suffix);
    }
}

/// A sample line: `_created` dropped, exemplar stripped, timestamps refused, counter and info
/// sample names checked; everything else is left for the text parser to judge.
fn sample_line<'a>(
    line: &'a [u8],
    line_no: u32,
    types: &AHashMap<&'a [u8], OmType>,
    out: &mut BVec<'_, u8>,
) -> Result<(), BodyError> {
    let (name, _) = take_name(line);
    if name.is_empty() {
        out.extend_from_slice(line);
        return Ok(());
    }
    if let Some((family, t, suffix)) = family_of(name, types) {
        if suffix == b"_created" {
            return Ok(());
        }
        // A family declared with the suffix already (`# TYPE foo_total counter`) may use it.
        if suffix.is_empty() && !family.ends_with(t.name_suffix()) {
            return Err(BodyError::new(
                line_no,
                format!(
                    "{} sample {:?} must be named {:?}",
                    if t == OmType::Counter { "counter" } else { "info" },
                    lossy(name),
                    format!("{}{}", lossy(family), lossy(t.name_suffix()))
                ),
            ));
        }
    }
    // Skip the label set (its values may hold `#` and `}`) to find the value and what follows.
    let mut i = name.len();
    if line.get(i) == Some(&b'{') {
        let mut quoted = false;
        i += 1;
        while i < line.len() {
            match line[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        if i >= line.len() {
            // An unclosed label set: the text parser says so.
            out.extend_from_slice(line);
            return Ok(());
        }
        i += 1;
    }
    let tail = &line[i..];
    let tail = match memchr(b'#', tail) {
        Some(h) => &tail[..h],
        None => tail,
    };
    let (value, rest) = token(tail);
    if !value.is_empty() && !token(rest).0.is_empty() {
        return Err(BodyError::new(line_no, "samples with timestamps are not allowed in a push"));
    }
    out.extend_from_slice(&line[..i]);
    out.extend_from_slice(tail);
    Ok(())
}

/// The declared family a sample name belongs to, with the suffix that led there.
fn family_of<'a>(name: &'a [u8], types: &AHashMap<&'a [u8], OmType>) -> Option<(&'a [u8], OmType, &'static [u8])> {
    if let Some((&f, &t)) = types.get_key_value(name) {
        return Some((f, t, b""));
    }
    let cut = name.iter().rposition(|&c| c == b'_')?;
    let (base, suffix) = name.split_at(cut);
    let (&f, &t) = types.get_key_value(base)?;
    let s = t.suffixes().iter().find(|s| **s == suffix)?;
    Some((f, t, s))
}

fn take_name(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b':').count();
    s.split_at(n)
}

/// The next blank-separated token and what follows it.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let s = skip_blank(s);
    let n = s.iter().take_while(|&&c| c != b' ' && c != b'\t').count();
    s.split_at(n)
}

fn skip_blank(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &s[n..]
}

fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::GroupKey;

    fn grouping() -> Vec<InjectedLabel<'static>> {
        static KEY: std::sync::LazyLock<GroupKey> = std::sync::LazyLock::new(|| GroupKey::from_path("job/j").unwrap());
        KEY.injected()
    }

    fn om(body: &str) -> Result<Vec<RenderedFamily>, BodyError> {
        let bump = Bump::new();
        parse(body.as_bytes(), &grouping(), &bump, usize::MAX)
    }

    fn text(body: &str) -> Vec<RenderedFamily> {
        let bump = Bump::new();
        crate::text::parse(body.as_bytes(), &grouping(), &bump).unwrap()
    }

    #[test]
    fn python_client_fixture_matches_its_text_output() {
        let got = om(include_str!("../tests/fixtures/python_client.om")).unwrap();
        let want = text(include_str!("../tests/fixtures/python_client.txt"));
        assert_eq!(got, want);
        let names: Vec<&str> = got.iter().map(|f| &*f.name).collect();
        assert_eq!(
            names,
            ["requests_total", "latency_seconds", "payload_bytes", "build_info", "state", "temperature_celsius"]
        );
    }

    #[test]
    fn types_map_onto_text_types() {
        let body = "# HELP c A \\\"counter\\\".\n\
                    # TYPE c counter\n\
                    # UNIT c widgets\n\
                    c_total{a=\"1 # {x}\"} 1 # {trace_id=\"t\"} 1 1.5\n\
                    c_created{a=\"1 # {x}\"} 1.7e9\n\
                    # TYPE already_total counter\n\
                    already_total 2\n\
                    # TYPE u unknown\n\
                    u 3\n\
                    # TYPE i info\n\
                    i_info{v=\"1\"} 1\n\
                    # TYPE s stateset\n\
                    s{s=\"a\"} 1\n\
                    s{s=\"b\"} 0\n\
                    no_type 4\n\
                    # TYPE h histogram\n\
                    h_bucket{le=\"1\"} 0 # {t=\"x\"} 0.5\n\
                    h_bucket{le=\"+Inf\"} 1\n\
                    h_count 1\n\
                    h_sum 2\n\
                    h_created 1.7e9\n\
                    # TYPE q summary\n\
                    q{quantile=\"0.5\"} 1\n\
                    q_count 1\n\
                    q_sum 1\n\
                    q_created 1.7e9\n\
                    # TYPE g gauge\n\
                    g_created 1\n\
                    # EOF\n";
        let want = "# HELP c_total A \"counter\".\n\
                    # TYPE c_total counter\n\
                    c_total{a=\"1 # {x}\"} 1\n\
                    # TYPE already_total counter\n\
                    already_total 2\n\
                    # TYPE u untyped\n\
                    u 3\n\
                    # TYPE i_info gauge\n\
                    i_info{v=\"1\"} 1\n\
                    # TYPE s gauge\n\
                    s{s=\"a\"} 1\n\
                    s{s=\"b\"} 0\n\
                    no_type 4\n\
                    # TYPE h histogram\n\
                    h_bucket{le=\"1\"} 0\n\
                    h_bucket{le=\"+Inf\"} 1\n\
                    h_count 1\n\
                    h_sum 2\n\
                    # TYPE q summary\n\
                    q{quantile=\"0.5\"} 1\n\
                    q_count 1\n\
                    q_sum 1\n\
                    g_created 1\n";
        // `g_created` is a series of its own: only counters, histograms and summaries have
        // `_created` samples. As 0.0.4 it is an untyped family of that name.
        let got = om(body).unwrap();
        let want = text(want);
        assert_eq!(got, want);
        assert_eq!(got.last().unwrap().name.as_ref(), "g_created");
    }

    #[test]
    fn exemplar_stripping_skips_label_values() {
        let got = om("a{x=\"}\\\"} # {\",y=\"#\"} 1 # {t=\"}\"} 2 3\n# EOF\n").unwrap();
        assert_eq!(
            std::str::from_utf8(&got[0].samples.plain()).unwrap(),
            "a{instance=\"\",job=\"j\",x=\"}\\\"} # {\",y=\"#\"} 1\n"
        );
    }

    #[test]
    fn help_before_type_is_renamed_too() {
        let got = om("# HELP c Help.\n# TYPE c counter\nc_total 1\n# EOF").unwrap();
        assert_eq!(got, text("# HELP c_total Help.\n# TYPE c_total counter\nc_total 1\n"));
        let got = om("# TYPE c counter\n# HELP c Help.\nc_total 1\n# EOF\n").unwrap();
        assert_eq!(got[0].help.as_deref(), Some("Help."));
        assert_eq!(&*got[0].name, "c_total");
    }

    #[test]
    fn eof_rules() {
        assert!(om("").unwrap().is_empty());
        assert!(om("# EOF").unwrap().is_empty());
        assert!(om("# EOF\n").unwrap().is_empty());
        let e = om("a 1\n").unwrap_err();
        assert!(e.msg.contains("# EOF"), "{e}");
        let e = om("a 1\n# EOF\n\n").unwrap_err();
        assert!(e.msg.contains("# EOF"), "{e}");
        let e = om("a 1\n# EOF\nb 1\n# EOF\n").unwrap_err();
        assert!(e.msg.contains("after \"# EOF\""), "{e}");
        assert_eq!(e.line, 3);
        assert!(om("a 1\n#EOF\n").is_err());
    }

    #[test]
    fn rejections_keep_line_numbers() {
        let cases = [
            ("# TYPE g gaugehistogram\n", 2, "gaugehistogram"),
            ("# TYPE g foo\n", 2, "unknown OpenMetrics type"),
            ("a 1 1700000000\n", 2, "timestamps"),
            ("a 1 1700000000.5 # {t=\"1\"} 1\n", 2, "timestamps"),
            ("# TYPE c counter\nc 1\n", 3, "must be named \"c_total\""),
            ("# TYPE i info\ni 1\n", 3, "must be named \"i_info\""),
            ("# TYPE h histogram\nh 1\n", 3, "does not belong to histogram"),
            ("x{a=\"1\",a=\"2\"} 1\n", 2, "duplicate label"),
            ("x{__a=\"1\"} 1\n", 2, "reserved"),
            ("x{a=\"1\" 1\n", 2, "label"),
            ("x 1\nx 2\n", 3, "duplicate series"),
            ("# HELP x a\\qb\n", 2, "escape"),
        ];
        for (body, line, want) in cases {
            let e = om(&format!("# HELP ok fine\n{body}# EOF\n")).unwrap_err();
            assert!(e.msg.contains(want), "{body:?}: {e}");
            assert_eq!(e.line, line, "{body:?}: {e}");
        }
    }

    #[test]
    fn max_series_is_passed_on() {
        let bump = Bump::new();
        let body = b"# TYPE c counter\nc_total{a=\"1\"} 1\nc_total{a=\"2\"} 1\nc_created{a=\"1\"} 1\n# EOF\n";
        assert!(parse(body, &grouping(), &bump, 2).is_ok());
        assert!(parse(body, &grouping(), &bump, 1).unwrap_err().msg.contains("more than 1 series"));
    }
}
