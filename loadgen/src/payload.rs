//! Synthetic exposition payloads, generated once per node kind and varied cheaply per push.
//!
//! Each payload is a template (valid text format 0.0.4) plus a sorted list of patches:
//! - host slots: `HOST_DIGITS` digits of the node number (Hostname label, UUID prefix, pod
//!   name...), so every node sends its own series without keeping one copy per node;
//! - value slots: the last one or two digits of a few dozen plain decimal sample values,
//!   rewritten from the push sequence number, so no two pushes are byte-identical.
//!
//! Patches never change the length, so Content-Length is known up front, and the body is
//! streamed in 64 KiB chunks from the shared template through a small per-connection scratch
//! buffer: memory stays O(connections x 64 KiB), not O(nodes x 1.4 MB).

use crate::rng::Rng;
use std::fmt::Write as _;

/// Width of the node number written into host slots (`node-00042`).
pub const HOST_DIGITS: usize = 5;
/// Placeholder for host slots in the generated text.
const HOST_MARK: &str = "#####";
/// Largest node number that fits.
pub const MAX_NODES: u32 = 99_999;
/// How many value slots each payload gets (spread evenly over its samples).
const VALUE_SLOTS: usize = 64;
/// Streaming chunk size.
pub const CHUNK: usize = 64 * 1024;

pub fn node_name(node: u32) -> String {
    format!("node-{node:0width$}", width = HOST_DIGITS)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Gpu,
    Node,
    Status,
    Health,
    Pod,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Gpu, Kind::Node, Kind::Status, Kind::Health, Kind::Pod];
    pub const PER_NODE: [Kind; 4] = [Kind::Gpu, Kind::Node, Kind::Status, Kind::Health];

    /// Short name used on the command line (`--dump`) and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gpu => "gpu",
            Kind::Node => "node",
            Kind::Status => "status",
            Kind::Health => "health",
            Kind::Pod => "pod",
        }
    }

    /// The `job` grouping label of its pushes.
    pub fn job(self) -> &'static str {
        match self {
            Kind::Gpu => "dcgm_exporter",
            Kind::Node => "node_exporter",
            Kind::Status => "node_status",
            Kind::Health => "hpc_health",
            Kind::Pod => "pod_metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug)]
enum PatchKind {
    Host,
    Value(u16),
}

#[derive(Clone, Copy, Debug)]
struct Patch {
    off: usize,
    len: usize,
    kind: PatchKind,
}

/// A template body plus where to patch it.
pub struct Payload {
    #[allow(dead_code)] // kept for debugging output
    pub kind: Kind,
    template: Vec<u8>,
    patches: Vec<Patch>,
}

impl Payload {
    /// Builds from generated text: `#####` marks become host slots, and up to
    /// `VALUE_SLOTS` plain decimal values get their last digits patched per push.
    pub fn from_text(kind: Kind, text: String) -> Payload {
        let mut template = text.into_bytes();
        let mut patches = Vec::new();
        // Host slots.
        let mark = HOST_MARK.as_bytes();
        let mut i = 0;
        while i + mark.len() <= template.len() {
            if template[i] == b'#' && &template[i..i + mark.len()] == mark {
                template[i..i + mark.len()].fill(b'0');
                patches.push(Patch { off: i, len: HOST_DIGITS, kind: PatchKind::Host });
                i += mark.len();
            } else {
                i += 1;
            }
        }
        // Value slots: candidates are sample lines whose value is digits with an optional '.'.
        let mut cands = Vec::new();
        let mut start = 0;
        for line in template.split(|&b| b == b'\n') {
            let end = start + line.len();
            if !line.is_empty() && line[0] != b'#' {
                if let Some(sp) = line.iter().rposition(|&b| b == b' ') {
                    let v = &line[sp + 1..];
                    // Only measurement-like values (2+ digits): flags and states stay 0/1.
                    let plain = v.iter().filter(|b| b.is_ascii_digit()).count() >= 2
                        && v.iter().all(|&b| b.is_ascii_digit() || b == b'.')
                        && v.last().is_some_and(|b| b.is_ascii_digit());
                    if plain {
                        let run = v.iter().rev().take_while(|b| b.is_ascii_digit()).count();
                        let w = run.min(2);
                        cands.push((end - w, w));
                    }
                }
            }
            start = end + 1;
        }
        if !cands.is_empty() {
            let stride = (cands.len() / VALUE_SLOTS).max(1);
            for (n, &(off, len)) in cands.iter().step_by(stride).take(VALUE_SLOTS).enumerate() {
                patches.push(Patch { off, len, kind: PatchKind::Value(n as u16) });
            }
        }
        patches.sort_by_key(|p| p.off);
        Payload { kind, template, patches }
    }

    pub fn len(&self) -> usize {
        self.template.len()
    }

    #[cfg(test)]
    pub fn value_slots(&self) -> usize {
        self.patches.iter().filter(|p| matches!(p.kind, PatchKind::Value(_))).count()
    }

    fn patch_bytes(p: &Patch, node: u32, seq: u64, out: &mut [u8; 8]) {
        let v: u64 = match p.kind {
            PatchKind::Host => node as u64,
            PatchKind::Value(slot) => {
                seq.wrapping_mul(2_654_435_761).wrapping_add(slot as u64 * 40_503).wrapping_add(node as u64 * 97)
            }
        };
        let mut v = v % 10u64.pow(p.len as u32);
        for i in (0..p.len).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }

    /// Streams the body for (`node`, push `seq`) in chunks of at most `CHUNK` bytes.
    pub fn stream(
        &self,
        node: u32,
        seq: u64,
        scratch: &mut Vec<u8>,
        emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut pi = 0;
        let mut pos = 0;
        let mut pb = [0u8; 8];
        while pos < self.template.len() {
            let end = (pos + CHUNK).min(self.template.len());
            scratch.clear();
            scratch.extend_from_slice(&self.template[pos..end]);
            // Skip patches that ended before this chunk.
            while pi < self.patches.len() && self.patches[pi].off + self.patches[pi].len <= pos {
                pi += 1;
            }
            let mut j = pi;
            while j < self.patches.len() && self.patches[j].off < end {
                let p = &self.patches[j];
                Self::patch_bytes(p, node, seq, &mut pb);
                // The part of the patch inside [pos, end) (a patch may straddle two chunks).
                let (lo, hi) = (p.off.max(pos), (p.off + p.len).min(end));
                scratch[lo - pos..hi - pos].copy_from_slice(&pb[lo - p.off..hi - p.off]);
                j += 1;
            }
            emit(scratch)?;
            pos = end;
        }
        Ok(())
    }

    /// The whole body as one buffer (tests, `--dump`).
    pub fn render(&self, node: u32, seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut scratch = Vec::new();
        self.stream(node, seq, &mut scratch, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })
        .expect("Vec writes cannot fail");
        out
    }
}

