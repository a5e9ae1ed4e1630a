//! `--http.connection-steering` through the real listeners. On loopback the kernel handles a
//! connection's first packet on the CPU of the thread that connects, so a client thread pinned
//! to one CPU stands for a NIC queue whose packets all arrive there.
//!
//! These tests pin a gateway's shards (one per online CPU) and need at least two CPUs; with
//! fewer they fail and say so rather than pass without having shown anything.

mod common;

use std::thread;

use common::{config, start_with, Gateway};
use ringgate::config::{Config, Steering};
use ringgate::steer::WINDOW;

fn online() -> usize {
    let n = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    assert!(n >= 2, "connection steering needs two CPUs to show anything; this machine has {n}");
    n
}

fn pinned_gateway(steering: Steering) -> Gateway {
    start_with(Config { shards: online(), pin: true, steering, ..config() })
}

/// Runs `f` on a thread allowed only on `cpu`.
fn on_cpu<T: Send + 'static>(cpu: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(move || {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within it (cpu < online).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` lives across the call and its size is passed; 0 is this thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        assert_eq!(r, 0, "cannot pin the client thread to CPU {cpu}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("client thread")
}

/// Per shard, the value of the self-metric `name` (one sample per shard).
fn per_shard(gw: &Gateway, name: &str) -> Vec<u64> {
    let text = gw.get("/metrics").text();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&format!("{name}{{shard=\""))) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let shard: usize = labels[name.len() + 8..].trim_end_matches("\"}").parse().unwrap();
        if out.len() <= shard {
            out.resize(shard + 1, 0);
        }
        out[shard] = value.parse().unwrap();
    }
    assert!(!out.is_empty(), "no {name} in the scrape");
    out
}

/// Opens `n` connections from the calling thread, one request each; returns how many each
/// shard accepted from before the first to after the last (the scrapes that read the counts
/// are connections of this thread too: the second is counted, the first is not).
fn accepted_from_here(gw: &Gateway, n: usize) -> Vec<u64> {
    let before = per_shard(gw, "ringgate_connections_accepted_total");
    for _ in 0..n {
        assert_eq!(gw.get("/-/healthy").status, 200);
    }
    let after = per_shard(gw, "ringgate_connections_accepted_total");
    after.iter().zip(&before).map(|(a, b)| a - b).collect()
}

#[test]
fn with_cpu_steering_the_connections_opened_on_one_cpu_go_to_one_shard_and_each_cpu_has_its_own() {
    let gw = pinned_gateway(Steering::Cpu);
    let addr = gw.addr;
    let mut owners = Vec::new();
    for cpu in [0, 1] {
        let got = on_cpu(cpu, move || accepted_from_here(&Gateway::attach(addr), 16));
        let busy: Vec<usize> = (0..got.len()).filter(|&s| got[s] > 0).collect();
        assert_eq!(busy.len(), 1, "connections from CPU {cpu} went to more than one shard: {got:?}");
        assert_eq!(got[busy[0]], 17, "{got:?}");
        owners.push(busy[0]);
    }
    assert_ne!(owners[0], owners[1], "CPUs 0 and 1 are served by the same shard");
    assert!(per_shard(&gw, "ringgate_connection_steering").iter().all(|&v| v == 1));
}

#[test]
fn with_hash_steering_the_connections_of_one_cpu_are_spread() {
    let gw = pinned_gateway(Steering::Hash);
    let addr = gw.addr;
    let got = on_cpu(0, move || accepted_from_here(&Gateway::attach(addr), 48));
    assert!(got.iter().filter(|&&c| c > 0).count() >= 2, "48 connections all went to one shard: {got:?}");
    assert!(per_shard(&gw, "ringgate_connection_steering").iter().all(|&v| v == 0));
}

#[test]
fn a_lopsided_split_turns_cpu_steering_off_and_the_hash_spreads_connections_again() {
    let gw = pinned_gateway(Steering::Cpu);
    let addr = gw.addr;
    // Every connection from CPU 0: one shard takes the whole first window (the scrape before
    // is its first accept), which is then judged lopsided; the hash spreads the last few.
    let first = on_cpu(0, move || accepted_from_here(&Gateway::attach(addr), WINDOW as usize + 8));
    let busy = (0..first.len()).max_by_key(|&s| first[s]).unwrap();
    assert!(first[busy] >= WINDOW - 1, "no shard took the whole first window: {first:?}");
    assert_eq!(per_shard(&gw, "ringgate_connection_steering")[busy], 0, "the busy shard still steers");
    let later = on_cpu(0, move || accepted_from_here(&Gateway::attach(addr), 48));
    assert!(later.iter().filter(|&&c| c > 0).count() >= 2, "after the fallback, still one shard: {later:?}");
}
