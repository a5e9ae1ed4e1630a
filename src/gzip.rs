//! gzip scrapes without compressing the store on every scrape.
//!
//! A scrape interleaves the groups: each family's `# HELP`/`# TYPE` lines, then that family's
//! samples from every group. So the unit that can be compressed ahead of time is one family
//! of one group. [`deflate_segments`] compresses each such range as its own raw deflate
//! segment: a fresh compressor per range, ended by a sync flush. A sync-flushed segment ends
//! on a byte boundary with no final block and refers to nothing before it, so segments can be
//! placed one after the other in any order and still form one valid deflate stream. The
//! store keeps these segments beside the rendered bytes (see `expo::Chunk::deflated`), made
//! by the first gzip scrape that needs them and reused by every later one until the group is
//! pushed again.
//!
//! A scrape response is then one gzip member ([RFC 1952]) written by [`Framer`]: the 10-byte
//! header; HELP/TYPE lines as stored (uncompressed) blocks, which cost no CPU and are a small
//! share of the output; the segments as they are; an empty final block; and the CRC-32 and
//! length of the uncompressed output. The CRC is computed over the plain bytes at scrape time
//! (SIMD CRC runs at several GB/s, far cheaper than deflate).
//!
//! The price is ratio: deflate cannot refer to the previous group's copy of a family, so a
//! scrape of exporter payloads compresses about 4 to 5 times instead of about 20 (measured on
//! the load generator's payloads), and the segments take that much memory beside the store.
//!
//! [RFC 1952]: https://www.rfc-editor.org/rfc/rfc1952

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress};

/// Deflate level for segments. zlib-rs level 1 (zlib-ng's "quick" strategy, static Huffman
/// codes) ran at ~590 MB/s per core on per-family ranges of the GPU and node payloads here,
/// ratio 4.1 to 4.8; level 2 ran at ~220 MB/s for ratio 5 to 7.
pub const SEGMENT_LEVEL: u32 = 1;

/// The gzip header: magic, CM=deflate, no flags, no mtime, XFL=0, OS=unknown.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// An empty final block with fixed Huffman codes: BFINAL=1, BTYPE=01, end-of-block (7 zero
/// bits), padded to the byte.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Deflated copies of the ranges `ranges` of `bytes`: `data`, with segment `i` ending at
/// `ends[i]` (and starting where segment `i - 1` ended).
pub struct Segments {
    pub data: Box<[u8]>,
    pub ends: Box<[usize]>,
}

impl Segments {
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

thread_local! {
    /// One compressor per thread, reset per segment (a reset clears the hash table; it does
    /// not reallocate the compressor's ~300 KB of state).
    static DEFLATE: RefCell<(Compress, Vec<u8>)> =
        RefCell::new((Compress::new(Compression::new(SEGMENT_LEVEL), false), Vec::new()));
}

/// Compresses each range of `bytes` into an independent, sync-flushed raw deflate segment.
/// An empty range gives an empty segment (nothing to place in the stream).
pub fn deflate_segments(bytes: &[u8], ranges: &[(usize, usize)]) -> Segments {
    DEFLATE.with(|cell| {
        let (c, out) = &mut *cell.borrow_mut();
        out.clear();
        let mut ends = Vec::with_capacity(ranges.len());
        for &(start, end) in ranges {
            let input = &bytes[start..end];
            if !input.is_empty() {
                c.reset();
                let base = c.total_in();
                loop {
                    // Text metrics shrink at least 2x; the loop grows the buffer if not.
                    out.reserve(input.len() / 2 + 64);
                    let done = (c.total_in() - base) as usize;
                    c.compress_vec(&input[done..], out, FlushCompress::Sync)
                        .expect("deflate into a Vec with spare room cannot fail");
                    // Finished once all input is in and the flush did not fill the room left.
                    if (c.total_in() - base) as usize == input.len() && out.len() < out.capacity() {
                        break;
                    }
                }
            }
            ends.push(out.len());
        }
        let segments = Segments { data: out.as_slice().into(), ends: ends.into() };
        if out.capacity() > 4 << 20 {
            // Do not keep a huge group's scratch for the life of the thread.
            *out = Vec::new();
        }
        segments
    })
}

/// Writes the framing of a gzip scrape: everything but the segments themselves.
pub struct Framer {
    crc: crc32fast::Hasher,
    len: u64,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    pub fn new() -> Framer {
        Framer { crc: crc32fast::Hasher::new(), len: 0 }
    }

    /// Accounts for plain bytes that go out (as segments or stored blocks) in this order.
    pub fn plain(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Accounts for a run of plain bytes whose CRC was computed elsewhere (in parallel).
    pub fn plain_crc(&mut self, crc: u32, len: u64) {
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(crc, len));
        self.len += len;
    }

