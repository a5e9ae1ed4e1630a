//! gzip scrapes without compressing the store on every scrape.
//!
//! A scrape interleaves the groups: each family's `# HELP`/`# TYPE` lines, then that family's
//! samples from every group. So the unit that can be compressed ahead of time is one family
//! of one group. [`deflate_segments`] compresses each such range as its own raw deflate
//! segment: one block that refers only to its own bytes, ended by a sync flush. A segment
//! ends on a byte boundary with no final block and refers to nothing before it, so segments
//! can be placed one after the other in any order and still form one valid deflate stream. The
//! store keeps these segments beside the rendered bytes (see `expo::Chunk::deflated`), made
//! by the first gzip scrape that needs them and reused by every later one until the group is
//! pushed again.
//!
//! A scrape response is then one gzip member ([RFC 1952]) written by [`Framer`]: the 10-byte
//! header; HELP/TYPE lines as stored (uncompressed) blocks, which cost no CPU and are a small
//! share of the output; the segments as they are; an empty final block; and the CRC-32 and
//! length of the uncompressed output. Each segment keeps the CRC-32 of its plain bytes, made
//! with it, and the factor that shifts a CRC past them ([`crc::shift`]); a scrape then gets
//! the CRC of its output by combining one small multiplication per segment ([`crc::combine`])
//! instead of reading the whole plain store again, which at several GB cost seconds of a
//! shard's CPU per gzip scrape.
//!
//! The price is ratio: deflate cannot refer to the previous group's copy of a family, so a
//! scrape of exporter payloads compresses about 4 to 5 times instead of about 20 (measured on
//! the load generator's payloads), and the segments take that much memory beside the store.
//!
//! [RFC 1952]: https://www.rfc-editor.org/rfc/rfc1952

use std::cell::RefCell;

/// The gzip header: magic, CM=deflate, no flags, no mtime, XFL=0, OS=unknown.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// An empty final block with fixed Huffman codes: BFINAL=1, BTYPE=01, end-of-block (7 zero
/// bits), padded to the byte.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Deflated copies of the ranges `ranges` of `bytes`: `data`, with segment `i` ending at
/// `ends[i]` (and starting where segment `i - 1` ended), and the CRC of each range's plain
/// bytes.
pub struct Segments {
    /// From the rendered-buffer pool and given back to it when dropped: a push cycle replaces
    /// every large group's segments with ones of about the same size.
    pub data: Vec<u8>,
    pub ends: Box<[usize]>,
    pub plain: Box<[PlainCrc]>,
}

/// CRC-32 of a segment's plain bytes, their length, and `crc::shift` of that length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainCrc {
    pub crc: u32,
    pub shift: u32,
    pub len: u64,
}

impl Drop for Segments {
    fn drop(&mut self) {
        crate::expo::give_back(std::mem::take(&mut self.data));
    }
}

impl Segments {
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// CRC-32 (the gzip polynomial, bits reflected) of data put together from pieces whose CRCs
/// are known: the way zlib's `crc32_combine` works, with the factor for the second piece's
/// length computed once per piece ([`shift`]) so that each combination is one multiplication
/// modulo the polynomial.
pub mod crc {
    const POLY: u32 = 0xedb8_8320;

    /// `a * b` modulo the polynomial (bit 31 is x^0). Without branches: the bits of `a` and
    /// `b` are as good as random, and zlib's loop, which branches on them, spent most of its
    /// time in mispredictions (about 130 ns a call here, against a few ns).
    #[inline]
    pub const fn multiply(a: u32, mut b: u32) -> u32 {
        let mut p = 0u32;
        let mut i = 32;
        while i > 0 {
            i -= 1;
            p ^= b & ((a >> i) & 1).wrapping_neg();
            b = (b >> 1) ^ (POLY & (b & 1).wrapping_neg());
        }
        p
    }

    /// x^(2^k) modulo the polynomial, for k in 0..64.
    const fn powers() -> [u32; 64] {
        let mut t = [0u32; 64];
        let mut p = 1u32 << 30; // x^1
        let mut k = 0;
        while k < 64 {
            t[k] = p;
            p = multiply(p, p);
            k += 1;
        }
        t
    }

    static POWERS: [u32; 64] = powers();

    /// Bits of a length whose factor is looked up whole in [`SHORT`].
    const SHORT_BITS: u32 = 12;

