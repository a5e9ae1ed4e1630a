//! ringgate: a thread-per-core push gateway for Prometheus.
//!
//! How a push flows through the modules:
//!
//! ```text
//!  TCP (SO_REUSEPORT, every shard accepts; steer: by the CPU that got the packet)
//!    -> http      read one request (httparse, Content-Length or chunked body)
//!    -> api       route; decode the grouping key (grouping) and pick its owning shard
//!    -> text      parse the body in a per-request arena, render each family once (expo)
//!    -> shard     hand the rendered families to the owner (local call or the shard mesh)
//!    -> store     the owner swaps them into its groups; registry keeps family types in step
//! ```
//!
//! And a scrape: `scrape` asks every shard for a snapshot of its rendered chunks (reference
//! counted, no copy), merges families by name, writes each family's HELP/TYPE once and then
//! the chunks with vectored writes (`sys`). A gzip scrape sends the same parts as deflate
//! segments made once per pushed group and framed into one gzip member (`gzip`).

pub mod api;
pub mod config;
pub mod decompress;
pub mod expo;
pub mod grouping;
pub mod gzip;
pub mod http;
pub mod jsonapi;
pub mod log;
pub mod mesh;
pub mod metrics;
pub mod openmetrics;
pub mod persist;
pub mod proto;
pub mod registry;
pub mod scrape;
pub mod server;
pub mod shard;
pub mod steer;
pub mod store;
pub mod sys;
pub mod text;
