//! The fast text parser (`ringgate::text::parse`: memchr, arena, borrowed slices) checked
//! against `reference`, a slow parser written here from the text format 0.0.4 spec, Go's
//! `expfmt.TextParser` and the tolerances listed in `src/text.rs`: plain `String`/`char` code,
//! one line at a time, clear over fast.
//!
//! Both get the same body and grouping key and must agree on everything observable: refuse
//! or accept, the line number of the refusal, and each family's name, type, HELP and
//! rendered sample lines. Bodies come from two generators: structured valid bodies (every
//! type, HELP/TYPE present or not, escapes and non-ASCII in label values, every float
//! spelling, blanks and tabs between tokens, CRLF, comments, trailing commas, families whose
//! samples are not contiguous) and the same bodies with random bytes and snippets inserted,
//! deleted or replaced. `PROPTEST_CASES=20000 cargo test --test prop_parser` for a long run.

use std::collections::{BTreeMap, HashSet};

use bumpalo::Bump;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use ringgate::grouping::GroupKey;

/// One rendered family, as both parsers are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fam {
    name: String,
    mtype: String,
    /// Escaped as in the exposition format.
    help: Option<String>,
    samples: String,
    series: u32,
}

/// The families sorted by name (the store sorts them anyway), or the 1-based line of the error.
type Outcome = Result<Vec<Fam>, u32>;