    /// x^(8 * len) modulo the polynomial for every len below 2^[`SHORT_BITS`]: each entry is
    /// the one before times x^8, eight shift-and-reduce steps.
    const fn short_shifts() -> [u32; 1 << SHORT_BITS] {
        let mut t = [0u32; 1 << SHORT_BITS];
        let mut p = 1u32 << 31; // x^0
        let mut i = 0;
        while i < t.len() {
            t[i] = p;
            let mut step = 0;
            while step < 8 {
                p = (p >> 1) ^ (POLY & (p & 1).wrapping_neg());
                step += 1;
            }
            i += 1;
        }
        t
    }

    /// 16 KiB. Most segments are a family of one group, a few KB or less, and made at every
    /// push: computing each one's factor from the powers took several multiplications of 32
    /// steps, as long as deflating a few hundred bytes of it (`bench-results/crc-shift-2026-11-23/`).
    static SHORT: [u32; 1 << SHORT_BITS] = short_shifts();

    /// The factor that moves a CRC past `len` bytes: x^(8 * len) modulo the polynomial.
    pub fn shift(len: u64) -> u32 {
        let mut p = SHORT[(len & ((1 << SHORT_BITS) - 1)) as usize];
        let mut n = len >> SHORT_BITS;
        let mut k = 3 + SHORT_BITS as usize; // 8 * len = len * 2^3
        while n != 0 {
            if n & 1 != 0 {
                p = multiply(POWERS[k & 63], p);
            }
            n >>= 1;
            k += 1;
        }
        p
    }

    /// The CRC of `a` followed by `b`, from their CRCs and `shift(b.len())`.
    pub fn combine(crc_a: u32, crc_b: u32, shift_b: u32) -> u32 {
        multiply(shift_b, crc_a) ^ crc_b
    }

    /// `crc` (the CRC of some bytes) continued over `bytes`.
    pub fn extend(crc: u32, bytes: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new_with_initial(crc);
        h.update(bytes);
        h.finalize()
    }
}

thread_local! {
    /// One segment deflater per thread, and its output scratch.
    static DEFLATE: RefCell<(fixed::Deflater, Vec<u8>)> = RefCell::new((fixed::Deflater::new(), Vec::new()));
}

/// Compresses each range of `bytes` into an independent, sync-flushed raw deflate segment.
/// An empty range gives an empty segment (nothing to place in the stream).
pub fn deflate_segments(bytes: &[u8], ranges: &[(usize, usize)]) -> Segments {
    DEFLATE.with(|cell| {
        let (d, out) = &mut *cell.borrow_mut();
        out.clear();
        let mut ends = Vec::with_capacity(ranges.len());
        let mut plain = Vec::with_capacity(ranges.len());
        for &(start, end) in ranges {
            let input = &bytes[start..end];
            d.segment(input, out);
            ends.push(out.len());
            // Right after the deflater read it, the input is still in the cache.
            let len = input.len() as u64;
            plain.push(PlainCrc { crc: crc32fast::hash(input), shift: crc::shift(len), len });
        }
        let mut data = crate::expo::buffer(out.len());
        data.extend_from_slice(out);
        let segments = Segments { data, ends: ends.into(), plain: plain.into() };
        if out.capacity() > 4 << 20 {
            // Do not keep a huge group's scratch for the life of the thread.
            *out = Vec::new();
        }
        segments
    })
}

/// Appends the `plain_len` bytes that segment `seg` (made by [`deflate_segments`]) holds to
/// `out` (see [`inflate_to`]).
pub fn inflate_segment(seg: &[u8], plain_len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + plain_len, 0);
    inflate_to(seg, &mut out[start..]);
}

/// Writes the plain bytes that segment `seg` (made by [`deflate_segments`]) holds into `dst`,
/// which is exactly their length. The segments are this process's own, checked when made
/// (debug builds inflate every one back); one that does not give back exactly `dst` is a bug,
/// and panics.
///
/// The decoder is ringgate's own ([`fixed::inflate`]): it reads only the shape the deflater
/// writes (fixed codes, where the text of an exposition is all 8-bit literal codes), with no
/// state to reset and no window to keep between calls. A plain scrape of a compressed store
/// inflates a segment per group and family, a few KB each. On a 72 MB exposition of the load
/// generator's payloads cut into segments of 2 KB it ran 1.5 times as fast as zlib-rs (reset
/// per segment), 1.3 times at 5 KB and 1.1 times at 20 KB; on the criterion store's chunks
/// (node-exporter families of about 950 bytes, `benches/gzip.rs`) 1.1 times.
pub fn inflate_to(seg: &[u8], dst: &mut [u8]) {
    if let Err(e) = fixed::inflate(seg, dst) {
        panic!("deflate segment of {} bytes did not inflate to its {} bytes: {}", seg.len(), dst.len(), e.0);
    }
}