// ---------------------------------------------------------------------------------------
// Family builder

struct Fam {
    name: String,
    typ: &'static str,
    help: String,
    lines: Vec<String>,
}

impl Fam {
    fn new(name: impl Into<String>, typ: &'static str, help: impl Into<String>) -> Fam {
        Fam { name: name.into(), typ, help: help.into(), lines: Vec::new() }
    }
    fn header_len(&self) -> usize {
        // "# HELP n h\n# TYPE n t\n"
        9 + self.name.len() + self.help.len() + 9 + self.name.len() + self.typ.len()
    }
    fn add(&mut self, labels: &str, value: impl std::fmt::Display) -> usize {
        let l = if labels.is_empty() {
            format!("{} {}", self.name, value)
        } else {
            format!("{}{{{}}} {}", self.name, labels, value)
        };
        let n = l.len() + 1;
        self.lines.push(l);
        n
    }
    fn size(&self) -> usize {
        self.header_len() + self.lines.iter().map(|l| l.len() + 1).sum::<usize>()
    }
}

fn render(fams: &[Fam]) -> String {
    let mut s = String::with_capacity(fams.iter().map(Fam::size).sum());
    for f in fams {
        if f.lines.is_empty() {
            continue;
        }
        let _ = writeln!(s, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(s, "# TYPE {} {}", f.name, f.typ);
        for l in &f.lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b"0123456789abcdef"[rng.range(0, 16) as usize])).collect()
}

fn uuid(rng: &mut Rng) -> String {
    format!("{}-{}-{}-{}-{}", hex(rng, 8), hex(rng, 4), hex(rng, 4), hex(rng, 4), hex(rng, 12))
}

/// A value in [lo, hi) with `dec` decimals, as Go would print a plain float.
fn val(rng: &mut Rng, lo: f64, hi: f64, dec: usize) -> String {
    let v = lo + rng.f64() * (hi - lo);
    format!("{v:.dec$}")
}

// ---------------------------------------------------------------------------------------
// GPU (DCGM-exporter-like)