fn fast(body: &[u8], key: &GroupKey) -> Outcome {
    let bump = Bump::new();
    let fams = ringgate::text::parse(body, &key.injected(), &bump).map_err(|e| e.line)?;
    let mut out: Vec<Fam> = fams
        .into_iter()
        .map(|f| Fam {
            name: f.name.to_string(),
            mtype: f.mtype.as_str().to_string(),
            help: f.help.map(|h| h.to_string()),
            samples: String::from_utf8(f.samples.plain().to_vec()).expect("rendered samples are UTF-8"),
            series: f.series,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn slow(body: &[u8], key: &GroupKey) -> Outcome {
    let url: Vec<(String, String)> = key.labels().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    reference::parse(body, &url)
}

/// The reference parser.
///
/// What it accepts, line by line (lines split on `\n`, one `\r` before it dropped):
/// - blank lines, and comments: any line whose first non-blank is `#` and whose first word
///   is not exactly `HELP` or `TYPE` (its bytes are not looked at);
/// - `# HELP name text` and `# TYPE name type`. As in Go, a HELP/TYPE line that ends right
///   after the keyword or after the name is a comment; the name must be a metric name; HELP
///   text must be UTF-8 with only `\\` and `\n` escapes; the type is one of the five, in any
///   case (Go upper-cases it), followed by nothing but blanks. One HELP and one TYPE per
///   family, the TYPE before the family's first sample;
/// - `name[{label="value",...}] value`: blanks and tabs around every token, a trailing comma,
///   label values with `\\`, `\"` and `\n` escapes and any other UTF-8; the value one of the
///   float spellings Go's `strconv.ParseFloat` reads (no `p`, `P`, `_`, no signed NaN, nothing
///   beyond the largest float); nothing but blanks after the value (no timestamp).
///
/// A name is looked up as Go does: the family of that exact name, else for `x_bucket` a
/// histogram `x`, for `x_sum` and `x_count` a histogram or summary `x`, else a new family;
/// HELP and TYPE lines look names up the same way. A histogram's samples need a suffix,
/// `_bucket` needs an `le` float label, a summary's unsuffixed samples a `quantile` float
/// label (Go would silently drop such samples).
///
/// Which error is reported when there are several: first the first line that breaks the
/// syntax or the rules above, a duplicate label name and a missing `le`/`quantile` included;
/// then, family by family in order of first mention, the first sample repeating an earlier
/// series of its family (same name and labels once the grouping labels are merged in).
mod reference {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Type {
        Counter,
        Gauge,
        Histogram,
        Summary,
        Untyped,
    }

    impl Type {
        fn from_word(word: &str) -> Option<Type> {
            match word.to_ascii_lowercase().as_str() {
                "counter" => Some(Type::Counter),
                "gauge" => Some(Type::Gauge),
                "histogram" => Some(Type::Histogram),
                "summary" => Some(Type::Summary),
                "untyped" => Some(Type::Untyped),
                _ => None,
            }
        }

        fn name(self) -> &'static str {
            match self {
                Type::Counter => "counter",
                Type::Gauge => "gauge",
                Type::Histogram => "histogram",
                Type::Summary => "summary",
                Type::Untyped => "untyped",
            }
        }
    }

    /// Which label a sample must carry.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Needs {
        Nothing,
        Le,
        Quantile,
    }

    struct Sample {
        name: String,
        /// (name, unescaped value) in body order.
        labels: Vec<(String, String)>,
        value: String,
        needs: Needs,
        line: u32,
    }

    struct Family {
        name: String,
        mtype: Option<Type>,
        /// Unescaped.
        help: Option<String>,
        samples: Vec<Sample>,
    }

    /// Any error: the caller knows the line.
    struct Bad;

    pub fn parse(body: &[u8], url: &[(String, String)]) -> Outcome {
        let mut families: Vec<Family> = Vec::new();
        let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        if lines.last() == Some(&&b""[..]) {
            lines.pop(); // what follows the final newline is not a line
        }
        for (i, line) in lines.iter().enumerate() {
            let line_no = i as u32 + 1;
            parse_line(line, line_no, &mut families).map_err(|Bad| line_no)?;
        }

        let mut out = Vec::new();
        for fam in families.iter().filter(|f| !f.samples.is_empty()) {
            let mut seen = HashSet::new();
            let mut text = String::new();
            for s in &fam.samples {
                let id = series_id(s, url);
                if !seen.insert(id.clone()) {
                    return Err(s.line);
                }
                text.push_str(&format!("{id} {}\n", s.value));
            }
            out.push(Fam {
                name: fam.name.clone(),
                mtype: fam.mtype.unwrap_or(Type::Untyped).name().to_string(),
                help: fam.help.as_deref().map(escape_help),
                samples: text,
                series: fam.samples.len() as u32,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn parse_line(line: &[u8], line_no: u32, families: &mut Vec<Family>) -> Result<(), Bad> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let blanks = line.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let line = &line[blanks..];
        if line.is_empty() {
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix(b"#") {
            let words = String::from_utf8_lossy(comment);
            let keyword = words.trim_start_matches([' ', '\t']).split([' ', '\t']).next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                return Ok(());
            }
            // Everything after the keyword is a name, a HELP text or a type: UTF-8 or wrong.
            let text = std::str::from_utf8(comment).map_err(|_| Bad)?;
            let rest = text.trim_start_matches([' ', '\t'])[4..].trim_start_matches([' ', '\t']);
            return if keyword == "HELP" { help_line(rest, families) } else { type_line(rest, families) };
        }
        // Every byte of a valid sample line is ASCII or inside a label value, which must be UTF-8.
        let text = std::str::from_utf8(line).map_err(|_| Bad)?;
        sample_line(text, line_no, families)
    }

    fn help_line(rest: &str, families: &mut Vec<Family>) -> Result<(), Bad> {
        let (name, text) = split_word(rest);
        if name.is_empty() {
            return Ok(());
        }
        if !is_metric_name(name) {
            return Err(Bad);
        }
        let text = text.trim_start_matches([' ', '\t']);
        if text.is_empty() {
            return Ok(());
        }
        let mut help = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\') => help.push('\\'),
                    Some('n') => help.push('\n'),
                    _ => return Err(Bad),
                },
                c => help.push(c),
            }
        }
        let fam = resolve(name, families);
        if families[fam].help.is_some() {
            return Err(Bad);
        }
        families[fam].help = Some(help);
        Ok(())
    }

    fn type_line(rest: &str, families: &mut Vec<Family>) -> Result<(), Bad> {
        let (name, rest) = split_word(rest);
        if name.is_empty() {
            return Ok(());
        }
        if !is_metric_name(name) {
            return Err(Bad);
        }
        let (word, rest) = split_word(rest.trim_start_matches([' ', '\t']));
        if word.is_empty() {
            return Ok(());
        }
        if !rest.trim_matches([' ', '\t']).is_empty() {
            return Err(Bad);
        }
        let mtype = Type::from_word(word).ok_or(Bad)?;
        let fam = resolve(name, families);
        let fam = &mut families[fam];
        if fam.mtype.is_some() || !fam.samples.is_empty() {
            return Err(Bad);
        }
        fam.mtype = Some(mtype);
        Ok(())
    }

    fn sample_line(line: &str, line_no: u32, families: &mut Vec<Family>) -> Result<(), Bad> {
        let mut c = Cursor { chars: line.chars().collect(), at: 0 };
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
        if !is_metric_name(&name) {
            return Err(Bad);
        }
        c.skip_blanks();
        let mut labels = Vec::new();
        if c.eat('{') {
            loop {
                c.skip_blanks();
                if c.eat('}') {
                    break;
                }
                let label = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                if !is_label_name(&label) || label.starts_with("__") {
                    return Err(Bad);
                }
                c.skip_blanks();
                if !c.eat('=') {
                    return Err(Bad);
                }
                c.skip_blanks();
                if !c.eat('"') {
                    return Err(Bad);
                }
                let mut value = String::new();
                loop {
                    match c.next().ok_or(Bad)? {
                        '"' => break,
                        '\\' => match c.next() {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            _ => return Err(Bad),
                        },
                        ch => value.push(ch),
                    }
                }
                labels.push((label, value));
                c.skip_blanks();
                if c.eat(',') {
                    continue;
                }
                if c.eat('}') {
                    break;
                }
                return Err(Bad);
            }
            c.skip_blanks();
        }
        let value = c.take_while(|ch| ch != ' ' && ch != '\t');
        if !go_float(&value) {
            return Err(Bad);
        }
        c.skip_blanks();
        if c.at < c.chars.len() {
            return Err(Bad); // a timestamp, or anything else
        }

        let fam = resolve(&name, families);
        let fam = &mut families[fam];
        let needs = match (fam.mtype, name == fam.name) {
            (Some(Type::Histogram), true) => return Err(Bad),
            (Some(Type::Summary), true) => Needs::Quantile,
            (Some(Type::Histogram), false) if name.ends_with("_bucket") => Needs::Le,
            _ => Needs::Nothing,
        };
        let sample = Sample { name, labels, value, needs, line: line_no };
        check_labels(&sample)?;
        fam.samples.push(sample);
        Ok(())
    }

    /// The family a sample, HELP or TYPE name belongs to; created when there is none.
    fn resolve(name: &str, families: &mut Vec<Family>) -> usize {
        if let Some(i) = families.iter().position(|f| f.name == name) {
            return i;
        }
        let parents: [(&str, &[Type]); 3] = [
            ("_bucket", &[Type::Histogram]),
            ("_sum", &[Type::Histogram, Type::Summary]),
            ("_count", &[Type::Histogram, Type::Summary]),
        ];
        for (suffix, types) in parents {
            if let Some(base) = name.strip_suffix(suffix) {
                let parent =
                    families.iter().position(|f| f.name == base && f.mtype.is_some_and(|t| types.contains(&t)));
                if let Some(i) = parent {
                    return i;
                }
            }
        }
        families.push(Family { name: name.to_string(), mtype: None, help: None, samples: Vec::new() });
        families.len() - 1
    }

    fn check_labels(s: &Sample) -> Result<(), Bad> {
        let mut names: Vec<&str> = s.labels.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Bad);
        }
        let needed = match s.needs {
            Needs::Nothing => return Ok(()),
            Needs::Le => "le",
            Needs::Quantile => "quantile",
        };
        match s.labels.iter().find(|(n, _)| n == needed) {
            Some((_, v)) if go_float(v) => Ok(()),
            _ => Err(Bad),
        }
    }

    /// `name{labels}` with the grouping labels merged in: URL labels replace body labels of the
    /// same name, `instance=""` is added when neither has an instance; sorted by name.
    fn series_id(s: &Sample, url: &[(String, String)]) -> String {
        let mut labels: BTreeMap<&str, &str> = s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        for (n, v) in url {
            labels.insert(n, v);
        }
        labels.entry("instance").or_insert("");
        let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{}\"", escape_value(v))).collect();
        format!("{}{{{}}}", s.name, pairs.join(","))
    }

    /// What `strconv.ParseFloat` reads, less what Go's text parser refuses on top (`p`, `P`,
    /// `_`, which rule out hex floats and digit separators).
    pub fn go_float(s: &str) -> bool {
        if s.contains(['p', 'P', '_']) {
            return false;
        }
        let unsigned = s.strip_prefix(['+', '-']);
        let word = unsigned.unwrap_or(s).to_ascii_lowercase();
        if word == "inf" || word == "infinity" {
            return true;
        }
        if word == "nan" {
            return unsigned.is_none(); // Go reads no sign before NaN
        }
        let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
        let (mantissa, exponent) = match word.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (word.as_str(), None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
            return false;
        }
        if let Some(e) = exponent {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e.is_empty() || !digits(e) {
                return false;
            }
        }
        // Go refuses a number beyond the largest float (ErrRange) rather than making it Inf.
        s.parse::<f64>().is_ok_and(f64::is_finite)
    }

    fn is_metric_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn is_label_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn escape_value(v: &str) -> String {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    }

    fn escape_help(v: &str) -> String {
        v.replace('\\', "\\\\").replace('\n', "\\n")
    }

    /// The first blank-delimited word and what follows it.
    fn split_word(s: &str) -> (&str, &str) {
        let end = s.find([' ', '\t']).unwrap_or(s.len());
        s.split_at(end)
    }

    struct Cursor {
        chars: Vec<char>,
        at: usize,
    }

    impl Cursor {
        fn next(&mut self) -> Option<char> {
            let c = self.chars.get(self.at).copied();
            self.at += 1;
            c
        }

        fn eat(&mut self, want: char) -> bool {
            let hit = self.chars.get(self.at) == Some(&want);
            if hit {
                self.at += 1;
            }
            hit
        }

        fn skip_blanks(&mut self) {
            self.take_while(|c| c == ' ' || c == '\t');
        }

        fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
            let start = self.at;
            while self.chars.get(self.at).is_some_and(|&c| f(c)) {
                self.at += 1;
            }
            self.chars[start.min(self.chars.len())..self.at].iter().collect()
        }
    }
}

