//! `GET /api/v1/status` and `GET /api/v1/metrics` in the Pushgateway's JSON shapes (its web
//! UI and clients read them), plus ringgate's own fields: each group's lifecycle, ttl and
//! owning shard.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config::{Config, Lifecycle};
use crate::expo::MetricType;
use crate::shard::GroupView;
use crate::store::format_float;

/// Appends `s` as a JSON string.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 in UTC with milliseconds, from Unix seconds.
pub fn rfc3339(t: f64) -> String {
    let secs = t.floor() as i64;
    let ms = ((t - secs as f64) * 1000.0).round().min(999.0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

pub fn status(cfg: &Config, start_time: f64, groups: usize) -> String {
    let mut o = String::from("{\"status\":\"success\",\"data\":{\"build_information\":{");
    let _ = write!(
        o,
        "\"version\":\"{}\",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}},",
        env!("CARGO_PKG_VERSION")
    );
    o.push_str("\"flags\":{");
    let flags: Vec<(&str, String)> = vec![
        ("web.listen-address", cfg.listen.to_string()),
        ("shards", cfg.shards.to_string()),
        ("lifecycle", cfg.lifecycle.as_str().into()),
        ("group.ttl", format!("{}s", cfg.group_ttl.as_secs_f64())),
        ("clear.max-age", format!("{}s", cfg.clear_max_age.as_secs_f64())),
        ("clear.scrapers", cfg.clear_scrapers.join(",")),
        ("persistence.file", cfg.persistence_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("persistence.interval", format!("{}s", cfg.persistence_interval.as_secs_f64())),
        ("web.enable-admin-api", cfg.admin_api.to_string()),
        ("web.enable-lifecycle", cfg.lifecycle_api.to_string()),
        ("push.max-body-size", cfg.max_body.to_string()),
        ("push.max-decompressed-size", cfg.max_decompressed.to_string()),
        ("push.max-in-flight", cfg.max_in_flight.to_string()),
        ("push.max-series", cfg.max_series.to_string()),
        ("store.max-groups", cfg.max_groups.to_string()),
        ("store.max-bytes", cfg.max_bytes.to_string()),
    ];
    for (i, (k, v)) in flags.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        json_str(&mut o, k);
        o.push(':');
        json_str(&mut o, v);
    }
    o.push_str("},\"start_time\":");
    json_str(&mut o, &rfc3339(start_time));
    let _ = write!(o, ",\"groups\":{groups}}}}}");
    o
}

/// Label names and unescaped values of one sample line.
type Labels<'a> = Vec<(&'a str, String)>;

/// One rendered sample line split back into its parts (our own canonical rendering).
fn split_sample(line: &str) -> Option<(&str, Labels<'_>, &str)> {
    let brace = line.find('{')?;
    let name = &line[..brace];
    let mut labels = Vec::new();
    let b = line.as_bytes();
    let mut i = brace + 1;
    while b.get(i) != Some(&b'}') {
        let eq = i + line[i..].find('=')?;
        let lname = &line[i..eq];
        let mut j = eq + 2;
        let mut value = String::new();
        while b[j] != b'"' {
            if b[j] == b'\\' {
                value.push(match b[j + 1] {
                    b'n' => '\n',
                    c => c as char,
                });
                j += 2;
            } else {
                let ch = line[j..].chars().next()?;
                value.push(ch);
                j += ch.len_utf8();
            }
        }
        labels.push((lname, value));
        i = j + 1;
        if b.get(i) == Some(&b',') {
            i += 1;
        }
    }
    Some((name, labels, line[i + 1..].trim()))
}

fn labels_json(out: &mut String, labels: &[(&str, String)]) {
    out.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, n);
        out.push(':');
        json_str(out, v);
    }
    out.push('}');
}

