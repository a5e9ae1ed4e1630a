//! Request body decompression (`Content-Encoding`) under a hard size limit, and the gzip
//! encoder the scrape uses for its response.
//!
//! Decoding streams: output grows in bounded steps, its capacity never passes `limit + 1`
//! bytes, and decoding stops as soon as one byte more than `limit` came out. A gzip bomb (a
//! few KB inflating to GB) costs at most `limit` bytes of memory, then a [`TooLarge`] error.
//!
//! Accepted `Content-Encoding` values (case-insensitive, surrounding blanks ignored):
//! `identity` (or empty), `gzip` / `x-gzip`, `snappy` / `x-snappy-framed`. Anything else,
//! including a list of codings, is `None` from [`Encoding::from_header`]: the HTTP layer
//! answers 415. For snappy both formats are read, told apart by the stream identifier chunk
//! that starts every framed stream: the framed format (what `Content-Encoding: snappy`
//! means for HTTP bodies) and the raw block format (what Prometheus remote write sends under
//! the same header), whose length header is checked against the limit before allocating.
//! Gzip bodies may hold several members, read back to back as RFC 1952 says (Go's reader
//! does the same). An empty body decodes to an empty body whatever the encoding: an empty
//! PUT still empties its group.
//!
//! Intended status mapping (done in the HTTP layer): [`TooLarge`] → 413, [`Corrupt`] → 400.
//!
//! [`TooLarge`]: DecompressError::TooLarge
//! [`Corrupt`]: DecompressError::Corrupt

use std::fmt;
use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Snappy,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value; `None` for an unsupported coding.
    pub fn from_header(value: &[u8]) -> Option<Encoding> {
        let v = value.trim_ascii();
        let is = |s: &str| v.eq_ignore_ascii_case(s.as_bytes());
        if v.is_empty() || is("identity") {
            Some(Encoding::Identity)
        } else if is("gzip") || is("x-gzip") {
            Some(Encoding::Gzip)
        } else if is("snappy") || is("x-snappy-framed") {
            Some(Encoding::Snappy)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Snappy => "snappy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecompressError {
    /// The decoded body would exceed `limit` bytes.
    TooLarge { limit: usize },
    /// The body is not valid in its declared encoding.
    Corrupt { encoding: Encoding, reason: String },
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecompressError::TooLarge { limit } => {
                write!(f, "decompressed body exceeds the limit of {limit} bytes (raise --push.max-decompressed-size)")
            }
            DecompressError::Corrupt { encoding, reason } => {
                write!(f, "body is not valid {} data: {reason}", encoding.as_str())
            }
        }
    }
}

impl std::error::Error for DecompressError {}

/// The framed snappy format starts with this stream identifier chunk.
const SNAPPY_STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// How much output one read may add: bounds the memory touched ahead of the data.
const STEP: usize = 64 * 1024;

/// Decodes `body` from `encoding`, refusing more than `limit` decoded bytes.
pub fn decode(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            Ok(body.to_vec())
        }
        Encoding::Gzip => {
            // ISIZE, the last member's size mod 2^32, is a fair first guess for one member.
            let hint = match body.len() {
                n if n >= 18 => u32::from_le_bytes(body[n - 4..].try_into().expect("4 bytes")) as usize,
                _ => 0,
            };
            read_limited(MultiGzDecoder::new(body), hint, limit, Encoding::Gzip)
        }
        Encoding::Snappy if body.starts_with(SNAPPY_STREAM_ID) => {
            read_limited(snap::read::FrameDecoder::new(body), body.len() * 2, limit, Encoding::Snappy)
        }
        Encoding::Snappy => {
            let corrupt =
                |e: snap::Error| DecompressError::Corrupt { encoding: Encoding::Snappy, reason: e.to_string() };
            let len = snap::raw::decompress_len(body).map_err(corrupt)?;
            if len > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            snap::raw::Decoder::new().decompress_vec(body).map_err(corrupt)
        }
    }
}