// --- Generators ---

/// Family names, some of them the `_sum`/`_count`/`_bucket` of another.
const NAMES: &[&str] = &["a", "a_sum", "a_count", "a_bucket", "b", "b_total", "node_cpu_seconds_total", ":c", "_d"];
/// Label names, some of them also grouping labels or the special `le` and `quantile`.
const LABELS: &[&str] = &["a", "b", "code", "instance", "job", "zone", "_x", "le", "quantile", "k9"];
/// Grouping keys: URL labels that collide with body labels, escapes, base64, empty instance.
const PATHS: &[&str] = &[
    "job/j",
    "job/j/instance/i",
    "job/some%20job/a/from-url",
    "job@base64/YSJiXGMKZCDDqS94/zone/z",
    "job/j/instance@base64/=",
    "job/j/code/500/b/x",
];
const FLOATS: &[&str] = &[
    "0",
    "1",
    "-1",
    "1.5",
    "-0.25",
    "1e-3",
    "1E6",
    "-2.5e+10",
    ".5",
    "5.",
    "+3",
    "NaN",
    "nan",
    "+Inf",
    "-Inf",
    "Inf",
    "inf",
    "+infinity",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "007",
];
const BUCKETS: &[&str] = &["0.1", "1", "10", "1e3", "+Inf"];
const QUANTILES: &[&str] = &["0", "0.5", "0.99", "1"];
/// Lines slipped in anywhere: comments, blanks, and HELP/TYPE lines Go takes as comments.
const EXTRA_LINES: &[&str] = &[
    "",
    "   ",
    "\t",
    "#",
    "# just a comment",
    "#  EOF",
    "# HELPS a x",
    "# help a x",
    "# HELP",
    "# TYPE  \t",
    "# HELP zz",
    "# TYPE zz",
    "# TYPE zz ",
    "# ÿþ non-ASCII in a comment",
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Counter,
    Gauge,
    Untyped,
    Histogram,
    Summary,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

#[derive(Clone, Debug)]
struct FamSpec {
    name: &'static str,
    kind: Kind,
    /// Whether the TYPE line is written, and how its type word is spelt.
    typed: bool,
    upper: bool,
    help: Option<String>,
    /// 0: HELP before TYPE, 1: TYPE before HELP, 2: HELP after the samples.
    help_at: u8,
    series: Vec<BTreeMap<&'static str, String>>,
    buckets: Vec<&'static str>,
    quantiles: Vec<&'static str>,
}

/// Choices for blanks, tabs, line ends and orders, consumed in turn while writing a body.
struct Noise {
    bytes: Vec<u8>,
    at: usize,
}

impl Noise {
    fn next(&mut self) -> u8 {
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        b
    }

    /// Blanks between two tokens that may touch.
    fn blanks(&mut self) -> &'static str {
        match self.next() % 16 {
            0..=8 => "",
            9..=12 => " ",
            13 => "\t",
            14 => "  ",
            _ => " \t ",
        }
    }

    /// Blanks between two tokens that must not touch.
    fn sep(&mut self) -> &'static str {
        match self.next() % 8 {
            0..=5 => " ",
            6 => "\t",
            _ => " \t  ",
        }
    }

    fn eol(&mut self) -> &'static str {
        if self.next() % 6 == 0 {
            "\r\n"
        } else {
            "\n"
        }
    }

    fn one_in(&mut self, n: u8) -> bool {
        self.next() % n == 0
    }
}