/// (name, type, help, lo, hi, decimals)
type FieldDef = (&'static str, &'static str, &'static str, f64, f64, usize);

const DCGM_FIELDS: &[FieldDef] = &[
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", 1410.0, 1980.0, 0),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", 2619.0, 2620.0, 0),
    ("DCGM_FI_DEV_MAX_SM_CLOCK", "gauge", "Maximum supported SM clock (in MHz).", 1980.0, 1981.0, 0),
    ("DCGM_FI_DEV_MAX_MEM_CLOCK", "gauge", "Maximum supported memory clock (in MHz).", 2619.0, 2620.0, 0),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", 30.0, 70.0, 0),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", 30.0, 80.0, 0),
    ("DCGM_FI_DEV_SLOWDOWN_TEMP", "gauge", "Slowdown temperature threshold (in C).", 87.0, 88.0, 0),
    ("DCGM_FI_DEV_SHUTDOWN_TEMP", "gauge", "Shutdown temperature threshold (in C).", 92.0, 93.0, 0),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", 80.0, 700.0, 3),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W).", 700.0, 700.5, 3),
    ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "gauge", "Effective power limit that the driver enforces (in W).", 700.0, 700.5, 3),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", 1e9, 9e10, 0),
    ("DCGM_FI_DEV_PSTATE", "gauge", "Performance state (P-State) 0-15. 0=highest.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_FAN_SPEED", "gauge", "Fan speed (in 0-100%).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "gauge", "Total number of bytes transmitted through PCIe TX (in KB) via NVML.", 1e3, 9e6, 0),
    ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "gauge", "Total number of bytes received through PCIe RX (in KB) via NVML.", 1e3, 9e6, 0),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", 0.0, 3.0, 0),
    ("DCGM_FI_DEV_PCIE_LINK_GEN", "gauge", "PCIe current link generation.", 5.0, 6.0, 0),
    ("DCGM_FI_DEV_PCIE_LINK_WIDTH", "gauge", "PCIe current link width.", 16.0, 17.0, 0),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", 0.0, 100.0, 0),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", 0.0, 100.0, 0),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints (in us).", 0.0, 1e6, 0),
    ("DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling duration due to thermal constraints (in us).", 0.0, 1e5, 0),
    ("DCGM_FI_DEV_SYNC_BOOST_VIOLATION", "counter", "Throttling duration due to sync-boost constraints (in us).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_BOARD_LIMIT_VIOLATION", "counter", "Throttling duration due to board limit constraints (in us).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_LOW_UTIL_VIOLATION", "counter", "Throttling duration due to low utilization (in us).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_RELIABILITY_VIOLATION", "counter", "Throttling duration due to reliability constraints (in us).", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_FB_TOTAL", "gauge", "Framebuffer memory total (in MiB).", 81559.0, 81560.0, 0),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", 1000.0, 80000.0, 0),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", 1000.0, 80000.0, 0),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", 536.0, 537.0, 0),
    ("DCGM_FI_DEV_FB_USED_PERCENT", "gauge", "Percentage used of Frame Buffer: Used/(Total - Reserved).", 0.0, 1.0, 4),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors.", 0.0, 2.0, 0),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "counter", "Total number of single-bit persistent ECC errors.", 0.0, 5.0, 0),
    ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "counter", "Total number of double-bit persistent ECC errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_RETIRED_SBE", "counter", "Total number of retired pages due to single-bit errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_RETIRED_DBE", "counter", "Total number of retired pages due to double-bit errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_RETIRED_PENDING", "counter", "Total number of pages pending retirement.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors.", 0.0, 2.0, 0),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_ROW_REMAP_PENDING", "gauge", "Whether remapping of rows is pending.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes.", 1e9, 9e12, 0),
    ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink flow-control CRC errors.", 0.0, 3.0, 0),
    ("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink data CRC errors.", 0.0, 3.0, 0),
    ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink retries.", 0.0, 3.0, 0),
    ("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink recovery errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_COUNT", "gauge", "Number of devices on the node.", 8.0, 9.0, 0),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_SM_ACTIVE", "gauge", "The ratio of cycles an SM has at least 1 warp assigned.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_SM_OCCUPANCY", "gauge", "The ratio of number of warps resident on an SM.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE", "gauge", "Ratio of cycles the tensor (IMMA) pipe is active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE", "gauge", "Ratio of cycles the tensor (DFMA) pipe is active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active sending or receiving data.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_FP64_ACTIVE", "gauge", "Ratio of cycles the fp64 pipes are active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_FP32_ACTIVE", "gauge", "Ratio of cycles the fp32 pipes are active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PIPE_FP16_ACTIVE", "gauge", "Ratio of cycles the fp16 pipes are active.", 0.0, 1.0, 6),
    ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.", 1e6, 9e9, 0),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.", 1e6, 9e9, 0),
    ("DCGM_FI_PROF_NVLINK_TX_BYTES", "gauge", "The rate of data transmitted over NVLink, not including protocol headers, in bytes per second.", 1e6, 9e10, 0),
    ("DCGM_FI_PROF_NVLINK_RX_BYTES", "gauge", "The rate of data received over NVLink, not including protocol headers, in bytes per second.", 1e6, 9e10, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_TX_PACKETS", "counter", "Total number of packets transmitted over NVLink.", 1e6, 9e10, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_TX_BYTES", "counter", "Total number of bytes transmitted over NVLink.", 1e9, 9e13, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_PACKETS", "counter", "Total number of packets received over NVLink.", 1e6, 9e10, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_BYTES", "counter", "Total number of bytes received over NVLink.", 1e9, 9e13, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_MALFORMED_PACKET_ERRORS", "counter", "Number of packets received with malformed errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_BUFFER_OVERRUN_ERRORS", "counter", "Number of packets discarded due to buffer overrun.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_ERRORS", "counter", "Total number of packets with errors received over NVLink.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_REMOTE_ERRORS", "counter", "Total number of packets received with remote errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_GENERAL_ERRORS", "counter", "Total number of packets received with general errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_LOCAL_LINK_INTEGRITY_ERRORS", "counter", "Number of times the local link integrity check failed.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_TX_DISCARDS", "counter", "Total number of tx error packets that were discarded.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_LINK_RECOVERY_SUCCESSFUL_EVENTS", "counter", "Number of times link went from Up to recovery, succeeded and link came back up.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_LINK_RECOVERY_FAILED_EVENTS", "counter", "Number of times link went from Up to recovery, failed and link was declared down.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_LINK_RECOVERY_EVENTS", "counter", "Number of times link went from Up to recovery, irrespective of the result.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_RX_SYMBOL_ERRORS", "counter", "Number of errors in rx symbols.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_SYMBOL_BER", "gauge", "BER for symbol errors.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_EFFECTIVE_ERRORS", "counter", "Sum of the number of errors in each NVLink packet.", 0.0, 1.0, 0),
    ("DCGM_FI_DEV_NVLINK_COUNT_EFFECTIVE_BER", "gauge", "Effective BER for effective errors.", 0.0, 1.0, 0),
];

/// Per-NVLink-lane fields (H100 SXM: 18 lanes): (prefix, suffix, type, help, lo, hi); the
/// family name is prefix + lane + suffix.
const DCGM_LANE_FIELDS: &[(&str, &str, &str, &str, f64, f64)] = &[
    (
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L",
        "",
        "counter",
        "Number of NVLink flow-control CRC errors for lane",
        0.0,
        3.0,
    ),
    ("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_L", "", "counter", "Number of NVLink data CRC errors for lane", 0.0, 3.0),
    ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_L", "", "counter", "Number of NVLink retries for lane", 0.0, 3.0),
    ("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_L", "", "counter", "Number of NVLink recovery errors for lane", 0.0, 2.0),
    ("DCGM_FI_DEV_NVLINK_ECC_DATA_ERROR_COUNT_L", "", "counter", "Number of NVLink data ECC errors for lane", 0.0, 2.0),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_L", "", "counter", "Number of NVLink bandwidth counters for lane", 1e9, 9e11),
    ("DCGM_FI_PROF_NVLINK_L", "_TX_BYTES", "gauge", "The rate of data transmitted over NVLink lane", 1e6, 5e9),
    ("DCGM_FI_PROF_NVLINK_L", "_RX_BYTES", "gauge", "The rate of data received over NVLink lane", 1e6, 5e9),
];
const NVLINK_LANES: usize = 18;