fn family_json(out: &mut String, ts: &str, mtype: MetricType, help: Option<&str>, samples: &str) {
    let _ = write!(out, "{{\"time_stamp\":\"{ts}\",\"type\":\"{}\",", mtype.as_str().to_uppercase());
    if let Some(h) = help {
        out.push_str("\"help\":");
        json_str(out, h);
        out.push(',');
    }
    out.push_str("\"metrics\":[");
    match mtype {
        MetricType::Histogram | MetricType::Summary => {
            // One entry per series: buckets/quantiles keyed by le/quantile, plus sum and count.
            let key = if mtype == MetricType::Histogram { "le" } else { "quantile" };
            // Per series: its labels, its buckets or quantiles, its sum and its count.
            type Series<'a> = (Labels<'a>, Vec<(String, String)>, String, String);
            let mut series: BTreeMap<String, Series<'_>> = BTreeMap::new();
            for line in samples.lines() {
                let Some((name, mut labels, value)) = split_sample(line) else { continue };
                let pos = labels.iter().position(|(n, _)| *n == key);
                let bound = pos.map(|p| labels.remove(p).1);
                let mut id = String::new();
                labels_json(&mut id, &labels);
                let e = series.entry(id).or_insert_with(|| (labels, Vec::new(), "0".into(), "0".into()));
                if name.ends_with("_sum") {
                    e.2 = value.into();
                } else if name.ends_with("_count") {
                    e.3 = value.into();
                } else if let Some(b) = bound {
                    e.1.push((b, value.into()));
                }
            }
            for (i, (id, (_, points, sum, count))) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"labels\":{id},\"{}\":{{", if key == "le" { "buckets" } else { "quantiles" });
                for (k, (b, v)) in points.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    json_str(out, b);
                    out.push(':');
                    json_str(out, v);
                }
                out.push_str("},\"sum\":");
                json_str(out, sum);
                out.push_str(",\"count\":");
                json_str(out, count);
                out.push('}');
            }
        }
        _ => {
            for (i, line) in samples.lines().enumerate() {
                let Some((_, labels, value)) = split_sample(line) else { continue };
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"labels\":");
                labels_json(out, &labels);
                out.push_str(",\"value\":");
                json_str(out, value);
                out.push('}');
            }
        }
    }
    out.push_str("]}");
}

pub fn metrics(mut groups: Vec<GroupView>) -> String {
    groups.sort_by(|a, b| a.key.cmp(&b.key));
    let mut o = String::from("{\"status\":\"success\",\"data\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let labels: Vec<(&str, String)> = g.key.labels().map(|(n, v)| (n, v.to_string())).collect();
        o.push_str("{\"labels\":");
        labels_json(&mut o, &labels);
        let ts = rfc3339(g.push_time);
        let _ = write!(o, ",\"last_push_successful\":{}", g.failure_time <= g.push_time);
        let _ = write!(o, ",\"lifecycle\":\"{}\",\"shard\":{}", g.lifecycle.as_str(), g.shard);
        if g.lifecycle == Lifecycle::Ttl {
            let _ = write!(o, ",\"ttl_seconds\":{}", g.ttl.as_secs_f64());
        }
        let mut inst = labels.clone();
        if !inst.iter().any(|(n, _)| *n == "instance") {
            inst.push(("instance", String::new()));
            inst.sort();
        }
        for (name, value) in [("push_time_seconds", g.push_time), ("push_failure_time_seconds", g.failure_time)] {
            let _ = write!(o, ",\"{name}\":{{\"time_stamp\":\"{ts}\",\"type\":\"GAUGE\",\"metrics\":[{{\"labels\":");
            labels_json(&mut o, &inst);
            let _ = write!(o, ",\"value\":\"{}\"}}]}}", format_float(value));
        }
        for f in &g.families {
            o.push(',');
            json_str(&mut o, &f.name);
            o.push(':');
            let help = f.help.as_deref().map(|h| h.replace("\\n", "\n").replace("\\\\", "\\"));
            family_json(&mut o, &ts, f.mtype, help.as_deref(), std::str::from_utf8(&f.samples.plain()).unwrap_or(""));
        }
        o.push('}');
    }
    o.push_str("]}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20.500Z");
    }

    #[test]
    fn samples_split() {
        let (n, l, v) = split_sample("a{b=\"x\\\"y\",c=\"é\"} 1e3").unwrap();
        assert_eq!((n, v), ("a", "1e3"));
        assert_eq!(l, vec![("b", "x\"y".to_string()), ("c", "é".to_string())]);
    }
}
