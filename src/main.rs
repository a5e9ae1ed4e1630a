//! The `ringgate` binary: flags -> [`Config`] -> [`server::start`] -> wait.
//!
//! See the crate docs (`src/lib.rs`) for the map of modules.

use std::process::ExitCode;

use argh::FromArgs;
use ringgate::config::{normalize_args, Config, Flags};
use ringgate::{info, log, server, sys, warn};

fn main() -> ExitCode {
    let argv = normalize_args(std::env::args().skip(1));
    let refs: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
    let flags = match Flags::from_args(&["ringgate"], &refs) {
        Ok(f) => f,
        Err(early) => {
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", early.output);
                ExitCode::from(2)
            };
        }
    };
    if flags.version {
        println!("ringgate {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let check_only = flags.check_config;
    let config = match Config::from_flags(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringgate: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("ringgate: configuration is valid");
        return ExitCode::SUCCESS;
    }
    log::set_level(config.log_level);
    // Before any shard thread exists, so that all of them inherit the mask.
    sys::block_term_signals();
    sys::tune_allocator();
    let shards = config.shards;
    let running = match server::start(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringgate: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    info!("msg=\"ringgate {} listening\" address={} shards={shards}", env!("CARGO_PKG_VERSION"), running.addr);
    for p in &running.restore_problems {
        warn!("msg=\"persistence restore problem\" detail=\"{p}\"");
    }
    if running.restored_groups > 0 || !running.restore_problems.is_empty() {
        info!("msg=\"restored groups from snapshot\" groups={}", running.restored_groups);
    }
    loop {
        if let Some(sig) = sys::wait_signal(std::time::Duration::from_millis(200)) {
            info!("msg=\"signal received; stopping\" signal={sig}");
            running.stop();
            break;
        }
        if running.stopping() {
            info!("msg=\"quit requested; stopping\"");
            break;
        }
    }
    running.join();
    info!("msg=\"stopped\"");
    ExitCode::SUCCESS
}