const H100_PCI: [&str; 8] = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"];

/// DCGM-exporter-like payload for `gpus` GPUs, at least `target` bytes: whole families are
/// added until it is reached. The real field list (GPU-level fields, then 8 per-lane NVLink
/// fields x 18 lanes) gives ~650 KB for 8 GPUs; the rest of the published ~767 KB is filled
/// with the same per-lane families for lanes 18+ (not real on an H100, but same shape and
/// cost for a gateway: 8 series of 11 labels per family).
pub fn gpu_text(gpus: usize, target: usize) -> String {
    let mut rng = Rng::new(0x6770_7500);
    // 11 labels per series, like dcgm-exporter with Kubernetes pod mapping.
    let labels: Vec<String> = (0..gpus)
        .map(|g| {
            format!(
                "gpu=\"{g}\",UUID=\"GPU-{HOST_MARK}{}-{}-{}-{}-{}\",pci_bus_id=\"00000000:{}:00.0\",device=\"nvidia{g}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-{HOST_MARK}\",DCGM_FI_DRIVER_VERSION=\"535.129.03\",container=\"pytorch\",namespace=\"ml-training\",pod=\"llm-pretrain-worker-{HOST_MARK}\",cluster=\"gpu-cluster-a\"",
                hex(&mut rng, 3),
                hex(&mut rng, 4),
                hex(&mut rng, 4),
                hex(&mut rng, 4),
                hex(&mut rng, 12),
                H100_PCI[g % H100_PCI.len()],
            )
        })
        .collect();
    let mut fams: Vec<Fam> = Vec::new();
    let mut size = 0;
    let mut add_family = |fams: &mut Vec<Fam>, f: Fam, lo: f64, hi: f64, dec: usize| {
        let mut f = f;
        for l in &labels {
            size += f.add(l, val(&mut rng, lo, hi, dec));
        }
        size += f.header_len();
        fams.push(f);
        size
    };
    for &(name, typ, help, lo, hi, dec) in DCGM_FIELDS {
        if add_family(&mut fams, Fam::new(name, typ, help), lo, hi, dec) >= target {
            return render(&fams);
        }
    }
    for lane in 0.. {
        for &(prefix, suffix, typ, help, lo, hi) in DCGM_LANE_FIELDS {
            let f = Fam::new(format!("{prefix}{lane}{suffix}"), typ, format!("{help} {lane}."));
            if add_family(&mut fams, f, lo, hi, 0) >= target {
                return render(&fams);
            }
        }
        if lane >= NVLINK_LANES * 4 {
            break; // safety net for absurd targets
        }
    }
    render(&fams)
}

// ---------------------------------------------------------------------------------------
// node exporter, scaled from a real capture

/// A family of the captured node-exporter text, split by which lines get replicated.
struct NodeFam {
    header: String,
    fixed: Vec<String>,
    cpu0: Vec<String>,
    cpu1: Vec<String>,
    net: Vec<String>,  // device="eth0"
    disk: Vec<String>, // device="vda"
    fs: Vec<String>,   // device="/dev/vda",fstype="ext4",mountpoint="/"
}

const FS_ROOT: &str = "device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"";

/// How the 2-CPU capture is scaled to a many-core GPU node.
#[derive(Clone, Debug)]
pub struct NodeScale {
    pub cpus: usize,
    /// InfiniBand interfaces (copies of eth0's series).
    pub ib: usize,
    /// NVMe disks (copies of vda's series).
    pub nvme: usize,
    /// Kubernetes pods: each adds a calico veth (eth0's series) and a projected-token tmpfs
    /// mount (the root filesystem's series). Chosen to reach the target size.
    pub pods: usize,
}

fn split_capture(capture: &str) -> Result<Vec<NodeFam>, String> {
    let mut fams: Vec<NodeFam> = Vec::new();
    let mut in_header = false;
    for line in capture.lines() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if !in_header {
                fams.push(NodeFam {
                    header: String::new(),
                    fixed: vec![],
                    cpu0: vec![],
                    cpu1: vec![],
                    net: vec![],
                    disk: vec![],
                    fs: vec![],
                });
                in_header = true;
            }
            let f = fams.last_mut().unwrap();
            f.header.push_str(line);
            f.header.push('\n');
            continue;
        }
        in_header = false;
        let Some(f) = fams.last_mut() else {
            return Err("node-exporter capture: sample before any # HELP/# TYPE".into());
        };
        let l = line.to_string();
        if line.contains("cpu=\"0\"") {
            f.cpu0.push(l);
        } else if line.contains("cpu=\"1\"") {
            f.cpu1.push(l);
        } else if line.contains("device=\"eth0\"") {
            f.net.push(l);
        } else if line.contains("device=\"vda\"") {
            f.disk.push(l);
        } else if line.contains(FS_ROOT) {
            f.fs.push(l);
        } else {
            f.fixed.push(l);
        }
    }
    if !fams.iter().any(|f| !f.cpu0.is_empty()) {
        return Err("node-exporter capture has no cpu=\"0\" series to replicate".into());
    }
    Ok(fams)
}

