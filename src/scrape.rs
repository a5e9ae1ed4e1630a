//! `GET /metrics`: merge every shard's pre-rendered families and write them out.
//!
//! Each shard hands over a snapshot of reference-counted chunks, already sorted by family
//! name. The merge walks the families by name, writes each family's `# HELP` and `# TYPE`
//! once into a small header buffer, and lists the header and then every group's chunk as
//! slices for one vectored write: no sample is re-encoded or copied on the way out.
//!
//! HELP conflicts (two groups pushing one family with different HELP) resolve to the text
//! that sorts first, so every scrape shows the same one. A family whose TYPE differs between
//! shards can only be seen during the instant one group replaces another's last holder; the
//! chunks that disagree with the first one are left out of that scrape, so the output stays
//! valid for strict parsers.

use std::sync::Arc;

use crate::sys::prefetch;

use crate::expo::RenderedFamily;
use crate::store::ShardSnapshot;

/// A scrape ready to be written: `header` holds every HELP/TYPE line (shared by the runs
/// [`Assembled::take`] moves out), `parts` says in what order header ranges and chunks go out.
pub struct Assembled {
    header: Arc<[u8]>,
    parts: Vec<Part>,
    pub len: usize,
    pub families: usize,
    pub dropped: usize,
}

enum Part {
    Header(usize, usize),
    Chunk(Arc<RenderedFamily>),
    /// Only the deflate segment of a chunk, for a gzip scrape that no longer needs its plain
    /// bytes (see [`Assembled::keep_deflated_only`]).
    /// Segment `.1` of `.0`, whose plain bytes are `.2` long (kept here: reading it from the
    /// segments would cost a cache miss each time the scrape measures its runs).
    Deflated(Arc<crate::gzip::Segments>, u32, u32),
    /// A chunk moved out to the run that writes it (see [`Assembled::take`]).
    Released,
}

impl Assembled {
    /// The output as slices, in order (stored bytes only: see [`plain`](Assembled::plain)).
    pub fn slices(&self) -> Vec<&[u8]> {
        self.slices_of(0..self.parts.len())
    }

    /// The plain bytes of one part as stored (none once released or converted to its
    /// segment, nor for a compressed group's chunk: see [`has_compressed`]).
    ///
    /// [`has_compressed`]: Assembled::has_compressed
    fn plain<'a>(&'a self, p: &'a Part) -> &'a [u8] {
        match p {
            Part::Header(s, e) => &self.header[*s..*e],
            Part::Chunk(c) => c.samples.stored().unwrap_or(&[]),
            Part::Deflated(..) | Part::Released => &[],
        }
    }

    /// Length of one part's plain bytes in the output (0 once released).
    fn part_len(&self, p: &Part) -> usize {
        match p {
            Part::Header(s, e) => e - s,
            Part::Chunk(c) => c.samples.len(),
            Part::Deflated(_, _, len) => *len as usize,
            Part::Released => 0,
        }
    }

    /// Whether any chunk of parts `range` belongs to a compressed group, whose plain bytes
    /// must be inflated ([`plain_into`]) rather than sent as stored ([`slices_of`]).
    ///
    /// [`plain_into`]: Assembled::plain_into
    /// [`slices_of`]: Assembled::slices_of
    pub fn has_compressed(&self, range: std::ops::Range<usize>) -> bool {
        self.parts[range].iter().any(|p| matches!(p, Part::Chunk(c) if c.samples.is_compressed()))
    }

    /// Appends the plain output of parts `range` to `out` (see [`plain_to`]).
    ///
    /// [`plain_to`]: Assembled::plain_to
    pub fn plain_into(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        let start = out.len();
        let len = self.parts[range.clone()].iter().map(|p| self.part_len(p)).sum::<usize>();
        out.resize(start + len, 0);
        self.plain_to(range, &mut out[start..]);
    }