fn label_value() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => prop::char::range('0', '9'),
        1 => prop::sample::select(vec!['\\', '"', '\n', 'é', '日', '😀', ' ', '\t', '}', '{', ',', '=', '#', '\r']),
    ];
    prop::collection::vec(ch, 0..8).prop_map(|v| v.into_iter().collect())
}

fn help_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => Just(' '),
        1 => prop::sample::select(vec!['\\', '\n', '"', 'é', '日', '\t', '#', '{']),
    ];
    prop::collection::vec(ch, 1..20).prop_map(|v| v.into_iter().collect())
}

fn fam_spec() -> impl Strategy<Value = FamSpec> {
    let kind = prop::sample::select(vec![Kind::Counter, Kind::Gauge, Kind::Untyped, Kind::Histogram, Kind::Summary]);
    let labels = prop::collection::btree_map(prop::sample::select(LABELS), label_value(), 0..4);
    (
        prop::sample::select(NAMES),
        kind,
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.7, help_text()),
        0u8..3,
        prop::collection::vec(labels, 1..4),
        prop::sample::subsequence(BUCKETS, 0..=BUCKETS.len()),
        prop::sample::subsequence(QUANTILES, 0..=QUANTILES.len()),
    )
        .prop_map(|(name, kind, typed, upper, help, help_at, series, buckets, quantiles)| FamSpec {
            name,
            kind,
            typed,
            upper,
            help,
            help_at,
            series,
            buckets,
            quantiles,
        })
}