fn pod_veth(p: usize) -> String {
    let mut rng = Rng::new(0x7665_7468 + p as u64);
    format!("cali{}", hex(&mut rng, 11))
}

fn pod_mount(p: usize) -> String {
    let mut rng = Rng::new(0x6d6e_7400 + p as u64);
    let u = uuid(&mut rng);
    let s: String = (0..5).map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[rng.range(0, 27) as usize])).collect();
    format!(
        "device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/var/lib/kubelet/pods/{u}/volumes/kubernetes.io~projected/kube-api-access-{s}\""
    )
}

fn render_node(fams: &[NodeFam], sc: &NodeScale) -> String {
    let mut s = String::new();
    for f in fams {
        s.push_str(&f.header);
        let mut lines: Vec<String> = f.fixed.clone();
        // Per-CPU: cpu N takes cpu0's lines (even N) or cpu1's (odd N, when present), so the
        // captured values alternate.
        for c in 0..sc.cpus {
            let (src, from) = if c % 2 == 1 && f.cpu1.len() == f.cpu0.len() {
                (&f.cpu1, "cpu=\"1\"")
            } else {
                (&f.cpu0, "cpu=\"0\"")
            };
            let to = format!("cpu=\"{c}\"");
            lines.extend(src.iter().map(|l| l.replacen(from, &to, 1)));
        }
        for l in &f.net {
            lines.push(l.clone());
            lines.extend((0..sc.ib).map(|i| l.replacen("device=\"eth0\"", &format!("device=\"ib{i}\""), 1)));
            lines
                .extend((0..sc.pods).map(|p| l.replacen("device=\"eth0\"", &format!("device=\"{}\"", pod_veth(p)), 1)));
        }
        for l in &f.disk {
            lines.push(l.clone());
            lines.extend((0..sc.nvme).map(|i| l.replacen("device=\"vda\"", &format!("device=\"nvme{i}n1\""), 1)));
        }
        for l in &f.fs {
            lines.push(l.clone());
            lines.extend((0..sc.pods).map(|p| l.replacen(FS_ROOT, &pod_mount(p), 1)));
        }
        in_exporter_order(&mut lines);
        for l in &lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    // Let each node report its own name.
    s.replacen("nodename=\"vm\"", &format!("nodename=\"node-{HOST_MARK}\""), 1)
}

/// Puts a family's series in the order a real node exporter writes them: Go's client library
/// sorts the series of each family by their label values, compared as strings in the order of
/// the label names (which it writes sorted), fewer labels first. So `cpu="10"` comes before
/// `cpu="2"`, as on a real 192-CPU node. Families whose lines name several samples
/// (histograms, summaries) are left as they are: there the order is per series, not per line.
fn in_exporter_order(lines: &mut [String]) {
    let name = |l: &str| l.split(['{', ' ']).next().unwrap_or("").to_string();
    if lines.len() < 2 || lines.iter().any(|l| name(l) != name(&lines[0])) {
        return;
    }
    lines.sort_by_cached_key(|l| {
        let values = label_values(l);
        (values.len(), values)
    });
}

/// The label values of a sample line, unescaped, in the order written.
fn label_values(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(open) = line.find('{') else { return out };
    let mut chars = line[open + 1..].chars();
    loop {
        // Skip the label name up to its opening quote; stop at the closing brace.
        let mut found = false;
        for c in chars.by_ref() {
            match c {
                '"' => {
                    found = true;
                    break;
                }
                '}' => return out,
                _ => {}
            }
        }
        if !found {
            return out;
        }
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => v.push('\n'),
                    Some(x) => v.push(x),
                    None => break,
                },
                '"' => break,
                _ => v.push(c),
            }
        }
        out.push(v);
    }
}

/// Scales a real node-exporter capture (with per-CPU series for cpu 0 and 1) to `cpus` CPUs,
/// 8 InfiniBand ports and 8 NVMe disks, then adds Kubernetes pods (a veth and a tmpfs mount
/// each) until the text reaches `target` bytes.
pub fn node_text(capture: &str, cpus: usize, target: usize) -> Result<(String, NodeScale), String> {
    let fams = split_capture(capture)?;
    let mut sc = NodeScale { cpus: cpus.max(1), ib: 8, nvme: 8, pods: 0 };
    let base = render_node(&fams, &sc).len();
    if base < target {
        sc.pods = 1;
        let one = render_node(&fams, &sc).len();
        let per_pod = (one - base).max(1);
        sc.pods = (target - base).div_ceil(per_pod).min(5000);
    }
    Ok((render_node(&fams, &sc), sc))
}

// ---------------------------------------------------------------------------------------
// node status exporter

const SYSTEMD_UNITS: &[&str] = &[
    "sshd.service",
    "slurmd.service",
    "munge.service",
    "kubelet.service",
    "containerd.service",
    "nvidia-persistenced.service",
    "nvidia-fabricmanager.service",
    "nvidia-dcgm.service",
    "dcgm-exporter.service",
    "node-exporter.service",
    "chronyd.service",
    "rsyslog.service",
    "systemd-journald.service",
    "systemd-logind.service",
    "systemd-udevd.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "dbus.service",
    "cron.service",
    "auditd.service",
    "irqbalance.service",
    "lldpd.service",
    "openibd.service",
    "opensm.service",
    "rdma.service",
    "nfs-client.target",
    "autofs.service",
    "lustre-client.service",
    "beegfs-client.service",
    "sssd.service",
    "nscd.service",
    "polkit.service",
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "mcelog.service",
    "smartd.service",
    "ipmievd.service",
    "tuned.service",
    "docker.service",
    "enroot-check.service",
    "pyxis.service",
    "nhc.timer",
    "nhc.service",
    "logrotate.timer",
    "fstrim.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "systemd-tmpfiles-clean.timer",
    "multi-user.target",
    "network-online.target",
    "remote-fs.target",
    "local-fs.target",
    "swap.target",
    "timers.target",
];
const UNIT_STATES: [&str; 5] = ["activating", "active", "deactivating", "failed", "inactive"];