/// The segment deflater: greedy LZ77 with one hash probe per position and the fixed Huffman
/// codes of RFC 1951 section 3.2.6, which is what zlib-rs does at level 1 (zlib-ng's "quick"
/// strategy), written here for one reason: segments are small and many. A node's push is
/// ~600 families, each its own segment, and zlib-rs clears its 128 KiB hash table and copies
/// the input into its window on every reset; on exporter payloads that was over half of the
/// time spent deflating. This deflater reads the input in place and never clears its table:
/// each entry is a position in a running count of bytes deflated on this thread, and an
/// entry from before the current segment's start is simply not a candidate. The table is
/// cleared only when that count would wrap, every 4 GiB.
mod fixed {
    /// Hash table: 2^15 positions (128 KiB), indexed by a hash of 4 bytes.
    const HASH_BITS: u32 = 15;
    /// Deflate's window: the farthest a match may point back.
    const WINDOW: usize = 32 * 1024;
    /// Matches shorter than this are not taken (they would save little over literals).
    const MIN_MATCH: usize = 4;
    /// Deflate's longest match.
    const MAX_MATCH: usize = 258;
    /// Inputs are deflated in pieces of at most this many bytes, so that a position in the
    /// running count always fits a u32. Matches do not cross pieces.
    const PIECE: usize = 1 << 30;

    /// A code, its bits in the order they are written (least significant first), and its
    /// length in bits.
    #[derive(Clone, Copy)]
    struct Code {
        bits: u32,
        len: u32,
    }

    const fn reverse(code: u32, len: u32) -> u32 {
        let mut r = 0;
        let mut i = 0;
        while i < len {
            r |= ((code >> i) & 1) << (len - 1 - i);
            i += 1;
        }
        r
    }

    /// The fixed literal/length code of symbol `s` (RFC 1951, 3.2.6).
    const fn lit_code(s: u32) -> Code {
        let (code, len) = match s {
            0..=143 => (0x30 + s, 8),
            144..=255 => (0x190 + s - 144, 9),
            256..=279 => (s - 256, 7),
            _ => (0xc0 + s - 280, 8),
        };
        Code { bits: reverse(code, len), len }
    }

    const LITERALS: [Code; 256] = {
        let mut t = [Code { bits: 0, len: 0 }; 256];
        let mut s = 0;
        while s < 256 {
            t[s] = lit_code(s as u32);
            s += 1;
        }
        t
    };

