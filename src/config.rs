//! Command-line flags (argh) validated into a [`Config`] before anything starts.
//!
//! Flag names follow the Pushgateway's where the meaning is the same. argh spells them with
//! dashes (`--web-listen-address`); [`normalize_args`] also accepts the dotted spellings
//! (`--web.listen-address`) and `--flag=value`, so an existing `/etc/default` line keeps
//! working. The man page lists every flag defined here; a test keeps the two in step.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use argh::FromArgs;

/// A thread-per-core push gateway for Prometheus.
#[derive(FromArgs, Debug)]
pub struct Flags {
    /// address to listen on for pushes and scrapes (default ":9091")
    #[argh(option, default = "String::from(\":9091\")")]
    pub web_listen_address: String,

    /// number of shards, one pinned executor each (default: every online CPU)
    #[argh(option)]
    pub shards: Option<usize>,

    /// default lifecycle of a group: persistent, ttl or clear (default "persistent")
    #[argh(option, default = "String::from(\"persistent\")")]
    pub lifecycle: String,

    /// how long a ttl-lifecycle group lives without a push, e.g. 90s, 5m (default "5m")
    #[argh(option, default = "String::from(\"5m\")")]
    pub group_ttl: String,

    /// drop clear-lifecycle data that no scraper took within this age (default "10m")
    #[argh(option, default = "String::from(\"10m\")")]
    pub clear_max_age: String,

    /// comma-separated scraper ids that must each receive clear-lifecycle data before it is
    /// dropped; empty means every scraper seen within --clear.max-age (default "")
    #[argh(option, default = "String::new()")]
    pub clear_scrapers: String,

    /// file to persist groups to; empty keeps them in memory only (default "")
    #[argh(option, default = "String::new()")]
    pub persistence_file: String,

    /// how often to write the persistence file (default "5m")
    #[argh(option, default = "String::from(\"5m\")")]
    pub persistence_interval: String,

    /// enable PUT /api/v1/admin/wipe
    #[argh(switch)]
    pub web_enable_admin_api: bool,

    /// enable PUT|POST /-/quit
    #[argh(switch)]
    pub web_enable_lifecycle: bool,

    /// largest request body accepted, as sent on the wire (default "64MiB")
    #[argh(option, default = "String::from(\"64MiB\")")]
    pub push_max_body_size: String,

    /// largest request body accepted after decompression (default "256MiB")
    #[argh(option, default = "String::from(\"256MiB\")")]
    pub push_max_decompressed_size: String,

    /// bytes of request bodies each shard reads and applies at once (default "32MiB"); a
    /// push beyond it waits, unread, in line. Also the body buffers a shard keeps for reuse
    #[argh(option, default = "String::from(\"32MiB\")")]
    pub push_max_in_flight: String,

    /// most series accepted in one push (default 2000000)
    #[argh(option, default = "2_000_000")]
    pub push_max_series: usize,

    /// most labels on one series, grouping labels included (default 64)
    #[argh(option, default = "64")]
    pub push_max_labels: usize,

    /// longest label value in bytes (default 16384)
    #[argh(option, default = "16384")]
    pub push_max_label_length: usize,

    /// most groups held by the gateway (default 100000)
    #[argh(option, default = "100_000")]
    pub store_max_groups: usize,

    /// most rendered bytes held by the gateway (default "16GiB")
    #[argh(option, default = "String::from(\"16GiB\")")]
    pub store_max_bytes: String,

    /// keep groups of 64 KiB or more as their gzip deflate segments instead of plain text:
    /// on (default; about a fifth of the memory, plain scrapes inflate them) or off
    #[argh(option, default = "String::from(\"on\")")]
    pub store_compression: String,

    /// largest request head (request line and headers) (default "64KiB")
    #[argh(option, default = "String::from(\"64KiB\")")]
    pub http_max_header_size: String,

    /// time allowed to receive a request's head (default "10s")
    #[argh(option, default = "String::from(\"10s\")")]
    pub http_header_timeout: String,

    /// time allowed to receive a request's body (default "60s")
    #[argh(option, default = "String::from(\"60s\")")]
    pub http_body_timeout: String,