/// A node-status exporter: conditions, scheduler state, hardware inventory and systemd unit
/// states (filled until `target` bytes).
pub fn status_text(target: usize) -> String {
    let mut rng = Rng::new(0x7374_6174);
    let mut fams = Vec::new();
    let mut f = Fam::new("node_status_info", "gauge", "Static information about the node.");
    f.add("hostname=\"node-#####\",kernel=\"6.1.0-18-amd64\",os=\"Debian GNU/Linux 12 (bookworm)\",slurm_version=\"23.11.4\",kubelet_version=\"v1.29.3\",bios_version=\"2.3.5\"", 1);
    fams.push(f);
    let mut f = Fam::new("node_status_up", "gauge", "Whether the node status collection succeeded.");
    f.add("", 1);
    fams.push(f);
    let mut f = Fam::new("node_status_boot_time_seconds", "gauge", "Node boot time, in unixtime.");
    f.add("", 1_716_000_000 + rng.range(0, 1_000_000));
    fams.push(f);
    let mut f = Fam::new("node_status_condition", "gauge", "Kubernetes node condition (1 = in this status).");
    for c in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"] {
        for st in ["true", "false", "unknown"] {
            let on = (c == "Ready") == (st == "true") && st != "unknown";
            f.add(&format!("condition=\"{c}\",status=\"{st}\""), on as u8);
        }
    }
    fams.push(f);
    let mut f = Fam::new("node_status_slurm_state", "gauge", "Slurm node state (1 = current).");
    for st in [
        "allocated",
        "completing",
        "down",
        "drained",
        "draining",
        "fail",
        "idle",
        "maint",
        "mixed",
        "planned",
        "reserved",
    ] {
        f.add(&format!("state=\"{st}\""), (st == "allocated") as u8);
    }
    fams.push(f);
    let mut f = Fam::new("node_status_gpu_healthy", "gauge", "Whether the GPU passed its last health check.");
    for g in 0..8 {
        f.add(&format!("gpu=\"{g}\""), 1);
    }
    fams.push(f);
    let mut f = Fam::new("node_status_ib_port_state", "gauge", "InfiniBand port state (4 = ACTIVE).");
    let mut r = Fam::new("node_status_ib_port_rate_gbps", "gauge", "InfiniBand port rate in Gb/s.");
    for h in 0..8 {
        f.add(&format!("device=\"mlx5_{h}\",port=\"1\""), 4);
        r.add(&format!("device=\"mlx5_{h}\",port=\"1\""), 400);
    }
    fams.push(f);
    fams.push(r);
    let mut f = Fam::new("node_status_mount_ok", "gauge", "Whether the mount point is mounted and responsive.");
    for m in ["/", "/home", "/scratch", "/data", "/opt/apps", "/var/lib/kubelet", "/mnt/lustre", "/mnt/beegfs"] {
        f.add(&format!("mountpoint=\"{m}\""), 1);
    }
    fams.push(f);
    let mut size: usize = fams.iter().map(Fam::size).sum();
    let mut units = Fam::new("node_status_systemd_unit_state", "gauge", "Systemd unit state (1 = current).");
    let mut started = Fam::new(
        "node_status_systemd_unit_start_time_seconds",
        "gauge",
        "Start time of the unit since unix epoch in seconds.",
    );
    size += units.header_len() + started.header_len();
    'fill: for round in 0.. {
        for u in SYSTEMD_UNITS {
            let name =
                if round == 0 { u.to_string() } else { format!("session-{}.scope", round * 100 + units.lines.len()) };
            let typ = name.rsplit_once('.').map_or("service", |(_, t)| t);
            for st in UNIT_STATES {
                size += units.add(&format!("name=\"{name}\",state=\"{st}\",type=\"{typ}\""), (st == "active") as u8);
            }
            size += started.add(
                &format!("name=\"{name}\""),
                format!("{}.{:03}", 1_716_531_800 + rng.range(0, 90_000), rng.range(0, 1000)),
            );
            if size >= target {
                break 'fill;
            }
        }
    }
    fams.push(units);
    fams.push(started);
    render(&fams)
}

// ---------------------------------------------------------------------------------------
// HPC health exporter