    const LEN_BASE: [u32; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ];
    const LEN_EXTRA: [u32; 29] =
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];

    /// For each match length 0..=258: its length symbol's code followed by its extra bits.
    const LENGTHS: [Code; MAX_MATCH + 1] = {
        let mut t = [Code { bits: 0, len: 0 }; MAX_MATCH + 1];
        let mut l = 3;
        while l <= MAX_MATCH {
            let mut k = 28;
            while LEN_BASE[k] > l as u32 {
                k -= 1;
            }
            let c = lit_code(257 + k as u32);
            t[l] = Code { bits: c.bits | ((l as u32 - LEN_BASE[k]) << c.len), len: c.len + LEN_EXTRA[k] };
            l += 1;
        }
        t
    };

    /// The 5-bit distance code of `dist` (1..=32768) followed by its extra bits.
    #[inline]
    fn distance(dist: usize) -> Code {
        let x = (dist - 1) as u32;
        if x < 4 {
            return Code { bits: reverse5(x), len: 5 };
        }
        let nb = 31 - x.leading_zeros(); // floor(log2(x)), at least 2
        let code = 2 * nb + ((x >> (nb - 1)) & 1);
        let extra = nb - 1;
        Code { bits: reverse5(code) | ((x & ((1 << extra) - 1)) << 5), len: 5 + extra }
    }

    #[inline]
    fn reverse5(c: u32) -> u32 {
        c.reverse_bits() >> 27
    }

    /// Bits out, least significant first, into a Vec.
    struct Bits<'a> {
        out: &'a mut Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits<'_> {
        #[inline]
        fn put(&mut self, bits: u32, len: u32) {
            self.acc |= (bits as u64) << self.n;
            self.n += len;
            if self.n >= 32 {
                self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
                self.acc >>= 32;
                self.n -= 32;
            }
        }

        /// Writes what is left, padded with zero bits to the byte.
        fn align(&mut self) {
            while self.n > 0 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n = self.n.saturating_sub(8);
            }
        }
    }

    #[inline]
    fn load32(s: &[u8], i: usize) -> u32 {
        u32::from_le_bytes(s[i..i + 4].try_into().unwrap())
    }

    #[inline]
    fn hash(v: u32) -> usize {
        (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
    }

    /// How many bytes from `a` equal those from `b` (`a < b`), up to `end`.
    #[inline]
    fn common(s: &[u8], mut a: usize, mut b: usize, end: usize) -> usize {
        let start = b;
        while b + 8 <= end {
            let x = u64::from_le_bytes(s[a..a + 8].try_into().unwrap())
                ^ u64::from_le_bytes(s[b..b + 8].try_into().unwrap());
            if x != 0 {
                return b - start + (x.trailing_zeros() / 8) as usize;
            }
            a += 8;
            b += 8;
        }
        while b < end && s[a] == s[b] {
            a += 1;
            b += 1;
        }
        b - start
    }

    pub struct Deflater {
        /// Positions (in the running count) of the last place each hash was seen.
        table: Box<[u32]>,
        /// The running count of bytes deflated: position of the next piece's first byte.
        base: u32,
    }

    impl Deflater {
        pub fn new() -> Deflater {
            // Base 1: the zeroed table then holds no candidate.
            Deflater { table: vec![0; 1 << HASH_BITS].into_boxed_slice(), base: 1 }
        }

        /// A deflater whose running count is at `base` (tests of the wrap).
        #[cfg(test)]
        pub fn at(base: u32) -> Deflater {
            Deflater { base, ..Deflater::new() }
        }

        /// Appends `input` to `out` as one fixed-Huffman block followed by an empty stored
        /// block (the sync flush), ending on a byte boundary; nothing if `input` is empty.
        pub fn segment(&mut self, input: &[u8], out: &mut Vec<u8>) {
            if input.is_empty() {
                return;
            }
            // Worst case: every byte a 9-bit literal.
            out.reserve(input.len() + input.len() / 8 + 16);
            let mut bits = Bits { out, acc: 0, n: 0 };
            bits.put(0b010, 3); // BFINAL=0, BTYPE=01 (fixed codes)
            for piece in input.chunks(PIECE) {
                self.piece(piece, &mut bits);
            }
            bits.put(0, 7); // end of block (symbol 256)
            bits.put(0, 3); // BFINAL=0, BTYPE=00 (stored), then LEN=0, NLEN=0xffff
            bits.align();
            bits.out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }

        fn piece(&mut self, s: &[u8], bits: &mut Bits) {
            let n = s.len();
            if (u32::MAX - self.base) as usize <= n {
                self.table.fill(0);
                self.base = 1;
            }
            let base = self.base;
            let table = &mut self.table[..];
            let mut i = 0;
            while i + MIN_MATCH <= n {
                let cur = load32(s, i);
                let slot = &mut table[hash(cur)];
                let cand = *slot;
                *slot = base + i as u32;
                if cand >= base {
                    let c = (cand - base) as usize;
                    if i - c <= WINDOW && load32(s, c) == cur {
                        let end = n.min(i + MAX_MATCH);
                        let len = MIN_MATCH + common(s, c + MIN_MATCH, i + MIN_MATCH, end);
                        let l = LENGTHS[len];
                        let d = distance(i - c);
                        bits.put(l.bits | (d.bits << l.len), l.len + d.len);
                        i += len;
                        continue;
                    }
                }
                let c = LITERALS[s[i] as usize];
                bits.put(c.bits, c.len);
                i += 1;
            }
            for &b in &s[i..] {
                let c = LITERALS[b as usize];
                bits.put(c.bits, c.len);
            }
            self.base += n as u32;
        }
    }
    /// Why a segment did not decode (its own bytes are not a segment [`Deflater::segment`]
    /// makes, or `dst` is not its plain length).
    #[derive(Debug, PartialEq, Eq)]
    pub struct Corrupt(pub &'static str);

    /// An entry of the literal/length table, packed in 32 bits so that four fit in
    /// registers: the literal byte or base length (bits 0-15), how many bits the code takes
    /// (16-19), how many extra bits follow a length code (20-23), what the code means
    /// (24-25), and whether it is a literal with an 8-bit code (bit 26).
    #[derive(Clone, Copy)]
    struct Sym(u32);

    impl Sym {
        const fn new(kind: u32, bits: u32, extra: u32, value: u32) -> Sym {
            let fast = (kind == LITERAL && bits == 8) as u32;
            Sym(value | bits << 16 | extra << 20 | kind << 24 | fast << 26)
        }
        #[inline(always)]
        fn value(self) -> u32 {
            self.0 & 0xffff
        }
        #[inline(always)]
        fn bits(self) -> u32 {
            (self.0 >> 16) & 15
        }
        #[inline(always)]
        fn extra(self) -> u32 {
            (self.0 >> 20) & 15
        }
        #[inline(always)]
        fn kind(self) -> u32 {
            (self.0 >> 24) & 3
        }
        #[inline(always)]
        fn fast(self) -> u32 {
            (self.0 >> 26) & 1
        }
    }

    const LITERAL: u32 = 0;
    const LENGTH: u32 = 1;
    const END: u32 = 2;
    const INVALID: u32 = 3;

    /// The fixed literal/length codes looked up by the next 9 bits of the stream (codes are
    /// 7 to 9 bits; a shorter code fills every entry its unused high bits could select).
    const LIT_TABLE: [Sym; 512] = {
        let mut t = [Sym::new(INVALID, 0, 0, 0); 512];
        let mut s = 0;
        while s < 288 {
            let c = lit_code(s);
            let sym = match s {
                0..=255 => Sym::new(LITERAL, c.len, 0, s),
                256 => Sym::new(END, c.len, 0, 0),
                257..=285 => Sym::new(LENGTH, c.len, LEN_EXTRA[s as usize - 257], LEN_BASE[s as usize - 257]),
                _ => Sym::new(INVALID, c.len, 0, 0),
            };
            let mut fill = 0;
            while fill < 1 << (9 - c.len) {
                t[(c.bits | (fill << c.len)) as usize] = sym;
                fill += 1;
            }
            s += 1;
        }
        t
    };

    /// The 5-bit distance codes by their bits as read (reversed): base distance and number
    /// of extra bits; codes 30 and 31 do not occur (base 0).
    const DIST_TABLE: [(u16, u8); 32] = {
        let mut t = [(0u16, 0u8); 32];
        let mut code = 0u32;
        while code < 30 {
            let (base, extra) = if code < 4 {
                (code + 1, 0)
            } else {
                let extra = code / 2 - 1;
                (((2 + (code & 1)) << extra) + 1, extra)
            };
            t[reverse(code, 5) as usize] = (base as u16, extra as u8);
            code += 1;
        }
        t
    };

    /// Reads a segment's bits, least significant first. Past the end it reads zero bits and
    /// still counts the bytes, so that a truncated segment shows up in [`Reader::position`].
    struct Reader<'a> {
        src: &'a [u8],
        pos: usize,
        buf: u64,
        n: u32,
    }

    impl Reader<'_> {
        /// At least 56 bits in `buf`.
        #[inline(always)]
        fn refill(&mut self) {
            if let Some(b) = self.src.get(self.pos..self.pos + 8) {
                self.buf |= u64::from_le_bytes(b.try_into().unwrap()) << self.n;
                self.pos += (63 - self.n as usize) / 8;
                self.n |= 56;
            } else {
                while self.n <= 56 {
                    let b = self.src.get(self.pos).copied().unwrap_or(0);
                    self.buf |= (b as u64) << self.n;
                    self.pos += 1;
                    self.n += 8;
                }
            }
        }

        #[inline(always)]
        fn take(&mut self, bits: u32) -> u32 {
            let v = (self.buf & ((1u64 << bits) - 1)) as u32;
            self.buf >>= bits;
            self.n -= bits;
            v
        }

        /// The stream position of the next unread bit.
        fn position(&self) -> usize {
            self.pos * 8 - self.n as usize
        }
    }

    /// Decodes `seg`, one segment as [`Deflater::segment`] writes it, into `dst`, which
    /// must be exactly its plain length. Only this shape is read: one block with the fixed
    /// codes, then the empty stored block of a sync flush, and nothing after it. Matches are
    /// copied 16 bytes at a time where the output has room past them (bytes beyond a match
    /// are written again by what follows it).
    pub fn inflate(seg: &[u8], dst: &mut [u8]) -> Result<(), Corrupt> {
        if seg.is_empty() {
            return if dst.is_empty() { Ok(()) } else { Err(Corrupt("empty segment for plain bytes")) };
        }
        let mut r = Reader { src: seg, pos: 0, buf: 0, n: 0 };
        r.refill();
        if r.take(3) != 0b010 {
            return Err(Corrupt("not a non-final block with the fixed codes"));
        }
        let mut o = 0;
        loop {
            r.refill();
            // Seven symbols looked up at once, as if each were a literal with an 8-bit code
            // (every byte below 144: all of an exposition's text); those that are form a run
            // written in one go. The lookups do not wait for each other, where decoding one
            // symbol after another waits for each lookup to know where the next code starts.
            let b = r.buf;
            let e = [0, 8, 16, 24, 32, 40, 48].map(|shift| LIT_TABLE[((b >> shift) & 511) as usize]);
            let fast = e.iter().enumerate().fold(0, |m, (i, s)| m | s.fast() << i);
            let run = (!fast).trailing_zeros() as usize;
            if let Some(out) = dst.get_mut(o..o + 8) {
                // Bytes past the run are written again by what follows it.
                let v = e.map(|s| s.value() as u8);
                out.copy_from_slice(&[v[0], v[1], v[2], v[3], v[4], v[5], v[6], 0]);
            } else if o + run > dst.len() {
                return Err(Corrupt("more bytes than the plain length"));
            } else {
                for (i, s) in e[..run].iter().enumerate() {
                    dst[o + i] = s.value() as u8;
                }
            }
            o += run;
            r.take(8 * run as u32);
            if run > 3 {
                // Too few bits left for a length and distance: refill first.
                continue;
            }
            // At least 56 - 24 bits left: enough for any one symbol with its distance.
            let s = e[run];
            r.take(s.bits());
            match s.kind() {
                LITERAL => {
                    *dst.get_mut(o).ok_or(Corrupt("more bytes than the plain length"))? = s.value() as u8;
                    o += 1;
                }
                LENGTH => {
                    // At most 8 + 5 + 5 + 13 bits since the refill: no refill needed.
                    let len = s.value() as usize + r.take(s.extra()) as usize;
                    let (base, extra) = DIST_TABLE[r.take(5) as usize];
                    if base == 0 {
                        return Err(Corrupt("invalid distance code"));
                    }
                    let dist = base as usize + r.take(extra as u32) as usize;
                    if dist > o {
                        return Err(Corrupt("distance before the segment's start"));
                    }
                    if len > dst.len() - o {
                        return Err(Corrupt("more bytes than the plain length"));
                    }
                    copy_match(dst, o, dist, len);
                    o += len;
                }
                END => break,
                _ => return Err(Corrupt("invalid literal/length code")),
            }
        }
        if o != dst.len() {
            return Err(Corrupt("fewer bytes than the plain length"));
        }
        // The sync flush: an empty stored block (3 zero bits, padding, LEN=0, NLEN=0xffff).
        r.refill();
        if r.take(3) != 0 {
            return Err(Corrupt("no sync flush after the block"));
        }
        let at = r.position().div_ceil(8);
        if seg.get(at..) != Some(&[0, 0, 0xff, 0xff][..]) {
            return Err(Corrupt("not ended by a sync flush"));
        }
        Ok(())
    }

    /// `dst[o..o + len] = dst[o - dist..][..len]`, the copy repeating when `dist < len`.
    #[inline(always)]
    fn copy_match(dst: &mut [u8], o: usize, dist: usize, len: usize) {
        let from = o - dist;
        if dist >= 16 && o + len + 16 <= dst.len() {
            // Whole 16-byte pieces: each read ends at or before the write it feeds.
            let mut k = 0;
            while k < len {
                let piece: [u8; 16] = dst[from + k..from + k + 16].try_into().unwrap();
                dst[o + k..o + k + 16].copy_from_slice(&piece);
                k += 16;
            }
        } else if dist >= len {
            dst.copy_within(from..from + len, o);
        } else if dist == 1 {
            let b = dst[from];
            dst[o..o + len].fill(b);
        } else {
            for k in 0..len {
                dst[o + k] = dst[from + k];
            }
        }
    }
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

    /// Inflates one segment, closed by the final block a scrape ends with.
    fn inflate(segment: &[u8]) -> Vec<u8> {
        let raw = [segment, &FINAL_BLOCK].concat();
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&raw[..]).read_to_end(&mut out).expect("valid deflate");
        out
    }

    #[test]
    fn segment_crcs_combine_in_any_order_into_the_crc_of_the_whole() {
        let mut next = noise(7);
        let bytes: Vec<u8> = (0..300_000).map(|_| b"abc{}=\"\n0123"[next() as usize % 12]).collect();
        let mut ranges = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            // Empty ranges too, and lengths with many bits set.
            let n = ((next() % 70_000) as usize).min(bytes.len() - at);
            ranges.push((at, at + n));
            at += n;
        }
        ranges.push((at, at));
        let segs = deflate_segments(&bytes, &ranges);
        for (i, &(s, e)) in ranges.iter().enumerate() {
            let p = segs.plain[i];
            assert_eq!((p.crc, p.len), (crc32fast::hash(&bytes[s..e]), (e - s) as u64));
            assert_eq!(p.shift, crc::shift(p.len));
        }
        // In order, the CRC of the input; in another order, the CRC of the ranges so placed.
        for order in [(0..ranges.len()).collect::<Vec<_>>(), (0..ranges.len()).rev().collect()] {
            let (mut sum, mut whole) = (0, Vec::new());
            for &i in &order {
                let p = segs.plain[i];
                sum = crc::combine(sum, p.crc, p.shift);
                whole.extend_from_slice(&bytes[ranges[i].0..ranges[i].1]);
            }
            assert_eq!(sum, crc32fast::hash(&whole));
        }
        // Plain bytes continue a combined CRC; nothing shifts by x^0.
        let c = crc::combine(crc32fast::hash(b"abc"), crc32fast::hash(b"de"), crc::shift(2));
        assert_eq!(crc::extend(c, b"fgh"), crc32fast::hash(b"abcdefgh"));
        assert_eq!(crc::combine(c, 0, crc::shift(0)), c);
        assert_eq!(crc::multiply(0, 12345), 0);
        let big = crc::shift(5 << 30);
        assert_eq!(crc::multiply(crc::shift(1 << 30), crc::shift(4 << 30)), big, "x^a * x^b = x^(a+b)");
        // Lengths looked up whole, and those past the table, agree with products of each other.
        for (a, b) in [(1, 0), (1, 1), (4095, 1), (4096, 4096), (4097, 8191), (1 << 20, 4095), (123_457, 99)] {
            assert_eq!(crc::multiply(crc::shift(a), crc::shift(b)), crc::shift(a + b), "{a} + {b}");
        }
        assert_eq!(crc::shift(0), 1 << 31, "x^0");
    }

    /// A small xorshift: inputs for the round trips without a dependency.
    fn noise(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Inputs that exercise every code: all byte values, runs (distance 1, overlapping
    /// copies), matches of every length up to and past 258, far and near distances, the
    /// 32 KiB window's edge, text like an exposition, and tails shorter than a hash.
    fn inputs() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            b"ab".to_vec(),
            b"abc".to_vec(),
            b"abcd".to_vec(),
            b"abcdabcd".to_vec(),
            (0..=255u8).collect(),
            (0..=255u8).cycle().take(5000).collect(),
            vec![b'x'; 1000],
            vec![0xff; 70_000],
        ];
        for len in [3usize, 4, 5, 10, 11, 257, 258, 259, 300, 600] {
            let mut s = vec![b'q'];
            s.extend((0..len).map(|i| b'a' + (i % 23) as u8));
            s.push(b'|');
            s.extend((0..len).map(|i| b'a' + (i % 23) as u8));
            v.push(s);
        }
        let mut r = noise(7);
        let block: Vec<u8> = (0..300).map(|_| r() as u8).collect();
        for gap in [0usize, 100, 32_000, 32_768 - 300, 32_768 - 299, 32_768, 40_000] {
            let mut s = block.clone();
            s.extend((0..gap).map(|_| r() as u8));
            s.extend_from_slice(&block);
            v.push(s);
        }
        let text: Vec<u8> = (0..4000)
            .flat_map(|i| {
                format!("node_cpu_seconds_total{{cpu=\"{}\",mode=\"idle\"}} {}.{}\n", i % 97, i * 31, i % 7)
                    .into_bytes()
            })
            .collect();
        v.push(text);
        // Random bytes from a small alphabet, many lengths.
        for len in [1usize, 2, 5, 7, 8, 9, 15, 16, 17, 100, 1000, 65_537] {
            v.push((0..len).map(|_| b"abc\n"[(r() % 4) as usize]).collect());
        }
        v
    }

    #[test]
    fn every_input_round_trips_as_one_segment() {
        for input in inputs() {
            let segs = deflate_segments(&input, &[(0, input.len())]);
            let seg = segs.get(0);
            assert_eq!(&seg[seg.len() - 4..], &[0, 0, 0xff, 0xff], "ends with a sync flush");
            assert_eq!(inflate(seg), input, "input of {} bytes", input.len());
            assert!(seg.len() <= input.len() + input.len() / 8 + 16);
        }
    }

    #[test]
    fn own_inflater_reads_back_every_input() {
        for input in inputs() {
            let segs = deflate_segments(&input, &[(0, input.len())]);
            let mut out = vec![0xaa; input.len()];
            fixed::inflate(segs.get(0), &mut out).expect("own segment");
            assert_eq!(out, input, "input of {} bytes", input.len());
            // Appending after bytes already there.
            let mut v = b"head".to_vec();
            inflate_segment(segs.get(0), input.len(), &mut v);
            assert_eq!(&v[..4], b"head");
            assert_eq!(&v[4..], &input[..]);
        }
        // Ranges of one buffer, and an empty one.
        let text = inputs().pop().unwrap();
        let ranges = [(0, 0), (0, 1), (1, 40), (40, 9000), (9000, text.len())];
        let segs = deflate_segments(&text, &ranges);
        for (i, &(s, e)) in ranges.iter().enumerate() {
            let mut out = vec![0; e - s];
            fixed::inflate(segs.get(i), &mut out).expect("own segment");
            assert_eq!(out, &text[s..e]);
        }
    }

    #[test]
    fn own_inflater_refuses_what_is_not_a_whole_segment_of_that_length() {
        let text = inputs().pop().unwrap();
        let segs = deflate_segments(&text, &[(0, text.len())]);
        let seg = segs.get(0);
        let n = text.len();
        let mut out = vec![0; n + 1];
        let err = |seg: &[u8], out: &mut [u8]| fixed::inflate(seg, out).expect_err("must not decode");
        assert_eq!(err(seg, &mut out[..n - 1]).0, "more bytes than the plain length");
        assert_eq!(err(seg, &mut out[..n + 1]).0, "fewer bytes than the plain length");
        assert_eq!(err(&seg[..seg.len() - 1], &mut out[..n]).0, "not ended by a sync flush");
        assert_eq!(err(&[seg, &[0]].concat(), &mut out[..n]).0, "not ended by a sync flush");
        assert_eq!(err(&[], &mut out[..1]).0, "empty segment for plain bytes");
        assert_eq!(fixed::inflate(&[], &mut []), Ok(()));
        // A zlib stream of the same bytes (dynamic codes, final block) is not ours to read.
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut z, &text).unwrap();
        assert!(fixed::inflate(&z.finish().unwrap(), &mut out[..n]).is_err());
        // Any damage: an error or other bytes, never a panic or a read out of bounds.
        let mut next = noise(11);
        for _ in 0..3000 {
            let mut bad = seg.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = next() as usize % bad.len();
                bad[at] ^= 1 << (next() % 8);
            }
            bad.truncate(bad.len() - (next() % 3) as usize * (next() % 2) as usize);
            let _ = fixed::inflate(&bad, &mut out[..n]);
        }
    }

    #[test]
    #[should_panic(expected = "did not inflate to its")]
    fn a_segment_of_another_length_is_a_bug() {
        let segs = deflate_segments(b"abcabcabc", &[(0, 9)]);
        inflate_to(segs.get(0), &mut [0; 8]);
    }

    #[test]
    fn a_segment_never_refers_to_an_earlier_one() {
        // The same bytes twice in a row on one thread: the table holds the first copy's
        // positions, and the second segment must still decode alone.
        let text = inputs().pop().unwrap();
        let a = deflate_segments(&text, &[(0, text.len()), (0, text.len())]);
        assert_eq!(a.get(0), a.get(1), "each segment is a function of its own bytes");
        assert_eq!(inflate(a.get(1)), text);
        // A range that starts inside the previous one.
        let b = deflate_segments(&text, &[(0, 5000), (100, 5100)]);
        assert_eq!(inflate(b.get(1)), &text[100..5100]);
    }

    #[test]
    fn the_running_count_wraps() {
        let text = inputs().pop().unwrap();
        let mut d = fixed::Deflater::at(u32::MAX - 10);
        let mut first = Vec::new();
        d.segment(&text, &mut first);
        let mut second = Vec::new();
        d.segment(&text, &mut second);
        assert_eq!(inflate(&first), text);
        assert_eq!(first, second);
    }

    #[test]
    fn exposition_compresses_like_zlib_level_1() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/node-exporter-2cpu.prom");
        let body = std::fs::read_to_string(path).expect(path);
        let ours = deflate_segments(body.as_bytes(), &[(0, body.len())]);
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(1));
        std::io::Write::write_all(&mut z, body.as_bytes()).unwrap();
        let zlib = z.finish().unwrap();
        assert_eq!(inflate(ours.get(0)), body.as_bytes());
        // zlib-rs level 1 is the same method (greedy, one probe, fixed codes): within 15 %.
        assert!(ours.data.len() * 100 <= zlib.len() * 115, "ours {} zlib {}", ours.data.len(), zlib.len());
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