    /// how long an idle keep-alive connection is kept (default "120s")
    #[argh(option, default = "String::from(\"120s\")")]
    pub http_idle_timeout: String,

    /// most open connections per shard (default 8192)
    #[argh(option, default = "8192")]
    pub http_max_connections: usize,

    /// which shard accepts a new connection: cpu (default), the shard pinned to the CPU
    /// that received the connection's first packet, falling back to hash if that leaves a
    /// shard under half its share; or hash, spread by the connection's addresses
    #[argh(option, default = "String::from(\"cpu\")")]
    pub http_connection_steering: String,

    /// log level: debug, info, warn or error (default "info")
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,

    /// validate the flags and exit (0 when valid, 2 otherwise)
    #[argh(switch)]
    pub check_config: bool,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Persistent,
    Ttl,
    Clear,
}

impl Lifecycle {
    pub fn parse(s: &str) -> Option<Lifecycle> {
        match s {
            "persistent" => Some(Lifecycle::Persistent),
            "ttl" => Some(Lifecycle::Ttl),
            "clear" => Some(Lifecycle::Clear),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Persistent => "persistent",
            Lifecycle::Ttl => "ttl",
            Lifecycle::Clear => "clear",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub shards: usize,
    /// Pin each shard to a CPU (off in tests that start many servers in one process).
    pub pin: bool,
    pub lifecycle: Lifecycle,
    pub group_ttl: Duration,
    pub clear_max_age: Duration,
    pub clear_scrapers: Vec<String>,
    pub persistence_file: Option<std::path::PathBuf>,
    pub persistence_interval: Duration,
    pub admin_api: bool,
    pub lifecycle_api: bool,
    pub max_body: usize,
    pub max_decompressed: usize,
    /// Bytes of request bodies each shard reads and applies at once.
    pub max_in_flight: u64,
    pub max_series: usize,
    pub max_labels: usize,
    pub max_label_length: usize,
    pub max_groups: usize,
    pub max_bytes: u64,
    pub max_header: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub steering: Steering,
    /// Keep large groups compressed (`--store.compression`, see `expo::compress`).
    pub compression: bool,
    pub log_level: LogLevel,
}

/// `--http.connection-steering`: how new connections are spread over the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// SO_INCOMING_CPU on each pinned shard's listener (see [`crate::steer`]).
    Cpu,
    /// The kernel's SO_REUSEPORT hash of the connection's addresses.
    Hash,
}

impl Default for Config {
    fn default() -> Config {
        Config::from_flags(Flags::from_args(&["ringgate"], &[]).expect("defaults parse")).expect("defaults are valid")
    }
}

/// A flag whose value is refused; `Display` names the flag.
#[derive(Debug)]
pub struct FlagError {
    pub flag: &'static str,
    pub msg: String,
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid value for --{}: {}", self.flag, self.msg)
    }
}

fn bad(flag: &'static str, msg: impl Into<String>) -> FlagError {
    FlagError { flag, msg: msg.into() }
}