/// Reads `r` to the end into a buffer whose capacity never exceeds `limit + 1`.
fn read_limited(mut r: impl Read, hint: usize, limit: usize, enc: Encoding) -> Result<Vec<u8>, DecompressError> {
    let cap_max = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(hint.clamp(STEP.min(cap_max), cap_max));
    loop {
        let len = out.len();
        if len == out.capacity() {
            let want = (len.max(STEP) * 2).min(cap_max);
            out.reserve_exact(want - len);
        }
        let room = (out.capacity() - len).min(STEP);
        out.resize(len + room, 0);
        match r.read(&mut out[len..]) {
            Ok(0) => {
                out.truncate(len);
                return Ok(out);
            }
            Ok(n) => {
                out.truncate(len + n);
                if out.len() > limit {
                    return Err(DecompressError::TooLarge { limit });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => out.truncate(len),
            Err(e) => return Err(DecompressError::Corrupt { encoding: enc, reason: e.to_string() }),
        }
    }
}

/// Compresses `data`, concatenated, into one gzip member at `level` (0 = store, 1 = fastest,
/// 9 = smallest; higher values are taken as 9). Members compressed separately, say one per
/// shard in parallel, can be sent back to back as one body: gzip readers inflate
/// concatenated members as one stream.
pub fn gzip_member(data: &[&[u8]], level: u32) -> Vec<u8> {
    let total: usize = data.iter().map(|d| d.len()).sum();
    // A guess for text-format metrics, which compress well; the Vec grows if it is wrong.
    let mut enc = GzEncoder::new(Vec::with_capacity(total / 4 + 64), Compression::new(level.min(9)));
    for d in data {
        enc.write_all(d).expect("writing to a Vec cannot fail");
    }
    enc.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        gzip_member(&[data], 6)
    }

    fn snappy_framed(data: &[u8]) -> Vec<u8> {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn header_values() {
        assert_eq!(Encoding::from_header(b"gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(b" GZip "), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(b"x-gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(b"snappy"), Some(Encoding::Snappy));
        assert_eq!(Encoding::from_header(b"x-snappy-framed"), Some(Encoding::Snappy));
        assert_eq!(Encoding::from_header(b"identity"), Some(Encoding::Identity));
        assert_eq!(Encoding::from_header(b""), Some(Encoding::Identity));
        for bad in [&b"br"[..], b"deflate", b"zstd", b"gzip, identity", b"gzipx"] {
            assert_eq!(Encoding::from_header(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn round_trips() {
        let body: Vec<u8> = (0..50_000u32).flat_map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes()).collect();
        assert_eq!(decode(Encoding::Identity, &body, body.len()).unwrap(), body);
        assert_eq!(decode(Encoding::Gzip, &gzip(&body), body.len()).unwrap(), body);
        assert_eq!(decode(Encoding::Snappy, &snappy_framed(&body), body.len()).unwrap(), body);
        let raw = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        assert_eq!(decode(Encoding::Snappy, &raw, body.len()).unwrap(), body);
        for e in [Encoding::Identity, Encoding::Gzip, Encoding::Snappy] {
            assert_eq!(decode(e, b"", 0).unwrap(), b"");
        }
        // Exactly at the limit is fine, one byte over is not.
        for e in [Encoding::Identity, Encoding::Gzip, Encoding::Snappy] {
            let enc = match e {
                Encoding::Identity => body.clone(),
                Encoding::Gzip => gzip(&body),
                Encoding::Snappy => snappy_framed(&body),
            };
            assert_eq!(
                decode(e, &enc, body.len() - 1),
                Err(DecompressError::TooLarge { limit: body.len() - 1 }),
                "{e:?}"
            );
        }
        assert_eq!(
            decode(Encoding::Snappy, &raw, body.len() - 1),
            Err(DecompressError::TooLarge { limit: body.len() - 1 })
        );
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        // 16 MiB of zeros deflate to ~160 KB at level 1 (a debug build compresses slowly).
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(1));
        enc.write_all(&vec![0u8; 16 << 20]).unwrap();
        let member = enc.finish().unwrap();
        assert!(member.len() < 200_000, "{}", member.len());
        // Then 64 members: 1 GiB, inflated at once by a reader without a limit.
        let bomb = member.repeat(64);
        let limit = 1 << 20;
        let err = decode(Encoding::Gzip, &bomb, limit).unwrap_err();
        assert_eq!(err, DecompressError::TooLarge { limit });
        assert!(err.to_string().contains("1048576 bytes"), "{err}");
        // The capacity bound itself, checked on the reader.
        let r = read_limited(MultiGzDecoder::new(&bomb[..]), usize::MAX, limit, Encoding::Gzip);
        assert!(r.is_err());
        let ok = read_limited(io::repeat(7).take(limit as u64), usize::MAX, limit, Encoding::Gzip).unwrap();
        assert_eq!(ok.len(), limit);
        assert!(ok.capacity() <= limit + 1, "{}", ok.capacity());
        let ok = read_limited(io::repeat(7).take(limit as u64), 0, limit, Encoding::Gzip).unwrap();
        assert_eq!(ok.len(), limit);
        assert!(ok.capacity() <= limit + 1, "{}", ok.capacity());
    }

    #[test]
    fn raw_snappy_length_header_checked_before_allocating() {
        // A raw snappy block claiming 128 MiB: refused from its header alone.
        let mut claim = vec![0x80, 0x80, 0x80, 0x40];
        claim.extend_from_slice(&[0; 8]);
        assert_eq!(decode(Encoding::Snappy, &claim, 1 << 20), Err(DecompressError::TooLarge { limit: 1 << 20 }));
    }

    #[test]
    fn corrupt_bodies() {
        let body = b"some metrics 1\n".repeat(100);
        let mut gz = gzip(&body);
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        let e = decode(Encoding::Gzip, &gz, 1 << 20).unwrap_err();
        assert!(matches!(e, DecompressError::Corrupt { encoding: Encoding::Gzip, .. }), "{e}");
        assert!(decode(Encoding::Gzip, b"not gzip at all", 1 << 20).is_err());
        let gz = gzip(&body);
        assert!(decode(Encoding::Gzip, &gz[..gz.len() - 5], 1 << 20).is_err(), "truncated gzip");
        let mut sn = snappy_framed(&body);
        let n = sn.len();
        sn[n - 3] ^= 0xff;
        let e = decode(Encoding::Snappy, &sn, 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("body is not valid snappy data"), "{e}");
        assert!(decode(Encoding::Snappy, b"\xff\xff\xff\xff\xff\xff", 1 << 20).is_err());
    }

    #[test]
    fn concatenated_members_decode_to_the_concatenation() {
        let a = b"# TYPE a gauge\na 1\n".repeat(1000);
        let b = b"# TYPE b gauge\nb 2\n".repeat(1000);
        let mut body = gzip_member(&[&a[..10], &a[10..]], 1);
        body.extend_from_slice(&gzip_member(&[&b], 1));
        body.extend_from_slice(&gzip_member(&[], 1));
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert_eq!(decode(Encoding::Gzip, &body, want.len()).unwrap(), want);
        // Also as a stock reader sees it.
        let mut out = Vec::new();
        MultiGzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, want);
        // Level 0 stores, higher levels compress; out-of-range levels are clamped.
        assert!(gzip_member(&[&a], 0).len() > a.len());
        assert!(gzip_member(&[&a], 99).len() < a.len() / 10);
    }
}