/// A body most of whose instances both parsers accept (see `generator_makes_mostly_valid_bodies`).
/// Body bytes, shown as an escaped byte string when a case fails.
#[derive(Clone)]
struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

fn valid_body() -> impl Strategy<Value = Body> {
    let values = prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FLOATS).prop_map(str::to_string),
            1 => any::<f64>().prop_map(|f| format!("{f}")),
            1 => any::<f64>().prop_map(|f| format!("{f:e}")),
            1 => any::<i64>().prop_map(|i| i.to_string()),
        ],
        16,
    );
    let extra = prop::collection::vec((any::<Index>(), prop::sample::select(EXTRA_LINES)), 0..4);
    (
        prop::collection::vec(fam_spec(), 1..5),
        values,
        extra,
        any::<bool>(),
        prop::bool::weighted(0.9),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(|(fams, values, extra, interleave, final_newline, noise)| {
            Body(write_body(fams, &values, &extra, interleave, final_newline, Noise { bytes: noise, at: 0 }))
        })
}

fn write_body(
    mut fams: Vec<FamSpec>,
    values: &[String],
    extra: &[(Index, &str)],
    interleave: bool,
    final_newline: bool,
    mut nz: Noise,
) -> Vec<u8> {
    let mut seen = HashSet::new();
    fams.retain(|f| seen.insert(f.name));
    let mut next_value = values.iter().cycle();
    let mut headers: Vec<String> = Vec::new();
    let mut samples: Vec<String> = Vec::new();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for f in &fams {
        let help = f.help.as_ref().map(|h| {
            let kw = if nz.one_in(8) { "#HELP" } else { "# HELP" };
            format!("{kw}{}{}{}{}", nz.sep(), f.name, nz.sep(), h.replace('\\', "\\\\").replace('\n', "\\n"))
        });
        let ty = f.typed.then(|| {
            let word = if f.upper { f.kind.word().to_uppercase() } else { f.kind.word().to_string() };
            format!("#{}TYPE{}{}{}{}{}", nz.sep(), nz.sep(), f.name, nz.sep(), word, nz.blanks())
        });
        let mut lines = Vec::new();
        for (i, labels) in f.series.iter().enumerate() {
            let mut labels: Vec<(String, String)> = labels.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
            // Series after the first get a distinct label, so most bodies have no duplicates.
            if i > 0 {
                labels.push(("s".into(), i.to_string()));
            }
            let mut line = |suffix: &str, extra: Option<(&str, &str)>, labels: &[(String, String)]| {
                let mut all: Vec<(String, String)> = labels.to_vec();
                if let Some((n, v)) = extra {
                    let at = nz.next() as usize % (all.len() + 1);
                    all.retain(|(name, _)| name != n);
                    all.insert(at.min(all.len()), (n.to_string(), v.to_string()));
                }
                sample_line(&mut nz, &format!("{}{suffix}", f.name), &all, next_value.next().unwrap())
            };
            match f.kind {
                Kind::Counter | Kind::Gauge | Kind::Untyped => lines.push(line("", None, &labels)),
                Kind::Histogram => {
                    for le in &f.buckets {
                        lines.push(line("_bucket", Some(("le", le)), &labels));
                    }
                    lines.push(line("_sum", None, &labels));
                    lines.push(line("_count", None, &labels));
                }
                Kind::Summary => {
                    for q in &f.quantiles {
                        lines.push(line("", Some(("quantile", q)), &labels));
                    }
                    lines.push(line("_sum", None, &labels));
                    lines.push(line("_count", None, &labels));
                }
            }
        }
        let mut block = Vec::new();
        match f.help_at {
            0 => block.extend(help.clone().into_iter().chain(ty.clone())),
            _ => block.extend(ty.clone().into_iter().chain(if f.help_at == 1 { help.clone() } else { None })),
        }
        headers.extend(block.iter().cloned());
        if interleave {
            samples.extend(lines.iter().cloned());
        }
        block.extend(lines);
        if f.help_at == 2 {
            block.extend(help.clone());
        }
        blocks.push(block);
    }
    let mut lines: Vec<String> = if interleave {
        // All headers first, then every sample in a shuffled order: families not contiguous.
        for i in (1..samples.len()).rev() {
            let j = nz.next() as usize % (i + 1);
            samples.swap(i, j);
        }
        headers.into_iter().chain(samples).collect()
    } else {
        blocks.into_iter().flatten().collect()
    };
    for (at, line) in extra {
        let i = at.index(lines.len() + 1);
        lines.insert(i, line.to_string());
    }
    let mut body = String::new();
    for (i, line) in lines.iter().enumerate() {
        body.push_str(&" ".repeat(nz.one_in(10) as usize));
        body.push_str(line);
        if i + 1 < lines.len() || final_newline {
            body.push_str(nz.eol());
        }
    }
    body.into_bytes()
}

