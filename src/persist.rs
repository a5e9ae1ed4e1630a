//! Snapshots of the store on disk.
//!
//! Each shard writes its own file, `<persistence.file>-<shard>`: written to a temp file,
//! fsynced, renamed over the old one, and the directory fsynced. The file is a magic line and
//! then one record per group, each framed as `len: u32, crc32: u32, payload`, so a torn or
//! corrupted record is detected and skipped on restore while every valid one is kept.
//! Restore reads every `<persistence.file>-*` file, whatever the shard count was, and routes
//! each group to the shard that owns it now.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Lifecycle;
use crate::expo::{is_metric_name, MetricType, RenderedFamily};
use crate::grouping::GroupKey;
use crate::shard::GroupView;
use crate::store::RestoredGroup;

const MAGIC: &[u8] = b"RINGGATE-SNAPSHOT-1\n";

pub fn shard_file(base: &Path, shard: usize) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!("-{shard}"));
    PathBuf::from(s)
}

/// Writes one shard's snapshot atomically. Stale files of shards that no longer exist are
/// removed by shard 0 after its own write.
pub fn write(base: &Path, shard: usize, shards: usize, groups: &[GroupView]) -> io::Result<u64> {
    let path = shard_file(base, shard);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(MAGIC)?;
    let mut rec = Vec::new();
    let mut total = MAGIC.len() as u64;
    for g in groups {
        rec.clear();
        encode(g, &mut rec);
        let mut crc = flate2::Crc::new();
        crc.update(&rec);
        w.write_all(&(rec.len() as u32).to_le_bytes())?;
        w.write_all(&crc.sum().to_le_bytes())?;
        w.write_all(&rec)?;
        total += 8 + rec.len() as u64;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        File::open(dir)?.sync_all()?;
    }
    if shard == 0 {
        for (other, p) in existing_files(base) {
            if other >= shards {
                let _ = fs::remove_file(p);
            }
        }
    }
    Ok(total)
}

fn existing_files(base: &Path) -> Vec<(usize, PathBuf)> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(stem) = base.file_name().map(|s| s.to_string_lossy().into_owned()) else { return Vec::new() };
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix(&format!("{stem}-")).and_then(|n| n.parse::<usize>().ok()) {
            out.push((n, e.path()));
        }
    }
    out.sort();
    out
}

/// What a restore found: the groups and one line per problem.
#[derive(Default)]
pub struct Restored {
    pub groups: Vec<RestoredGroup>,
    pub problems: Vec<String>,
}