/// Node-health-check style results: one status, duration and timestamp per check, filled
/// until `target` bytes.
pub fn health_text(target: usize) -> String {
    let mut rng = Rng::new(0x6865_616c);
    let mut checks: Vec<String> = Vec::new();
    for g in 0..8 {
        for c in ["pcie_link", "nvlink", "ecc", "thermal", "power", "clocks", "xid"] {
            checks.push(format!("gpu{g}_{c}"));
        }
    }
    for h in 0..8 {
        for c in ["link_up", "rate", "symbol_errors"] {
            checks.push(format!("ib_mlx5_{h}_{c}"));
        }
    }
    for c in [
        "cpu_count",
        "memory_total",
        "hugepages",
        "dmesg_errors",
        "fs_root_rw",
        "fs_scratch_rw",
        "munge",
        "slurmd",
        "time_sync",
        "dcgm_diag_level1",
    ] {
        checks.push(c.to_string());
    }
    let mut status =
        Fam::new("hpc_health_check_status", "gauge", "Result of the last health check (0 = pass, 1 = fail).");
    let mut dur = Fam::new("hpc_health_check_duration_seconds", "gauge", "How long the last health check took.");
    let mut last = Fam::new(
        "hpc_health_check_last_run_timestamp_seconds",
        "gauge",
        "When the health check last ran, in unixtime.",
    );
    let mut size = status.header_len() + dur.header_len() + last.header_len();
    let mut i = 0;
    while size < target {
        let name = if i < checks.len() { checks[i].clone() } else { format!("custom_check_{}", i - checks.len()) };
        let l = format!("check=\"{name}\",node=\"node-{HOST_MARK}\"");
        size += status.add(&l, 0);
        size += dur.add(&l, val(&mut rng, 0.001, 3.0, 3));
        size += last.add(&l, 1_717_000_000 + rng.range(0, 60));
        i += 1;
    }
    render(&[status, dur, last])
}

// ---------------------------------------------------------------------------------------
// cluster-level pod metrics (one push per cycle)

/// kube-state-metrics-like pod facts for GPU jobs across the cluster, `target` bytes.
pub fn pod_text(nodes: u32, target: usize) -> String {
    let mut rng = Rng::new(0x706f_6473);
    let ns = ["ml-training", "ml-inference", "research", "data-prep"];
    let mut info = Fam::new("pod_metrics_info", "gauge", "Information about a pod.");
    let mut phase = Fam::new("pod_metrics_phase", "gauge", "The pod's current phase.");
    let mut gpus = Fam::new("pod_metrics_gpu_requested", "gauge", "GPUs requested by the pod.");
    let mut restarts = Fam::new("pod_metrics_restarts_total", "counter", "Container restarts of the pod.");
    let mut started = Fam::new("pod_metrics_start_time_seconds", "gauge", "Start time in unix timestamp for a pod.");
    let mut size =
        info.header_len() + phase.header_len() + gpus.header_len() + restarts.header_len() + started.header_len();
    let mut p = 0u32;
    while size < target {
        let n = ns[p as usize % ns.len()];
        let pod = format!("job-{:04}-worker-{}", p / 8, p % 8);
        let node = node_name(1 + p % nodes.max(1));
        let id = format!("namespace=\"{n}\",pod=\"{pod}\"");
        size += info.add(&format!("{id},node=\"{node}\",uid=\"{}\"", uuid(&mut rng)), 1);
        size += phase.add(&format!("{id},phase=\"Running\""), 1);
        size += gpus.add(&id, 8);
        size += restarts.add(&id, rng.range(0, 3));
        size += started.add(&id, 1_717_000_000 + rng.range(0, 500_000));
        p += 1;
    }
    render(&[info, phase, gpus, restarts, started])
}

// ---------------------------------------------------------------------------------------
// small-push mode

/// A ~100-byte body for the small-push rate mode.
pub fn small_body(worker: usize, seq: u64) -> String {
    format!(
        "# HELP loadgen_small_value A small push.\n# TYPE loadgen_small_value gauge\nloadgen_small_value{{worker=\"{worker:03}\"}} {}\n",
        seq % 1_000_000_000
    )
}

// ---------------------------------------------------------------------------------------

/// Target sizes and shapes of the payloads.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub gpus: usize,
    pub gpu_bytes: usize,
    pub node_cpus: usize,
    pub node_bytes: usize,
    pub status_bytes: usize,
    pub health_bytes: usize,
    pub pod_bytes: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            gpus: 8,
            gpu_bytes: 767 * 1024,
            node_cpus: 192,
            node_bytes: 570 * 1024,
            status_bytes: 25 * 1024,
            health_bytes: 15 * 1024,
            pod_bytes: 20 * 1024,
        }
    }
}

/// All payloads, indexed by `Kind::index()`.
pub struct Payloads {
    pub by_kind: Vec<Payload>,
    pub node_scale: NodeScale,
}

impl Payloads {
    pub fn build(sizes: &Sizes, node_capture: &str, nodes: u32) -> Result<Payloads, String> {
        let (node, node_scale) = node_text(node_capture, sizes.node_cpus, sizes.node_bytes)?;
        let by_kind = vec![
            Payload::from_text(Kind::Gpu, gpu_text(sizes.gpus, sizes.gpu_bytes)),
            Payload::from_text(Kind::Node, node),
            Payload::from_text(Kind::Status, status_text(sizes.status_bytes)),
            Payload::from_text(Kind::Health, health_text(sizes.health_bytes)),
            Payload::from_text(Kind::Pod, pod_text(nodes, sizes.pod_bytes)),
        ];
        Ok(Payloads { by_kind, node_scale })
    }