fn sample_line(nz: &mut Noise, name: &str, labels: &[(String, String)], value: &str) -> String {
    let mut s = String::from(name);
    if labels.is_empty() && !nz.one_in(4) {
        s.push_str(nz.sep());
    } else {
        s.push_str(nz.blanks());
        s.push('{');
        for (i, (n, v)) in labels.iter().enumerate() {
            if i > 0 {
                s.push_str(nz.blanks());
                s.push(',');
            }
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            s.push_str(&format!("{}{n}{}={}\"{escaped}\"", nz.blanks(), nz.blanks(), nz.blanks()));
        }
        if !labels.is_empty() && nz.one_in(4) {
            s.push(',');
        }
        s.push_str(nz.blanks());
        s.push('}');
        s.push_str(nz.blanks());
    }
    s.push_str(value);
    if nz.one_in(10) {
        s.push_str(nz.sep());
    }
    s
}

/// Bytes and snippets a mutation inserts: the format's punctuation, float letters, invalid
/// UTF-8, and fragments that change a line's meaning.
const BYTES: &[u8] = b"{}\"\\,= \t\n\r#a1e.-+_:NIxp\xff\xc3\xa9\x00";
const SNIPPETS: &[&str] = &[
    "# TYPE a histogram\n",
    "# TYPE a summary\n",
    "# TYPE a_sum gauge\n",
    "# TYPE a_bucket counter\n",
    "# TYPE a Gauge\n",
    "# HELP a_count x\n",
    "# HELP a\n",
    "# TYPE a\n",
    "le=\"1\",",
    "le=\"+Inf\",",
    "quantile=\"0.5\",",
    "quantile=\"x\",",
    "_sum",
    "_count",
    "_bucket",
    " 1",
    " 1700000000",
    "1e400",
    "-1e999",
    "+NaN",
    "-nan",
    "Infinity",
    "0x1p3",
    "1_000",
    "\\\"",
    "\\n",
    "\\x",
    "__",
    "a{b=\"1\"} 1\n",
    "a 2\n",
    "a_bucket{le=\"0.5\"} 1\n",
    "a_sum 1\n",
];