    /// Writes the plain output of parts `range` into `dst`, exactly its length: stored bytes
    /// copied, compressed groups inflated (on a blocking thread in a scrape: this is what a
    /// plain scrape of a compressed store costs).
    ///
    /// First it finds where every part's bytes are, then it copies and inflates. A scrape
    /// takes each group's chunk of one family after another's, so each part is a few cache
    /// misses away (its family, its group's buffer, the segments); in a loop that does only
    /// that, the processor has several parts' misses in flight at once, where between two
    /// inflates it would wait for each in turn.
    pub fn plain_to(&self, range: std::ops::Range<usize>, dst: &mut [u8]) {
        use crate::expo::Source;
        let sources: Vec<Source<'_>> = self.parts[range]
            .iter()
            .map(|p| match p {
                Part::Chunk(c) => c.samples.source(),
                Part::Deflated(segments, i, len) => {
                    let i = *i as usize;
                    Source::Deflated(segments.get(i), *len as usize)
                }
                p => Source::Stored(self.plain(p)),
            })
            .collect();
        let mut at = 0;
        for s in sources {
            match s {
                Source::Stored(b) => {
                    dst[at..at + b.len()].copy_from_slice(b);
                    at += b.len();
                }
                Source::Deflated(seg, len) => {
                    crate::gzip::inflate_to(seg, &mut dst[at..at + len]);
                    at += len;
                }
            }
        }
        assert_eq!(at, dst.len(), "plain_to: the destination is not the parts' plain length");
    }

    /// Parts `range` of the output as slices, in order.
    pub fn slices_of(&self, range: std::ops::Range<usize>) -> Vec<&[u8]> {
        self.parts[range].iter().map(|p| self.plain(p)).collect()
    }

    /// For a gzip scrape: holds only the deflate segment of every chunk that has one, so that
    /// a push replacing such a group while the scrape is written frees its plain bytes at
    /// once. Segments are about a fifth of the plain bytes, and keep the CRC of the plain
    /// bytes ([`crc`] still works). Chunks without a segment stay whole. Plain slices of
    /// converted parts read empty from now on. (A chunk of 4 GiB or more, which no push
    /// under the body limits makes, would stay whole.)
    ///
    /// [`crc`]: Assembled::crc
    ///
    /// Each chunk leads through three blocks of memory (the family, its group's buffer, the
    /// segments' reference count), each one a cache miss in a large store: the loop asks for
    /// them [`AHEAD`] parts apart, each step once the one before is in (see [`gzip_body`]).
    ///
    /// [`gzip_body`]: Assembled::gzip_body
    pub fn keep_deflated_only(&mut self, range: std::ops::Range<usize>) {
        let parts = &mut self.parts[range];
        for j in 0..parts.len() {
            if let Some(Part::Chunk(c)) = parts.get(j + 3 * AHEAD) {
                prefetch(Arc::as_ptr(c));
            }
            if let Some(Part::Chunk(c)) = parts.get(j + 2 * AHEAD) {
                c.samples.prefetch_buf();
            }
            if let Some(Part::Chunk(c)) = parts.get(j + AHEAD) {
                c.samples.prefetch_segments();
            }
            let p = &mut parts[j];
            if let Part::Chunk(c) = p {
                if let (true, Ok(len)) = (c.samples.has_deflated(), u32::try_from(c.samples.len())) {
                    let (segments, i) = c.samples.segment();
                    *p = Part::Deflated(segments, i, len);
                }
            }
        }
    }

    /// CRC-32 and length of the plain bytes of parts `range`: combined from the CRCs their
    /// deflate segments keep where they have one (one multiplication each), computed over
    /// the plain bytes of the rest (HELP/TYPE lines, chunks not deflated yet). Released parts
    /// count as nothing.
    pub fn crc(&self, range: std::ops::Range<usize>) -> (u32, u64) {
        let mut sum = 0u32;
        let mut len = 0u64;
        for p in &self.parts[range] {
            let kept = match p {
                Part::Chunk(c) => c.samples.plain_crc(),
                Part::Deflated(segments, i, _) => Some(segments.plain[*i as usize]),
                Part::Header(..) | Part::Released => None,
            };
            (sum, len) = self.crc_add(p, kept, (sum, len));
        }
        (sum, len)
    }