impl Config {
    pub fn from_flags(f: Flags) -> Result<Config, FlagError> {
        let dur = |flag, v: &str| {
            parse_duration(v).ok_or_else(|| bad(flag, format!("{v:?} is not a duration like 30s, 5m or 1h")))
        };
        let size =
            |flag, v: &str| parse_size(v).ok_or_else(|| bad(flag, format!("{v:?} is not a size like 512KiB or 64MiB")));
        let listen = parse_listen(&f.web_listen_address).map_err(|m| bad("web.listen-address", m))?;
        let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let shards = f.shards.unwrap_or(online);
        if shards == 0 || shards > 1024 {
            return Err(bad("shards", format!("{shards} is not between 1 and 1024")));
        }
        let lifecycle = Lifecycle::parse(&f.lifecycle)
            .ok_or_else(|| bad("lifecycle", format!("{:?} is not one of persistent, ttl, clear", f.lifecycle)))?;
        let group_ttl = dur("group.ttl", &f.group_ttl)?;
        if group_ttl.is_zero() {
            return Err(bad("group.ttl", "must be greater than zero"));
        }
        let persistence_interval = dur("persistence.interval", &f.persistence_interval)?;
        if persistence_interval.is_zero() {
            return Err(bad("persistence.interval", "must be greater than zero"));
        }
        let log_level = match f.log_level.as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            other => return Err(bad("log.level", format!("{other:?} is not one of debug, info, warn, error"))),
        };
        let positive = |flag, v: usize| if v == 0 { Err(bad(flag, "must be greater than zero")) } else { Ok(v) };
        Ok(Config {
            listen,
            shards,
            pin: shards <= online,
            lifecycle,
            group_ttl,
            clear_max_age: dur("clear.max-age", &f.clear_max_age)?,
            clear_scrapers: f
                .clear_scrapers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            persistence_file: (!f.persistence_file.is_empty()).then(|| f.persistence_file.into()),
            persistence_interval,
            admin_api: f.web_enable_admin_api,
            lifecycle_api: f.web_enable_lifecycle,
            max_body: size("push.max-body-size", &f.push_max_body_size)? as usize,
            max_decompressed: size("push.max-decompressed-size", &f.push_max_decompressed_size)? as usize,
            max_in_flight: size("push.max-in-flight", &f.push_max_in_flight)?.max(1),
            max_series: positive("push.max-series", f.push_max_series)?,
            max_labels: positive("push.max-labels", f.push_max_labels)?,
            max_label_length: positive("push.max-label-length", f.push_max_label_length)?,
            max_groups: positive("store.max-groups", f.store_max_groups)?,
            max_bytes: size("store.max-bytes", &f.store_max_bytes)?,
            max_header: size("http.max-header-size", &f.http_max_header_size)?.max(1024) as usize,
            header_timeout: dur("http.header-timeout", &f.http_header_timeout)?,
            body_timeout: dur("http.body-timeout", &f.http_body_timeout)?,
            idle_timeout: dur("http.idle-timeout", &f.http_idle_timeout)?,
            max_connections: positive("http.max-connections", f.http_max_connections)?,
            steering: match f.http_connection_steering.as_str() {
                "cpu" => Steering::Cpu,
                "hash" => Steering::Hash,
                other => return Err(bad("http.connection-steering", format!("{other:?} is not one of cpu, hash"))),
            },
            compression: match f.store_compression.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(bad("store.compression", format!("{other:?} is not one of on, off"))),
            },
            log_level,
        })
    }
}

/// Rewrites `--a.b-c=v` into `--a-b-c v`, so argh sees its own spelling.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        if let Some(body) = a.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            out.push(format!("--{}", name.replace(['.', '_'], "-")));
            if let Some(v) = value {
                out.push(v.to_string());
            }
        } else {
            out.push(a);
        }
    }
    out
}

/// `:9091`, `0.0.0.0:9091`, `[::1]:9091`, `localhost:9091`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_string() };
    full.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Go-style durations: `1h30m`, `90s`, `250ms`, `2d` (days, as Prometheus accepts); a bare
/// number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * mult;
    }
    Some(Duration::from_secs_f64(total))
}

/// Sizes: `1048576`, `512KiB`, `64MiB`, `1GiB`, and the decimal `KB`/`MB`/`GB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let n = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let num: u64 = s[..n].parse().ok()?;
    let mult: u64 = match s[n..].trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    num.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<Config, String> {
        let argv = normalize_args(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
        let flags = Flags::from_args(&["ringgate"], &refs).map_err(|e| e.output)?;
        Config::from_flags(flags).map_err(|e| e.to_string())
    }

    #[test]
    fn dotted_and_equals_spellings() {
        let c = cfg(&["--web.listen-address=127.0.0.1:9999", "--persistence.interval", "1m30s"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.persistence_interval, Duration::from_secs(90));
        assert_eq!(cfg(&[]).unwrap().listen, "0.0.0.0:9091".parse().unwrap());
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert!(cfg(&["--lifecycle", "forever"]).unwrap_err().contains("--lifecycle"));
        assert!(cfg(&["--group.ttl", "soon"]).unwrap_err().contains("--group.ttl"));
        assert!(cfg(&["--push.max-body-size", "big"]).unwrap_err().contains("--push.max-body-size"));
        assert!(cfg(&["--shards", "0"]).unwrap_err().contains("--shards"));
    }

    #[test]
    fn units() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("x"), None);
    }
}
