//! A strict line-by-line checker for Prometheus text format 0.0.4, used by the unit tests
//! and by `--dump` to prove that every generated payload is something a gateway must accept.
//!
//! Checks: every non-comment line is `name{labels} value` (no timestamp), names and label
//! names are valid, label values are properly quoted/escaped, values parse as floats, each
//! family has at most one HELP and one TYPE (before its samples), families are contiguous and
//! declared once, samples belong to their family (`_sum`/`_count`/`_bucket` for summaries
//! and histograms), no series appears twice, and the text ends with a newline.

use std::collections::HashSet;

#[derive(Debug, Default, Clone)]
pub struct ExpoStats {
    pub families: usize,
    pub samples: usize,
    pub max_labels: usize,
}

fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

fn parse_value(v: &str) -> bool {
    matches!(v, "NaN" | "+Inf" | "-Inf") || (!v.is_empty() && v.parse::<f64>().is_ok())
}

/// Parses `{a="b",c="d"}` starting at `s[0] == '{'`; returns (label names, bytes consumed).
fn parse_labels(s: &str) -> Result<(Vec<String>, usize), String> {
    let b = s.as_bytes();
    let mut i = 1;
    let mut names = Vec::new();
    loop {
        if i >= b.len() {
            return Err("unterminated label set".into());
        }
        if b[i] == b'}' {
            return Ok((names, i + 1));
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let name = &s[start..i];
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("duplicate label {name:?}"));
        }
        names.push(name.to_string());
        i += 1;
        if i >= b.len() || b[i] != b'"' {
            return Err(format!("label {name:?}: value not quoted"));
        }
        i += 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return Err(format!("label {name:?}: unterminated value")),
                Some(b'\\') => {
                    match b.get(i + 1) {
                        Some(b'\\') | Some(b'"') | Some(b'n') => {}
                        _ => return Err(format!("label {name:?}: bad escape")),
                    }
                    i += 2;
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err(format!("after label {name:?}: expected ',' or '}}'")),
        }
    }
}

struct Fam {
    name: String,
    typ: Option<String>,
    has_help: bool,
    has_samples: bool,
}

fn belongs(sample: &str, fam: &Fam) -> bool {
    if sample == fam.name {
        return true;
    }
    let Some(suffix) = sample.strip_prefix(fam.name.as_str()) else {
        return false;
    };
    match fam.typ.as_deref() {
        Some("summary") => matches!(suffix, "_sum" | "_count"),
        Some("histogram") => matches!(suffix, "_sum" | "_count" | "_bucket"),
        _ => false,
    }
}

/// Validates a whole exposition; the error names the 1-based line.
pub fn check(text: &str) -> Result<ExpoStats, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("text does not end with a newline".into());
    }
    let mut st = ExpoStats::default();
    let mut seen_fams: HashSet<String> = HashSet::new();
    let mut seen_series: HashSet<&str> = HashSet::new();
    let mut cur: Option<Fam> = None;
    for (n, line) in text.lines().enumerate() {
        let ln = n + 1;
        let err = |m: String| format!("line {ln}: {m}: {line:?}");
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.strip_prefix(' ').unwrap_or(c);
            let mut parts = c.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            if kw != "HELP" && kw != "TYPE" {
                continue; // plain comment
            }
            let name = parts.next().unwrap_or("");
            let rest = parts.next().unwrap_or("");
            if !valid_metric_name(name) {
                return Err(err(format!("invalid family name {name:?}")));
            }
            let same = cur.as_ref().is_some_and(|f| f.name == name);
            if !same {
                if !seen_fams.insert(name.to_string()) {
                    return Err(err(format!("family {name} declared twice")));
                }
                st.families += 1;
                cur = Some(Fam { name: name.to_string(), typ: None, has_help: false, has_samples: false });
            }
            let f = cur.as_mut().unwrap();
            if f.has_samples {
                return Err(err(format!("{kw} after samples of {name}")));
            }
            if kw == "HELP" {
                if f.has_help {
                    return Err(err(format!("second HELP for {name}")));
                }
                f.has_help = true;
            } else {
                if f.typ.is_some() {
                    return Err(err(format!("second TYPE for {name}")));
                }
                if !matches!(rest, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                    return Err(err(format!("unknown type {rest:?}")));
                }
                f.typ = Some(rest.to_string());
            }
            continue;
        }
        // Sample line.
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(err(format!("invalid metric name {name:?}")));
        }
        let mut rest = &line[name_end..];
        let mut nlabels = 0;
        if rest.starts_with('{') {
            let (names, used) = parse_labels(rest).map_err(err)?;
            nlabels = names.len();
            rest = &rest[used..];
        }
        let value = rest.strip_prefix(' ').ok_or_else(|| err("expected one space before the value".into()))?;
        if value.contains(' ') {
            return Err(err("extra field after the value (timestamp?)".into()));
        }
        if !parse_value(value) {
            return Err(err(format!("invalid value {value:?}")));
        }
        let series = &line[..line.len() - value.len() - 1];
        if !seen_series.insert(series) {
            return Err(err("duplicate series".into()));
        }
        let fits = cur.as_ref().is_some_and(|f| belongs(name, f));
        if !fits {
            // An untyped family without HELP/TYPE starts here.
            if !seen_fams.insert(name.to_string()) {
                return Err(err(format!("samples of {name} not contiguous")));
            }
            st.families += 1;
            cur = Some(Fam { name: name.to_string(), typ: None, has_help: false, has_samples: false });
        }
        cur.as_mut().unwrap().has_samples = true;
        st.samples += 1;
        st.max_labels = st.max_labels.max(nlabels);
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_good() {
        let t = "# HELP a_total A thing.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\n\"} 3\na_total{x=\"2\"} 1.5e+06\n# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1\ns_count 2\nuntyped_one 1\n";
        let st = check(t).unwrap();
        assert_eq!(st.families, 3);
        assert_eq!(st.samples, 6);
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            "a 1 1700000000\n",
            "a{x=\"1\"} 1\nb 2\na{x=\"2\"} 3\n",
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",
            "# TYPE a gauge\na 1\n# TYPE a gauge\n",
            "a{x=1} 1\n",
            "a{x=\"1\"} one\n",
            "a 1\na 2\n",
            "a 1",
            "1a 1\n",
            "a{__x-y=\"1\"} 1\n",
            "# TYPE a weird\na 1\n",
        ] {
            assert!(check(bad).is_err(), "accepted {bad:?}");
        }
    }
}