    /// Adds part `p`'s plain bytes to a running CRC-32 and length: by its segment's CRC
    /// (`kept`) where it has one, over its stored bytes otherwise.
    fn crc_add(&self, p: &Part, kept: Option<crate::gzip::PlainCrc>, (sum, len): (u32, u64)) -> (u32, u64) {
        use crate::gzip::crc;
        match kept {
            Some(k) => (crc::combine(sum, k.crc, k.shift), len + k.len),
            None => {
                let plain = self.plain(p);
                (crc::extend(sum, plain), len + plain.len() as u64)
            }
        }
    }

    /// Makes the deflate segments that parts `range` lack (on a blocking thread: this is the
    /// compression a gzip scrape costs).
    pub fn make_segments(&self, range: std::ops::Range<usize>) {
        for p in &self.parts[range] {
            if let Part::Chunk(c) = p {
                c.samples.deflated();
            }
        }
    }

    /// Number of parts (header ranges and chunks).
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Copies the output into one buffer (tests, gzip), inflating compressed groups.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.plain_into(0..self.parts.len(), &mut out);
        out
    }
}

pub fn assemble(snapshots: Vec<ShardSnapshot>) -> Assembled {
    let mut cursors: Vec<std::iter::Peekable<std::vec::IntoIter<Vec<Arc<RenderedFamily>>>>> =
        snapshots.into_iter().map(|s| s.families.into_iter().peekable()).collect();
    let mut header = Vec::with_capacity(64 * 1024);
    let mut out = Assembled { header: Arc::default(), parts: Vec::new(), len: 0, families: 0, dropped: 0 };
    let mut chunks: Vec<Arc<RenderedFamily>> = Vec::new();
    // The smallest family name at the head of any shard's list.
    while let Some(name) =
        cursors.iter_mut().filter_map(|c| c.peek().and_then(|f| f.first()).map(|f| f.name.clone())).min()
    {
        chunks.clear();
        for c in cursors.iter_mut() {
            if c.peek().and_then(|f| f.first()).is_some_and(|f| f.name == name) {
                chunks.extend(c.next().unwrap_or_default());
            }
        }
        let mtype = chunks[0].mtype;
        let help = chunks.iter().filter_map(|c| c.help.as_deref()).min();
        let start = header.len();
        if let Some(h) = help {
            header.extend_from_slice(b"# HELP ");
            header.extend_from_slice(name.as_bytes());
            header.push(b' ');
            header.extend_from_slice(h.as_bytes());
            header.push(b'\n');
        }
        header.extend_from_slice(b"# TYPE ");
        header.extend_from_slice(name.as_bytes());
        header.push(b' ');
        header.extend_from_slice(mtype.as_str().as_bytes());
        header.push(b'\n');
        out.len += header.len() - start;
        out.parts.push(Part::Header(start, header.len()));
        out.families += 1;
        for c in chunks.drain(..) {
            if c.mtype != mtype {
                out.dropped += 1;
                continue;
            }
            out.len += c.samples.len();
            out.parts.push(Part::Chunk(c));
        }
    }
    out.header = header.into();
    out
}

impl Assembled {
    /// Splits the parts into at most `n` consecutive runs of roughly equal bytes.
    pub fn split(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        let target = (self.len / n.max(1)).max(1);
        let mut out = Vec::with_capacity(n);
        let (mut start, mut acc) = (0, 0);
        for (i, p) in self.parts.iter().enumerate() {
            acc += self.part_len(p);
            if acc >= target && out.len() + 1 < n {
                out.push(start..i + 1);
                start = i + 1;
                acc = 0;
            }
        }
        if start < self.parts.len() || out.is_empty() {
            out.push(start..self.parts.len());
        }
        out
    }