#[derive(Clone, Debug)]
enum Mutation {
    Insert(Index, u8),
    Delete(Index),
    Replace(Index, u8),
    Snippet(Index, &'static str),
    /// Repeat a line right after itself.
    DupLine(Index),
    DropLine(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![3 => prop::sample::select(BYTES), 1 => any::<u8>()];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), prop::sample::select(SNIPPETS)).prop_map(|(i, s)| Mutation::Snippet(i, s)),
        any::<Index>().prop_map(Mutation::DupLine),
        any::<Index>().prop_map(Mutation::DropLine),
    ]
}

fn mutate(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let line_bounds = |body: &[u8], i: &Index| {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(body.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1))
                .filter(|&s| s < body.len())
                .collect();
            let start = starts[i.index(starts.len())];
            let end = body[start..].iter().position(|&b| b == b'\n').map_or(body.len(), |e| start + e + 1);
            (start, end)
        };
        match m {
            Mutation::Insert(i, b) => body.insert(i.index(body.len() + 1), *b),
            Mutation::Snippet(i, s) => {
                let at = i.index(body.len() + 1);
                body.splice(at..at, s.bytes());
            }
            _ if body.is_empty() => {}
            Mutation::Delete(i) => {
                body.remove(i.index(body.len()));
            }
            Mutation::Replace(i, b) => {
                let at = i.index(body.len());
                body[at] = *b;
            }
            Mutation::DupLine(i) => {
                let (start, end) = line_bounds(&body, i);
                let mut line = body[start..end].to_vec();
                if !line.ends_with(b"\n") {
                    line.insert(0, b'\n');
                }
                body.splice(end..end, line);
            }
            Mutation::DropLine(i) => {
                let (start, end) = line_bounds(&body, i);
                body.drain(start..end);
            }
        }
    }
    body
}

