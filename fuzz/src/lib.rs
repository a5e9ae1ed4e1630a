//! What each fuzz target checks, beyond "no panic, no hang, no sanitizer report". The
//! targets in `fuzz_targets/` call these, and `tests/fuzz_regressions.rs` includes this file
//! to replay saved inputs on stable (so it may use only ringgate's own dependencies).

use bumpalo::Bump;
use ringgate::decompress::{self, DecompressError, Encoding};
use ringgate::expo::RenderedFamily;
use ringgate::grouping::{GroupKey, InjectedLabel};

/// Runs the check of fuzz target `target` on `data`.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "text" => text(data),
        "proto" => proto(data),
        "openmetrics" => openmetrics(data),
        "grouping" => grouping(data),
        "decompress" => decompress(data),
        "http" => http(data),
        "deflate" => deflate(data),
        t => panic!("no fuzz target {t:?}"),
    }
}

fn key() -> Vec<InjectedLabel<'static>> {
    static KEY: std::sync::LazyLock<GroupKey> =
        std::sync::LazyLock::new(|| GroupKey::from_path("job/fuzz/zone/z").expect("valid key"));
    KEY.injected()
}

/// Text body: what the parser accepts renders to text it reads back the same.
pub fn text(data: &[u8]) {
    let bump = Bump::new();
    if let Ok(fams) = ringgate::text::parse(data, &key(), &bump) {
        well_formed(&fams);
        reads_back(&fams);
    }
}

/// Protobuf body: each rendered family is what the text parser makes of it, alone.
pub fn proto(data: &[u8]) {
    let bump = Bump::new();
    let Ok(fams) = ringgate::proto::parse(data, &key(), &bump, usize::MAX) else { return };
    well_formed(&fams);
    for f in &fams {
        let text = format!("# TYPE {} {}\n{}", f.name, f.mtype.as_str(), String::from_utf8_lossy(&f.samples.plain()));
        let bump = Bump::new();
        let again = ringgate::text::parse(text.as_bytes(), &key(), &bump)
            .unwrap_or_else(|e| panic!("protobuf family renders text the text parser refuses: {e}\n{text}"));
        let want = RenderedFamily { help: None, ..f.clone() };
        assert_eq!(again, [want], "protobuf family reads back differently from its text");
    }
}

/// OpenMetrics body: rewritten to text, so the text checks hold for what it accepts.
pub fn openmetrics(data: &[u8]) {
    let bump = Bump::new();
    if let Ok(fams) = ringgate::openmetrics::parse(data, &key(), &bump, usize::MAX) {
        well_formed(&fams);
        reads_back(&fams);
    }
}

/// Grouping-key path: an accepted key is canonical, and every spelling of it is the same key.
pub fn grouping(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let Ok(key) = GroupKey::from_path(path) else { return };
    let labels: Vec<(&str, &str)> = key.labels().collect();
    assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "labels not sorted and unique: {labels:?}");
    assert!(key.get("job").is_some_and(|j| !j.is_empty()), "no job in {key}");
    assert_eq!(GroupKey::from_canonical(key.canonical()).as_ref(), Some(&key));
    // The same key spelled with every value in base64, in reverse label order.
    let mut respelled = format!("job@base64/{}", base64url(key.get("job").unwrap_or_default()));
    for (n, v) in labels.iter().rev().filter(|(n, _)| *n != "job") {
        respelled.push_str(&format!("/{n}@base64/{}", base64url(v)));
    }
    assert_eq!(GroupKey::from_path(&respelled).as_ref(), Ok(&key), "{respelled}");
    for n in 1..=8 {
        assert!(key.shard(n) < n);
    }
    let injected = key.injected();
    assert!(injected.windows(2).all(|w| w[0].name < w[1].name));
    assert!(injected.iter().any(|l| l.name == b"instance"));
    let _ = key.to_string();
}

/// Compressed body: decoding never passes the limit, and what we compress decodes back.
/// `data[0]` picks the encoding, `data[1]` the limit (in 256-byte steps), the rest is the body.
pub fn decompress(data: &[u8]) {
    let [e, l, body @ ..] = data else { return };
    let enc = [Encoding::Identity, Encoding::Gzip, Encoding::Snappy][*e as usize % 3];
    let limit = usize::from(*l) << 8;
    match decompress::decode(enc, body, limit) {
        Ok(out) => {
            assert!(out.len() <= limit, "{} bytes out under a limit of {limit}", out.len());
            if enc == Encoding::Identity {
                assert_eq!(out, body);
            }
        }
        Err(DecompressError::TooLarge { limit: l }) => assert_eq!(l, limit),
        Err(DecompressError::Corrupt { encoding, .. }) => assert_eq!(encoding, enc),
    }
    let framed = {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut w, body).expect("writing to a Vec");
        w.into_inner().expect("writing to a Vec")
    };
    let raw = snap::raw::Encoder::new().compress_vec(body).expect("compressing a small body");
    for (enc, packed) in
        [(Encoding::Gzip, decompress::gzip_member(&[body], 1)), (Encoding::Snappy, framed), (Encoding::Snappy, raw)]
    {
        let got = decompress::decode(enc, &packed, limit);
        if body.len() <= limit {
            assert_eq!(got.as_deref(), Ok(body), "{enc:?} round trip");
        } else {
            assert_eq!(got, Err(DecompressError::TooLarge { limit }), "{enc:?} over the limit");
        }
    }
}