    pub fn get(&self, k: Kind) -> &Payload {
        &self.by_kind[k.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo_check::check;

    fn capture() -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/node-exporter-2cpu.prom");
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
    }

    fn built() -> Payloads {
        Payloads::build(&Sizes::default(), &capture(), 1000).unwrap()
    }

    fn kib(n: usize) -> usize {
        n * 1024
    }

    #[test]
    fn node_series_come_in_the_order_a_real_exporter_writes_them() {
        assert_eq!(label_values(r#"m{a="x\"}",b="2\\n",c="3\n"} 1"#), ["x\"}", "2\\n", "3\n"]);
        let (text, sc) = node_text(&capture(), 192, kib(570)).unwrap();
        assert!(sc.cpus == 192 && sc.pods > 0);
        let mut checked = 0;
        let mut family: Vec<&str> = Vec::new();
        for line in text.lines().chain(["# end"]) {
            if line.starts_with('#') {
                let names: Vec<&str> = family.iter().map(|l| l.split(['{', ' ']).next().unwrap()).collect();
                if family.len() > 1 && names.iter().all(|n| *n == names[0]) {
                    let keys: Vec<(usize, Vec<String>)> =
                        family.iter().map(|l| (label_values(l).len(), label_values(l))).collect();
                    assert!(keys.windows(2).all(|w| w[0] < w[1]), "family {} out of order", names[0]);
                    checked += 1;
                }
                family.clear();
            } else {
                family.push(line);
            }
        }
        assert!(checked > 50, "{checked} families checked");
        // String order, as Go sorts: cpu 10 before cpu 2.
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
        assert!(at("node_cpu_seconds_total{cpu=\"10\"") < at("node_cpu_seconds_total{cpu=\"2\""));
    }

    #[test]
    fn capture_itself_is_valid() {
        let st = check(&capture()).unwrap();
        assert!(st.families > 200);
    }

    #[test]
    fn sizes_in_range() {
        let p = built();
        let want = [(Kind::Gpu, 767), (Kind::Node, 570), (Kind::Status, 25), (Kind::Health, 15), (Kind::Pod, 20)];
        for (k, target) in want {
            let len = p.get(k).len();
            // At least the target, at most 3 % (or 1 KiB) over.
            let hi = kib(target) + (kib(target) * 3 / 100).max(1024);
            assert!(len >= kib(target) && len <= hi, "{}: {} bytes, want {}..{}", k.name(), len, kib(target), hi);
        }
        let total: usize = Kind::PER_NODE.iter().map(|&k| p.get(k).len()).sum();
        assert!((1_300_000..1_500_000).contains(&total), "{total}");
    }

    #[test]
    fn payloads_are_valid_exposition() {
        let p = built();
        for k in Kind::ALL {
            for (node, seq) in [(1, 0), (42, 7), (99_999, 123_456)] {
                let body = p.get(k).render(node, seq);
                let text = std::str::from_utf8(&body).unwrap();
                let st = check(text).unwrap_or_else(|e| panic!("{}: {e}", k.name()));
                assert!(st.samples > 10, "{}", k.name());
                assert!(!text.contains(HOST_MARK));
                if k != Kind::Pod {
                    assert!(text.contains(&node_name(node)), "{} lacks its node", k.name());
                }
            }
        }
    }

    #[test]
    fn gpu_shape() {
        let p = built();
        let text = String::from_utf8(p.get(Kind::Gpu).render(3, 1)).unwrap();
        let st = check(&text).unwrap();
        assert_eq!(st.max_labels, 11);
        assert!(text.contains("DCGM_FI_DEV_GPU_UTIL{gpu=\"7\""));
        assert!(!text.contains("gpu=\"8\""));
        assert!(text.contains("Hostname=\"node-00003\""));
        // Every series line carries all 11 labels.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(l.matches("=\"").count(), 11, "{l}");
        }
    }

    #[test]
    fn node_exporter_scaled_to_192_cpus() {
        let p = built();
        assert_eq!(p.node_scale.cpus, 192);
        let text = String::from_utf8(p.get(Kind::Node).render(5, 0)).unwrap();
        assert!(text.contains("node_cpu_seconds_total{cpu=\"191\",mode=\"idle\"}"));
        assert!(!text.contains("cpu=\"192\""));
        assert_eq!(text.matches("node_cpu_seconds_total{cpu=").count(), 192 * 8, "8 modes per cpu");
        assert!(text.contains("nodename=\"node-00005\""));
        // The rest of the capture is kept: label values with spaces survive.
        assert!(text.contains("node_os_info{"));
        assert!(text.contains("node_network_receive_bytes_total{device=\"ib7\"}"));
    }

    #[test]
    fn pushes_vary_but_keep_length() {
        let p = built();
        for k in Kind::ALL {
            let pl = p.get(k);
            assert!(pl.value_slots() > 10, "{}: {}", k.name(), pl.value_slots());
            let a = pl.render(1, 1);
            let b = pl.render(1, 2);
            assert_eq!(a.len(), pl.len());
            assert_eq!(b.len(), pl.len());
            assert_ne!(a, b, "{}", k.name());
        }
    }

    #[test]
    fn streaming_equals_render_across_chunk_edges() {
        // A patch straddling a chunk boundary must be applied on both sides.
        let mut text = String::from("# TYPE x gauge\n");
        let mut n = 0;
        while text.len() < CHUNK * 2 + 500 {
            text.push_str(&format!("x{{host=\"node-{HOST_MARK}\",i=\"{n}\"}} 12345\n"));
            n += 1;
        }
        let p = Payload::from_text(Kind::Status, text);
        let whole = p.render(777, 3);
        let s = String::from_utf8(whole.clone()).unwrap();
        assert!(!s.contains(HOST_MARK));
        assert_eq!(s.matches("node-00777").count(), n);
        check(&s).unwrap();
        let mut chunks = 0;
        let mut joined = Vec::new();
        p.stream(777, 3, &mut Vec::new(), &mut |c| {
            assert!(c.len() <= CHUNK);
            chunks += 1;
            joined.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(joined, whole);
        assert_eq!(chunks, 3);
    }

    #[test]
    fn small_body_is_about_100_bytes_and_valid() {
        let b = small_body(3, 42);
        assert!((80..=140).contains(&b.len()), "{}", b.len());
        check(&b).unwrap();
    }
}