fn config(cases: u32) -> Config {
    let mut c = Config { failure_persistence: None, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

fn agree(body: &[u8], path: &str) -> Result<(), TestCaseError> {
    let key = GroupKey::from_path(path).expect("valid test path");
    let (f, s) = (fast(body, &key), slow(body, &key));
    prop_assert_eq!(&f, &s, "fast vs reference on {:?} at {}", String::from_utf8_lossy(body), path);
    Ok(())
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn valid_bodies_agree(body in valid_body(), path in prop::sample::select(PATHS)) {
        agree(&body.0, path)?;
    }

    #[test]
    fn mutated_bodies_agree(
        body in valid_body(),
        mutations in prop::collection::vec(mutation(), 1..5),
        path in prop::sample::select(PATHS),
    ) {
        agree(&mutate(body.0, &mutations), path)?;
    }

    #[test]
    fn floats_agree_with_go(s in "[-+]?([0-9]{0,3}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{0,4})?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN]|0[xX][0-9a-f.p]{1,4}|[0-9_.eEpP+-]{1,6})") {
        prop_assert_eq!(ringgate::expo::valid_float(s.as_bytes()), reference::go_float(&s), "{:?}", s);
    }
}

/// The generator is worth its cases only if most of its bodies are valid.
#[test]
fn generator_makes_mostly_valid_bodies() {
    let mut runner = TestRunner::deterministic();
    let strategy = (valid_body(), prop::sample::select(PATHS));
    let n = 200;
    let mut accepted = 0;
    for _ in 0..n {
        let (body, path) = strategy.new_tree(&mut runner).unwrap().current();
        accepted += usize::from(slow(&body.0, &GroupKey::from_path(path).unwrap()).is_ok());
    }
    assert!(accepted * 10 >= n * 7, "only {accepted} of {n} generated bodies are valid");
}

fn both(body: &str, path: &str) -> (Outcome, Outcome) {
    let key = GroupKey::from_path(path).unwrap();
    (fast(body.as_bytes(), &key), slow(body.as_bytes(), &key))
}

#[test]
fn real_payloads_agree() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let files = [
        format!("{dir}/../shared/data/node-exporter-2cpu.prom"),
        format!("{dir}/../shared/data/prometheus-server.prom"),
        format!("{dir}/tests/fixtures/basic.txt"),
        format!("{dir}/tests/fixtures/gpu.txt"),
        format!("{dir}/tests/fixtures/python_client.txt"),
    ];
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        for path in PATHS {
            let (fast, slow) = both(&body, path);
            // Some paths collide with body labels (`code`), making duplicate series: both refuse.
            assert!(fast.is_ok() || *path != "job/j", "{f}: {fast:?}");
            assert_eq!(fast, slow, "{f} at {path}");
        }
    }
}

/// Each disagreement the property tests found, settled by the spec and Go's parser, with the
/// outcome both parsers must now give.
#[test]
fn settled_disagreements() {
    let fam = |name: &str, mtype: &str, help: Option<&str>, samples: &str| Fam {
        name: name.into(),
        mtype: mtype.into(),
        help: help.map(Into::into),
        series: samples.lines().count() as u32,
        samples: samples.into(),
    };
    let cases: Vec<(&str, Outcome)> = vec![
        // Floats Rust reads and Go refuses: the fast parser took them, and Prometheus then
        // failed every scrape of the gateway on them.
        ("a +NaN\n", Err(1)),
        ("a -nan\n", Err(1)),
        ("a 1\na 1e400\n", Err(2)),
        ("# TYPE h histogram\nh_bucket{le=\"-1e999\"} 1\n", Err(2)),
        ("a -Infinity\n", Ok(vec![fam("a", "untyped", None, "a{instance=\"\",job=\"j\"} -Infinity\n")])),
        // HELP/TYPE lines ending after the keyword or the name are comments to Go; the fast
        // parser refused them or recorded an empty HELP.
        ("# HELP\n# TYPE \na 1\n", Ok(vec![fam("a", "untyped", None, "a{instance=\"\",job=\"j\"} 1\n")])),
        (
            "# HELP a\n# HELP a x\n# TYPE a\n# TYPE a gauge\na 1\n",
            Ok(vec![fam("a", "gauge", Some("x"), "a{instance=\"\",job=\"j\"} 1\n")]),
        ),
        // Go upper-cases the TYPE word.
        ("# TYPE a COUNTER\na 1\n", Ok(vec![fam("a", "counter", None, "a{instance=\"\",job=\"j\"} 1\n")])),
        // A summary has no buckets: `a_bucket` is a family of its own (the fast parser refused it).
        (
            "# TYPE a summary\na_bucket 1\n",
            Ok(vec![fam("a_bucket", "untyped", None, "a_bucket{instance=\"\",job=\"j\"} 1\n")]),
        ),
        // HELP/TYPE names are looked up as sample names are: `a_sum` belongs to summary `a`
        // (the fast parser made a gauge family `a_sum` next to summary `a`).
        ("# TYPE a summary\n# TYPE a_sum gauge\na_sum 1\n", Err(2)),
        (
            "# TYPE a summary\n# HELP a_count The count.\na_count 1\n",
            Ok(vec![fam("a", "summary", Some("The count."), "a_count{instance=\"\",job=\"j\"} 1\n")]),
        ),
    ];
    for (body, want) in cases {
        let (fast, slow) = both(body, "job/j");
        assert_eq!(fast, want, "fast parser on {body:?}");
        assert_eq!(slow, want, "reference on {body:?}");
    }
}
