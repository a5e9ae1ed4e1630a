//! Connection steering: which shard's listener the kernel gives a new connection to.
//!
//! Every shard listens on the same port with SO_REUSEPORT, and by default the kernel picks a
//! listener by a hash of the connection's addresses. With `--http.connection-steering=cpu`
//! (the default) each pinned shard also sets SO_INCOMING_CPU on its listener to its own CPU.
//! Since Linux 6.2 (commit b261eda84ec1, which some distributions backported) the kernel then
//! gives a new connection to the listener of the CPU that processes its first packet, when the
//! group has one for that CPU, and falls back to the hash otherwise. A connection's later
//! packets are processed on that same CPU (the CPU of its NIC queue; on loopback, the
//! sender's), so the shard that reads and answers it runs where the kernel handled its bytes:
//! waking it is a local wake-up instead of an interrupt to another CPU, and its bytes are in
//! that CPU's cache. For many small pushes on keep-alive connections it is a fifth more pushes
//! per second on the benchmark machine (`bench-results/steering-2026-11-22/`).
//!
//! The risk is that the split follows the kernel's packet steering: a NIC with a single queue
//! and no RPS receives every packet on one CPU, and every connection would go to one shard,
//! which would then parse every body alone. [`Balance`] watches the split. Over each window
//! of [`WINDOW`] accepted connections (all shards together), if any shard accepted fewer than
//! half of its even share, steering is lopsided and is turned off for the rest of the run:
//! each shard clears SO_INCOMING_CPU on its own listener when it next accepts, and the hash
//! spreads connections again. From Linux 4.6 to 6.1 a reuseport group ignores the option and
//! the hash decides, which is the behaviour of `--http.connection-steering=hash`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Accepted connections per judgement of the split.
pub const WINDOW: u64 = 512;

/// The accept counts of the current window, and whether steering is still on.
pub struct Balance {
    window: Box<[AtomicU64]>,
    seen: AtomicU64,
    on: AtomicBool,
}

impl Balance {
    pub fn new(shards: usize, on: bool) -> Balance {
        Balance {
            window: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            seen: AtomicU64::new(0),
            on: AtomicBool::new(on),
        }
    }

    /// Steering is on: listeners that asked for their CPU keep asking.
    pub fn on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Counts a connection accepted by `shard`. When this accept closes a window in which
    /// steering was lopsided, turns steering off and returns that window's counts per shard.
    pub fn accepted(&self, shard: usize) -> Option<Vec<u64>> {
        if !self.on() || self.window.len() < 2 {
            return None;
        }
        self.window[shard].fetch_add(1, Relaxed);
        if (self.seen.fetch_add(1, Relaxed) + 1) % WINDOW != 0 {
            return None;
        }
        let counts: Vec<u64> = self.window.iter().map(|c| c.swap(0, Relaxed)).collect();
        // Only the first to judge a window lopsided reports it.
        (lopsided(&counts) && self.on.swap(false, Relaxed)).then_some(counts)
    }
}

/// Some shard took fewer than half of an even share.
fn lopsided(counts: &[u64]) -> bool {
    let total: u64 = counts.iter().sum();
    let n = counts.len() as u64;
    counts.iter().any(|&c| c * 2 * n < total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_even_enough_split_keeps_steering_and_a_lopsided_one_ends_it_once() {
        assert!(!lopsided(&[256, 256]));
        assert!(!lopsided(&[384, 128])); // exactly half of an even share
        assert!(lopsided(&[385, 127]));
        assert!(lopsided(&[512, 0]));
        assert!(lopsided(&[300, 100, 100, 12]));

        let b = Balance::new(2, true);
        for i in 0..WINDOW {
            assert_eq!(b.accepted((i % 3 == 0) as usize), None, "a 2:1 split is even enough");
        }
        assert!(b.on());
        for _ in 0..WINDOW - 1 {
            assert_eq!(b.accepted(0), None);
        }
        assert_eq!(b.accepted(0), Some(vec![WINDOW, 0]));
        assert!(!b.on());
        for _ in 0..2 * WINDOW {
            assert_eq!(b.accepted(0), None, "reported once, never turned back on");
        }
        assert!(!b.on());
    }

    #[test]
    fn one_shard_or_steering_off_never_judges() {
        let one = Balance::new(1, true);
        let off = Balance::new(2, false);
        for _ in 0..2 * WINDOW {
            assert_eq!(one.accepted(0), None);
            assert_eq!(off.accepted(0), None);
        }
        assert!(one.on());
    }
}