    /// Compresses parts `range` into one gzip member, from scratch (benchmarks compare it
    /// with the segments a scrape sends).
    pub fn gzip_range(&self, range: std::ops::Range<usize>, level: u32) -> Vec<u8> {
        let mut plain = Vec::new();
        self.plain_into(range, &mut plain);
        crate::decompress::gzip_member(&[&plain[..]], level)
    }

    /// Whether every chunk of parts `range` has its deflate segment already (nothing left to
    /// compress for a gzip scrape).
    pub fn gzip_ready(&self, range: std::ops::Range<usize>) -> bool {
        self.parts[range].iter().all(|p| match p {
            Part::Chunk(c) => c.samples.has_deflated(),
            _ => true,
        })
    }

    /// Parts `range` as the slices of a gzip body, and the CRC-32 and length of their plain
    /// bytes (as [`crc`] gives them), in one pass; call it after [`make_segments`] of that
    /// range. HELP/TYPE lines go in stored blocks whose 5-byte headers are kept in `frames`,
    /// chunks as their deflate segments.
    ///
    /// A gzip scrape of a large store has millions of parts, and each one's segment and CRC
    /// sit in a different group's memory: read one part after another, every part waits for
    /// two or three cache misses in turn (the part's `Segments`, then its entries of `plain`
    /// and `ends`). So the loop asks for the `Segments` of the part [`AHEAD`] × 2 places on
    /// and for the entries of the part [`AHEAD`] places on (whose `Segments` it asked for
    /// earlier), and the misses of many parts overlap.
    ///
    /// [`crc`]: Assembled::crc
    /// [`make_segments`]: Assembled::make_segments
    pub fn gzip_body<'a>(
        &'a self,
        range: std::ops::Range<usize>,
        frames: &'a mut Vec<[u8; 5]>,
        out: &mut Vec<&'a [u8]>,
    ) -> (u32, u64) {
        use crate::gzip::crc;
        frames.clear();
        for p in &self.parts[range.clone()] {
            if let Part::Header(s, e) = p {
                crate::gzip::Framer::stored_headers(e - s, frames);
            }
        }
        let frames: &'a [[u8; 5]] = frames;
        let parts = &self.parts[range];
        let (mut sum, mut len, mut next) = (0u32, 0u64, 0);
        for (j, p) in parts.iter().enumerate() {
            if let Some(Part::Deflated(segments, ..)) = parts.get(j + 2 * AHEAD) {
                prefetch(Arc::as_ptr(segments));
            }
            if let Some(Part::Deflated(segments, i, _)) = parts.get(j + AHEAD) {
                prefetch(segments.plain.as_ptr().wrapping_add(*i as usize));
                prefetch(segments.ends.as_ptr().wrapping_add(*i as usize));
            }
            let (kept, seg) = match p {
                Part::Header(s, e) => {
                    let lines = &self.header[*s..*e];
                    sum = crc::extend(sum, lines);
                    len += lines.len() as u64;
                    for run in lines.chunks(u16::MAX as usize) {
                        out.push(&frames[next]);
                        out.push(run);
                        next += 1;
                    }
                    continue;
                }
                Part::Chunk(c) => (c.samples.plain_crc(), c.samples.deflated()),
                Part::Deflated(segments, i, _) => {
                    let i = *i as usize;
                    (Some(segments.plain[i]), segments.get(i))
                }
                Part::Released => continue,
            };
            (sum, len) = self.crc_add(p, kept, (sum, len));
            if !seg.is_empty() {
                out.push(seg);
            }
        }
        (sum, len)
    }
}

/// How many parts ahead [`Assembled::gzip_body`] and [`Assembled::keep_deflated_only`] ask
/// for the memory they will read, per step of what they follow from one part.
const AHEAD: usize = 8;

/// Every kind of part fits in three words: a scrape of a large store holds millions.
const _: () = assert!(std::mem::size_of::<Part>() <= 24);

