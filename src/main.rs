//! The `ringgate` binary: flags -> [`Config`] -> [`server::start`] -> wait.
//!
//! See the crate docs (`src/lib.rs`) for the map of modules.

use std::process::ExitCode;

use argh::FromArgs;
use ringgate::config::{normalize_args, Config, Flags};
use ringgate::{info, log, server};

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
    let shards = config.shards;
    let running = match server::start(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringgate: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    info!("msg=\"ringgate {} listening\" address={} shards={shards}", env!("CARGO_PKG_VERSION"), running.addr);
    running.join();
    ExitCode::SUCCESS
}