/// Scrape segments (`gzip::deflate_segments`): byte 0 cuts the rest into up to 8 ranges;
/// the segments, in reverse order and framed as a scrape frames them, gunzip to those ranges
/// in that order, and the same bytes deflated again give the same segments.
pub fn deflate(data: &[u8]) {
    use ringgate::gzip::{deflate_segments, Framer, GZIP_HEADER};
    let [cuts, body @ ..] = data else { return };
    let n = usize::from(*cuts % 8) + 1;
    let mut ranges = Vec::new();
    for i in 0..n {
        // Overlapping and empty ranges too: ranges of one buffer need not tile it.
        let a = body.len() * i / n;
        let b = (body.len() * (i + 1) / n + (*cuts as usize >> 3)).min(body.len());
        ranges.push((a, b));
    }
    let segs = deflate_segments(body, &ranges);
    let mut gz = GZIP_HEADER.to_vec();
    let mut framer = Framer::new();
    let mut expect = Vec::new();
    for (i, &(a, b)) in ranges.iter().enumerate().rev() {
        gz.extend_from_slice(segs.get(i));
        framer.plain(&body[a..b]);
        expect.extend_from_slice(&body[a..b]);
        assert_eq!(segs.get(i).is_empty(), a == b, "a segment is empty exactly when its range is");
    }
    gz.extend_from_slice(&framer.trailer());
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).expect("a valid gzip member");
    assert_eq!(out, expect);
    assert_eq!(deflate_segments(body, &ranges).data, segs.data, "a segment depends on its bytes alone");
}

/// HTTP request head (`http::parse_head`): a complete head is read from its own bytes only,
/// and every shorter prefix of it asks for more.
pub fn http(data: &[u8]) {
    let Ok(Some((n, req))) = ringgate::http::parse_head(data) else { return };
    assert!(n > 0 && n <= data.len(), "head length {n} of {}", data.len());
    assert!(!req.path.contains('?'), "query left in the path {:?}", req.path);
    assert!(req.headers.iter().all(|(name, _)| name.starts_with("x-") && *name == name.to_ascii_lowercase()));
    let again = ringgate::http::parse_head(&data[..n]);
    assert!(matches!(&again, Ok(Some((m, r))) if *m == n && format!("{r:?}") == format!("{req:?}")), "{again:?}");
    assert!(matches!(ringgate::http::parse_head(&data[..n - 1]), Ok(None)), "a prefix of a head is complete");
}

/// Rendered families: unique names, one `\n`-ended UTF-8 line per series, each a sample of
/// the family.
fn well_formed(fams: &[RenderedFamily]) {
    let mut names: Vec<&str> = fams.iter().map(|f| &*f.name).collect();
    names.sort_unstable();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "a family twice: {names:?}");
    for f in fams {
        let plain = f.samples.plain();
        let text = std::str::from_utf8(&plain).expect("rendered samples are UTF-8");
        assert!(text.ends_with('\n') && !f.samples.is_empty(), "{text:?}");
        assert_eq!(text.lines().count(), f.series as usize, "{text:?}");
        assert!(text.lines().all(|l| l.starts_with(&*f.name)), "{text:?}");
    }
}

/// Writes `fams` as a text body and parses it again: the same families must come back. The
/// HELP and TYPE lines come first, longest names first, so that a family like `a_sum` is
/// declared before a summary `a` would claim its name.
fn reads_back(fams: &[RenderedFamily]) {
    let mut order: Vec<&RenderedFamily> = fams.iter().collect();
    order.sort_by(|a, b| b.name.cmp(&a.name));
    let mut text = String::new();
    for f in &order {
        if let Some(h) = &f.help {
            text.push_str(&format!("# HELP {} {h}\n", f.name));
        }
        text.push_str(&format!("# TYPE {} {}\n", f.name, f.mtype.as_str()));
    }
    for f in fams {
        text.push_str(std::str::from_utf8(&f.samples.plain()).expect("UTF-8"));
    }
    let bump = Bump::new();
    let again = ringgate::text::parse(text.as_bytes(), &key(), &bump)
        .unwrap_or_else(|e| panic!("rendered families do not parse again: {e}\n{text}"));
    // A HELP text may end in `\r` (a body line ending `\r\r\n`); read back, a CRLF line end.
    let strip = |fams: &[RenderedFamily]| -> Vec<RenderedFamily> {
        let mut v: Vec<RenderedFamily> = fams
            .iter()
            .map(|f| {
                let help = f.help.as_deref().map(|h| h.trim_end_matches('\r')).filter(|h| !h.is_empty());
                RenderedFamily { help: help.map(Into::into), ..f.clone() }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(strip(&again), strip(fams), "rendered families read back differently\n{text}");
}

fn base64url(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if s.is_empty() {
        return "=".into();
    }
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