impl Assembled {
    /// Moves parts `range` out into an output of their own, as parts `0..range.len()` of it,
    /// leaving them released here. A scrape hands each run to the task that writes it, and
    /// holds every chunk until its run is written: a group replaced by a push meanwhile stays
    /// in memory until the scrape lets go of all its chunks, so a long scrape lets go of what
    /// it has sent as it goes. Moving, not sharing, touches no reference count (in a large
    /// store each one is a cache miss of its own).
    pub fn take(&mut self, range: std::ops::Range<usize>) -> Assembled {
        let parts: Vec<Part> = self.parts[range].iter_mut().map(|p| std::mem::replace(p, Part::Released)).collect();
        let len = parts.iter().map(|p| self.part_len(p)).sum();
        Assembled { header: self.header.clone(), parts, len, families: self.families, dropped: self.dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo::{MetricType, RenderedFamily};

    fn family(name: &str, samples: &str) -> Arc<RenderedFamily> {
        Arc::new(RenderedFamily {
            name: name.into(),
            mtype: MetricType::Gauge,
            help: None,
            samples: samples.as_bytes().to_vec().into(),
            series: 1,
        })
    }

    #[test]
    fn taken_runs_hold_their_chunks_until_dropped_and_the_rest_still_reads() {
        let a = family("a", "a{job=\"x\"} 1\n");
        let b = family("b", "b{job=\"x\"} 2\n");
        let snap = ShardSnapshot { families: vec![vec![a.clone()], vec![b.clone()]], clear: Vec::new() };
        let mut out = assemble(vec![snap]);
        let whole = out.to_vec();
        assert_eq!(whole, b"# TYPE a gauge\na{job=\"x\"} 1\n# TYPE b gauge\nb{job=\"x\"} 2\n");
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (2, 2));
        let run = out.take(2..4);
        assert_eq!(run.to_vec(), b"# TYPE b gauge\nb{job=\"x\"} 2\n");
        assert_eq!(run.len, 28);
        // Moved, not shared; what is left reads as before, what was taken reads as nothing.
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (2, 2));
        assert_eq!(out.slices_of(0..2).concat(), b"# TYPE a gauge\na{job=\"x\"} 1\n");
        assert_eq!(out.slices_of(2..4).concat(), b"");
        drop(run);
        assert_eq!(Arc::strong_count(&b), 1);
        let first = out.take(0..2);
        assert_eq!(Arc::strong_count(&a), 2);
        drop(first);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn a_gzip_scrape_keeping_only_segments_lets_go_of_the_plain_bytes_and_sends_the_same() {
        let a = family("a", "a{job=\"x\"} 1\n");
        let b = family("b", "b{job=\"x\"} 2\n");
        let snap = ShardSnapshot { families: vec![vec![a.clone()], vec![b.clone()]], clear: Vec::new() };
        let mut out = assemble(vec![snap]);
        let all = 0..out.parts();
        assert!(!out.gzip_ready(all.clone()));
        let (crc, len) = out.crc(all.clone());
        assert_eq!((crc, len), (crc32fast::hash(&out.to_vec()), out.len as u64));
        // Without segments nothing changes hands.
        out.keep_deflated_only(all.clone());
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (2, 2));
        out.make_segments(all.clone());
        assert!(out.gzip_ready(all.clone()));
        assert_eq!(out.crc(all.clone()), (crc, len), "from the segments' CRCs and the header bytes");
        assert_eq!(out.crc(2..4), (crc32fast::hash(b"# TYPE b gauge\nb{job=\"x\"} 2\n"), 28));
        let (mut frames, mut before) = (Vec::new(), Vec::new());
        assert_eq!(out.gzip_body(all.clone(), &mut frames, &mut before), (crc, len), "the same CRC in the same pass");
        let before: Vec<u8> = before.concat();
        out.keep_deflated_only(all.clone());
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));
        assert!(out.gzip_ready(all.clone()));
        assert_eq!(out.crc(all.clone()), (crc, len), "with the plain bytes of the chunks gone");
        let mut after = Vec::new();
        assert_eq!(out.gzip_body(all.clone(), &mut frames, &mut after), (crc, len));
        assert_eq!(after.concat(), before);
        // The member decodes to the plain scrape.
        let mut framer = crate::gzip::Framer::new();
        framer.plain_crc(crc, len);
        let mut member = crate::gzip::GZIP_HEADER.to_vec();
        member.extend_from_slice(&before);
        member.extend_from_slice(&framer.trailer());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut plain).unwrap();
        assert_eq!(plain, b"# TYPE a gauge\na{job=\"x\"} 1\n# TYPE b gauge\nb{job=\"x\"} 2\n");
    }

    /// A gzip body decoded back, with its trailer from the CRC and length `gzip_body` gives.
    fn gunzip(body: &[&[u8]], crc: u32, len: u64) -> Vec<u8> {
        let mut framer = crate::gzip::Framer::new();
        framer.plain_crc(crc, len);
        let mut member = crate::gzip::GZIP_HEADER.to_vec();
        member.extend_from_slice(&body.concat());
        member.extend_from_slice(&framer.trailer());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut plain).unwrap();
        plain
    }

    #[test]
    fn a_gzip_body_of_many_parts_of_every_kind_decodes_to_the_plain_scrape() {
        // Two groups over many families (more parts than the loop looks ahead), some parts
        // held as chunks, some as their segments only, some taken away; two groups' chunks
        // share one buffer, as a pushed group's families do.
        let group = |job: &str| -> Vec<Arc<RenderedFamily>> {
            let names: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
            let texts: Vec<String> = names.iter().map(|n| format!("{n}{{job=\"{job}\"}} {}\n", n.len())).collect();
            let mut fams: Vec<RenderedFamily> = names
                .iter()
                .zip(&texts)
                .map(|(n, t)| RenderedFamily {
                    name: n.as_str().into(),
                    mtype: MetricType::Gauge,
                    help: Some("h".into()),
                    samples: t.as_bytes().to_vec().into(),
                    series: 1,
                })
                .collect();
            crate::expo::pack(&mut fams);
            fams.into_iter().map(Arc::new).collect()
        };
        let (x, y) = (group("x"), group("y"));
        let snap = |g: &Vec<Arc<RenderedFamily>>| ShardSnapshot {
            families: g.iter().map(|f| vec![f.clone()]).collect(),
            clear: Vec::new(),
        };
        let mut out = assemble(vec![snap(&x), snap(&y)]);
        assert_eq!(out.parts(), 40 * 3);
        out.make_segments(0..out.parts());
        let plain = out.to_vec();
        // A body as owned bytes, with its CRC and length.
        let body_of = |out: &Assembled| {
            let (mut frames, mut slices) = (Vec::new(), Vec::new());
            let (crc, len) = out.gzip_body(0..out.parts(), &mut frames, &mut slices);
            (slices.concat(), crc, len)
        };
        let (body, crc, len) = body_of(&out);
        assert_eq!((crc, len), (crc32fast::hash(&plain), plain.len() as u64));
        assert_eq!(gunzip(&[&body], crc, len), plain);
        // Segments only for the first half; the second half stays as chunks.
        out.keep_deflated_only(0..60);
        assert_eq!(body_of(&out), (body.clone(), crc, len));
        // Parts taken away count as nothing: the body is the rest's.
        let taken = out.take(30..45);
        let rest = out.to_vec();
        let (left, crc2, len2) = body_of(&out);
        assert_eq!((crc2, len2), (crc32fast::hash(&rest), rest.len() as u64));
        assert_eq!(gunzip(&[&left], crc2, len2), rest);
        let (run, crc3, len3) = body_of(&taken);
        assert_eq!(gunzip(&[&run], crc3, len3), taken.to_vec());
        assert_eq!(rest.len() + taken.len, plain.len());
    }
}