/// Reads every shard file of `base`. Problems are reported, never fatal.
pub fn restore(base: &Path) -> Restored {
    let mut out = Restored::default();
    for (_, path) in existing_files(base) {
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                out.problems.push(format!("{}: cannot read: {e}", path.display()));
                continue;
            }
        };
        if !data.starts_with(MAGIC) {
            out.problems.push(format!("{}: not a ringgate snapshot (bad magic); ignored", path.display()));
            continue;
        }
        let mut pos = MAGIC.len();
        let mut n = 0usize;
        while pos < data.len() {
            n += 1;
            if data.len() - pos < 8 {
                out.problems
                    .push(format!("{}: truncated at byte {pos} (record {n}); the rest is lost", path.display()));
                break;
            }
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let sum = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
            let body = pos + 8;
            if data.len() - body < len {
                out.problems
                    .push(format!("{}: truncated at byte {pos} (record {n}); the rest is lost", path.display()));
                break;
            }
            let rec = &data[body..body + len];
            pos = body + len;
            let mut crc = flate2::Crc::new();
            crc.update(rec);
            if crc.sum() != sum {
                out.problems.push(format!(
                    "{}: record {n} at byte {} fails its checksum; skipped",
                    path.display(),
                    body - 8
                ));
                continue;
            }
            match decode(rec) {
                Some(g) => out.groups.push(g),
                None => out.problems.push(format!("{}: record {n} is malformed; skipped", path.display())),
            }
        }
    }
    // The newest copy of a group wins (files from an older shard layout may overlap).
    out.groups.sort_by(|a, b| a.key.cmp(&b.key).then(b.push_time.total_cmp(&a.push_time)));
    out.groups.dedup_by(|later, first| later.key == first.key);
    out
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode(g: &GroupView, out: &mut Vec<u8>) {
    put_bytes(out, g.key.canonical());
    out.push(match g.lifecycle {
        Lifecycle::Persistent => 0,
        Lifecycle::Ttl => 1,
        Lifecycle::Clear => 2,
    });
    out.extend_from_slice(&(g.ttl.as_millis() as u64).to_le_bytes());
    out.extend_from_slice(&g.push_time.to_le_bytes());
    out.extend_from_slice(&g.failure_time.to_le_bytes());
    out.extend_from_slice(&g.expires_at.unwrap_or(f64::NAN).to_le_bytes());
    out.extend_from_slice(&(g.taken_by.len() as u32).to_le_bytes());
    for s in &g.taken_by {
        put_bytes(out, s.as_bytes());
    }
    out.extend_from_slice(&(g.families.len() as u32).to_le_bytes());
    for f in &g.families {
        put_bytes(out, f.name.as_bytes());
        out.push(f.mtype.code());
        match &f.help {
            Some(h) => {
                out.push(1);
                put_bytes(out, h.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&f.series.to_le_bytes());
        put_bytes(out, &f.samples.plain());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

fn decode(rec: &[u8]) -> Option<RestoredGroup> {
    let mut r = Reader(rec);
    let key = GroupKey::from_canonical(r.bytes()?)?;
    let lifecycle = match r.u8()? {
        0 => Lifecycle::Persistent,
        1 => Lifecycle::Ttl,
        2 => Lifecycle::Clear,
        _ => return None,
    };
    let ttl = Duration::from_millis(r.u64()?);
    let push_time = r.f64()?;
    let failure_time = r.f64()?;
    let expires_at = Some(r.f64()?).filter(|v| !v.is_nan());
    let n = r.u32()? as usize;
    let mut taken_by = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        taken_by.push(r.str()?.into());
    }
    let n = r.u32()? as usize;
    let mut families = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let name = r.str()?;
        if !is_metric_name(name.as_bytes()) {
            return None;
        }
        let mtype = MetricType::from_code(r.u8()?)?;
        let help = match r.u8()? {
            0 => None,
            1 => Some(r.str()?.into()),
            _ => return None,
        };
        let series = r.u32()?;
        let samples: Vec<u8> = r.bytes()?.to_vec();
        if !samples.is_empty() && samples.last() != Some(&b'\n') {
            return None;
        }
        families.push(RenderedFamily { name: name.into(), mtype, help, samples: samples.into(), series });
    }
    crate::expo::pack(&mut families);
    r.0.is_empty().then_some(RestoredGroup {
        key,
        families,
        push_time,
        failure_time,
        lifecycle,
        ttl,
        expires_at,
        taken_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn group(job: &str) -> GroupView {
        GroupView {
            key: GroupKey::from_path(&format!("job/{job}")).unwrap(),
            families: vec![Arc::new(RenderedFamily {
                name: "m".into(),
                mtype: MetricType::Gauge,
                help: Some("h".into()),
                samples: format!("m{{instance=\"\",job=\"{job}\"}} 1\n").into_bytes().into(),
                series: 1,
            })],
            push_time: 1.5,
            failure_time: 0.0,
            lifecycle: Lifecycle::Clear,
            ttl: Duration::from_secs(5),
            expires_at: Some(100.0),
            taken_by: vec!["a".into()],
            shard: 0,
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("rg-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let base = dir.join("snap");
        write(&base, 0, 2, &[group("a"), group("b")]).unwrap();
        write(&base, 1, 2, &[group("c")]).unwrap();
        let r = restore(&base);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.groups.len(), 3);
        let g = &r.groups[0];
        assert_eq!((g.lifecycle, g.expires_at, g.taken_by.len()), (Lifecycle::Clear, Some(100.0), 1));
        // Flip a byte in the second record of file 0, truncate file 1.
        let p0 = shard_file(&base, 0);
        let mut d = fs::read(&p0).unwrap();
        let n = d.len();
        d[n - 3] ^= 0xff;
        fs::write(&p0, d).unwrap();
        let p1 = shard_file(&base, 1);
        let d = fs::read(&p1).unwrap();
        fs::write(&p1, &d[..d.len() - 5]).unwrap();
        let r = restore(&base);
        assert_eq!(r.groups.len(), 1, "the first record of file 0 survives");
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        fs::remove_dir_all(&dir).unwrap();
    }
}