    /// The stored-block headers that must precede `len` plain bytes sent uncompressed: one
    /// 5-byte header (BFINAL=0, BTYPE=00, padding, LEN, NLEN) per 65,535 bytes. The caller
    /// sends header `i` then the plain bytes `[i * 65535 ..][..65535]`.
    pub fn stored_headers(len: usize, out: &mut Vec<[u8; 5]>) {
        let mut left = len;
        while left > 0 {
            let n = left.min(u16::MAX as usize) as u16;
            let [a, b] = n.to_le_bytes();
            let [c, d] = (!n).to_le_bytes();
            out.push([0, a, b, c, d]);
            left -= n as usize;
        }
    }

    /// The end of the member: the final block, CRC-32 and length mod 2^32.
    pub fn trailer(&self) -> [u8; 10] {
        let mut t = [0u8; 10];
        t[..2].copy_from_slice(&FINAL_BLOCK);
        t[2..6].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        t[6..].copy_from_slice(&(self.len as u32).to_le_bytes());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).expect("valid gzip");
        out
    }

    /// Frames `plain` (split into `ranges`, deflated) interleaved with `headers` sent stored.
    fn frame(pieces: &[(bool, &[u8])]) -> (Vec<u8>, Vec<u8>) {
        let mut expect = Vec::new();
        let mut out = GZIP_HEADER.to_vec();
        let mut f = Framer::new();
        for &(stored, bytes) in pieces {
            expect.extend_from_slice(bytes);
            if stored {
                let mut hs = Vec::new();
                Framer::stored_headers(bytes.len(), &mut hs);
                for (h, part) in hs.iter().zip(bytes.chunks(u16::MAX as usize)) {
                    out.extend_from_slice(h);
                    out.extend_from_slice(part);
                }
                f.plain(bytes);
            } else {
                let segs = deflate_segments(bytes, &[(0, bytes.len())]);
                out.extend_from_slice(segs.get(0));
                let mut h = crc32fast::Hasher::new();
                h.update(bytes);
                f.plain_crc(h.finalize(), bytes.len() as u64);
            }
        }
        out.extend_from_slice(&f.trailer());
        (out, expect)
    }

    #[test]
    fn segments_in_any_order_form_one_stream() {
        let a: Vec<u8> = (0..3000).flat_map(|i| format!("a{{i=\"{i}\"}} {i}\n").into_bytes()).collect();
        let b = b"b 1\n".to_vec();
        let help = b"# HELP a x\n# TYPE a gauge\n".to_vec();
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let pieces: Vec<(bool, &[u8])> = order
                .iter()
                .map(|&i| match i {
                    0 => (true, &help[..]),
                    1 => (false, &a[..]),
                    2 => (false, &b[..]),
                    _ => (false, &b""[..]),
                })
                .collect();
            let (gz, expect) = frame(&pieces);
            assert_eq!(gunzip(&gz), expect);
        }
    }

    #[test]
    fn ranges_of_one_buffer() {
        let bytes: Vec<u8> = (0..20_000).flat_map(|i| format!("m{} {i}\n", i % 7).into_bytes()).collect();
        let cuts = [0, 10, 10, 5000, 123_456, bytes.len()];
        let ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
        let segs = deflate_segments(&bytes, &ranges);
        assert_eq!(segs.get(1), b"", "an empty range is an empty segment");
        // Reverse order: each segment stands alone.
        let mut gz = GZIP_HEADER.to_vec();
        let mut f = Framer::new();
        let mut expect = Vec::new();
        for (i, &(s, e)) in ranges.iter().enumerate().rev() {
            gz.extend_from_slice(segs.get(i));
            f.plain(&bytes[s..e]);
            expect.extend_from_slice(&bytes[s..e]);
        }
        gz.extend_from_slice(&f.trailer());
        assert_eq!(gunzip(&gz), expect);
        assert!(segs.data.len() < bytes.len(), "text compresses: {} of {}", segs.data.len(), bytes.len());
    }

    #[test]
    fn stored_runs_longer_than_a_block() {
        let long: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (gz, expect) = frame(&[(true, &long), (false, b"x 1\n"), (true, b""), (true, b"# TYPE y gauge\n")]);
        assert_eq!(gunzip(&gz), expect);
        let mut hs = Vec::new();
        Framer::stored_headers(65_535 * 2, &mut hs);
        assert_eq!(hs.len(), 2);
        hs.clear();
        Framer::stored_headers(65_536, &mut hs);
        assert_eq!(hs, vec![[0, 0xff, 0xff, 0, 0], [0, 1, 0, 0xfe, 0xff]]);
    }

    #[test]
    fn empty_output_is_valid_gzip() {
        let (gz, expect) = frame(&[]);
        assert!(expect.is_empty());
        assert_eq!(gunzip(&gz), b"");
    }
}
