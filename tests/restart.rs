//! The real binary: SIGTERM flushes and a restart restores; damaged snapshots are survived;
//! /-/quit stops cleanly; an unwritable snapshot path does not stop the serving.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Gateway;

struct Proc {
    child: Child,
    gw: Gateway,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringgate"))
        .args(if args.contains(&"--web.listen-address") {
            &[][..]
        } else {
            &["--web.listen-address", "127.0.0.1:0"][..]
        })
        .args(if args.contains(&"--shards") { &[][..] } else { &["--shards", "2"][..] })
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringgate runs");
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("address=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap().to_string());
            }
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        let status = child.wait();
        std::thread::sleep(Duration::from_millis(100));
        panic!("no startup line with the address; {status:?}; stderr:\n{}", log.lock().unwrap());
    };
    Proc { child, gw: Gateway::attach(addr.parse().unwrap()), log }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave the gateway running, and shows what it logged.
        let _ = self.child.kill();
        let status = self.child.wait();
        if std::thread::panicking() {
            std::thread::sleep(Duration::from_millis(100));
            eprintln!("gateway {status:?}; stderr:\n{}", self.log.lock().unwrap());
        }
    }
}

impl Proc {
    fn term(mut self) -> (i32, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }

    /// Waits for the exit (at most a minute; a gateway still running then is killed and
    /// reported as exit -2); a death by signal is exit -1.
    fn wait(&mut self) -> (i32, String) {
        let until = std::time::Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break -2;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(100));
        (code, self.log.lock().unwrap().clone())
    }
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ringgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn sigterm_flushes_and_restart_restores_everything() {
    let dir = tmpdir("restart");
    let file = dir.join("snap");
    let file = file.to_str().unwrap();
    // A long interval: only the flush on SIGTERM can have written what follows.
    let p = spawn(&["--persistence.file", file, "--persistence.interval", "1h"]);
    let g = &p.gw;
    for i in 0..50 {
        assert_eq!(
            g.put(&format!("/metrics/job/p/instance/{i}"), &format!("# TYPE kept gauge\nkept {i}\n")).status,
            200
        );
    }
    g.req("PUT", "/metrics/job/t", &[("X-Ringgate-TTL", "10m")], b"ttl_group 1\n");
    g.post("/metrics/job/p/instance/0", "# HELP extra Escaped \\\\ help.\nextra{v=\"a\\\"b\"} 2\n");
    let before = common::strip_times(&g.get("/metrics").text());
    // Pushed after that scrape, which would otherwise have taken it.
    g.req("PUT", "/metrics/job/c", &[("X-Ringgate-Lifecycle", "clear")], b"unscraped 1\n");
    let (code, log) = p.term();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("signal received"), "{log}");
    let p = spawn(&["--persistence.file", file]);
    let after = common::strip_times(&p.gw.get("/metrics").text());
    assert!(after.contains("# TYPE unscraped untyped\nunscraped{instance=\"\",job=\"c\"} 1\n"), "{after}");
    let after = after.replace("# TYPE unscraped untyped\nunscraped{instance=\"\",job=\"c\"} 1\n", "");
    let missing: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    let extra: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    assert_eq!(after, before);
    // Lifecycles came back too: the clear group goes after this scrape, the ttl one stays.
    assert!(!p.gw.get("/metrics").text().contains("unscraped{"));
    let v: serde_json::Value = serde_json::from_str(&p.gw.get("/api/v1/metrics").text()).unwrap();
    let t = v["data"].as_array().unwrap().iter().find(|g| g["labels"]["job"] == "t").unwrap();
    assert_eq!(t["lifecycle"], "ttl");
    assert!(p.log.lock().unwrap().contains("groups=52"));
    let (code, _) = p.term();
    assert_eq!(code, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_truncated_snapshot_is_reported_and_survived() {
    let dir = tmpdir("truncated");
    let file = dir.join("snap");
    let f = file.to_str().unwrap();
    let p = spawn(&["--persistence.file", f, "--shards", "1"]);
    for i in 0..20 {
        p.gw.put(&format!("/metrics/job/j/instance/{i}"), &format!("m {i}\n"));
    }
    assert_eq!(p.term().0, 0);
    let shard_file = Path::new(&format!("{f}-0")).to_path_buf();
    let data = std::fs::read(&shard_file).unwrap();
    std::fs::write(&shard_file, &data[..data.len() * 2 / 3]).unwrap();
    let p = spawn(&["--persistence.file", f, "--shards", "1"]);
    let groups = p.gw.get("/metrics").text().matches("\nm{").count();
    assert!(groups > 5 && groups < 20, "{groups} groups restored");
    assert_eq!(p.gw.put("/metrics/job/new", "m 1\n").status, 200);
    let (code, log) = p.term();
    assert_eq!(code, 0);
    assert!(log.contains("truncated at byte"), "{log}");
    // Garbage instead of a snapshot: reported, and the gateway starts empty.
    std::fs::write(format!("{f}-0"), b"not a snapshot").unwrap();
    let p = spawn(&["--persistence.file", f, "--shards", "1"]);
    assert_eq!(p.gw.get("/-/ready").status, 200);
    let (_, log) = p.term();
    assert!(log.contains("bad magic"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quit_endpoint_stops_with_exit_zero() {
    let mut p = spawn(&["--web.enable-lifecycle"]);
    let a = p.gw.req("POST", "/-/quit", &[], b"");
    assert_eq!(a.status, 200);
    let (code, log) = p.wait();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("quit requested"));
}

#[test]
fn an_unwritable_snapshot_path_is_logged_counted_and_served_through() {
    let p = spawn(&["--persistence.file", "/nonexistent-dir/ringgate/snap", "--persistence.interval", "200ms"]);
    p.gw.put("/metrics/job/j", "m 1\n");
    std::thread::sleep(Duration::from_millis(800));
    let m = p.gw.get("/metrics").text();
    let failed: u64 = m
        .lines()
        .filter(|l| l.starts_with("ringgate_persistence_writes_total{outcome=\"failed\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(failed >= 1, "{m}");
    assert_eq!(p.gw.put("/metrics/job/j", "m 2\n").status, 200);
    let (code, log) = p.term();
    assert_eq!(code, 0);
    assert!(log.contains("cannot write snapshot; still serving"), "{log}");
}

/// Many gateways starting, taking a push across shards, and stopping at the same time on two
/// CPUs. glommio's own channel mesh raced a non-atomic reference count between shard threads
/// here and corrupted the heap in about one start/stop in a hundred (the process aborted with
/// "unaligned tcache chunk detected"); every one of these must exit 0.
#[test]
fn parallel_starts_and_stops_all_exit_cleanly() {
    let failures: Vec<String> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut bad = Vec::new();
                for _ in 0..15 {
                    let mut p = spawn(&["--web.enable-lifecycle", "--shards", "8"]);
                    // Two groups, so that at least one push (likely) crosses the mesh.
                    for job in ["a", "b"] {
                        assert_eq!(p.gw.put(&format!("/metrics/job/{job}"), "m 1\n").status, 200);
                    }
                    assert_eq!(p.gw.req("POST", "/-/quit", &[], b"").status, 200);
                    let (code, log) = p.wait();
                    if code != 0 {
                        bad.push(format!("exit {code}:\n{log}"));
                    }
                }
                bad
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "{} of 60 gateways did not exit 0:\n{}", failures.len(), failures.join("\n"));
}

/// SO_REUSEPORT would let a second gateway on the same port take half of the connections
/// without a word; it is refused instead. Once the first one stops, the port is free again
/// at once (connections it closed may still be in TIME_WAIT).
#[test]
fn a_second_gateway_on_a_port_in_use_is_refused_and_a_restart_gets_it() {
    let p = spawn(&[]);
    let addr = p.gw.addr.to_string();
    for _ in 0..5 {
        assert_eq!(p.gw.get("/metrics").status, 200);
    }
    let second = Command::new(env!("CARGO_BIN_EXE_ringgate")).args(["--web.listen-address", &addr]).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{addr} is already in use")), "{err}");
    // The first one is untouched.
    assert_eq!(p.gw.put("/metrics/job/still", "m 1\n").status, 200);
    assert_eq!(p.term().0, 0);
    let again = spawn(&["--web.listen-address", &addr]);
    assert_eq!(again.gw.addr.to_string(), addr);
    assert_eq!(again.gw.get("/metrics").status, 200);
    assert_eq!(again.term().0, 0);
}
