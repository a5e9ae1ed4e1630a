//! Routing and the HTTP API handlers. Every status code a handler can answer is chosen here.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::decompress::{self, DecompressError, Encoding};
use crate::expo::{BodyError, RenderedFamily};
use crate::grouping::GroupKey;
use crate::http::{Method, Request, Response};
use crate::scrape::{self, Assembled};
use crate::shard::{Busy, Op, Reply, Shard};
use crate::store::{is_reserved_family, PushMode};
use crate::{openmetrics, proto, text};

pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the connection should write back.
pub enum Outcome {
    Respond(Response),
    Scrape(Assembled),
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn busy() -> Response {
    Response::text(503, "the owning shard is saturated; retry shortly").with("Retry-After", "1")
}

fn method_not_allowed(allow: &'static str) -> Outcome {
    Outcome::Respond(Response::text(405, format!("method not allowed; use {allow}")).with("Allow", allow))
}

pub async fn handle(shard: &Shard, req: Request) -> Outcome {
    let path = req.path.clone();
    let get = matches!(req.method, Method::Get | Method::Head);
    match path.as_str() {
        "/metrics" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            match scrape_all(shard).await {
                Ok(a) => Outcome::Scrape(a),
                Err(Busy) => Outcome::Respond(busy()),
            }
        }
        "/-/healthy" | "/-/ready" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            Outcome::Respond(Response::text(200, "OK"))
        }
        p => {
            if let Some(rest) = p.strip_prefix("/metrics/") {
                let resp = match req.method {
                    Method::Put => push(shard, req, rest, PushMode::Replace).await,
                    Method::Post => push(shard, req, rest, PushMode::Merge).await,
                    Method::Delete => delete(shard, rest).await,
                    _ => return method_not_allowed("PUT, POST, DELETE"),
                };
                return Outcome::Respond(resp);
            }
            Outcome::Respond(Response::text(404, format!("no such endpoint: {p}")))
        }
    }
}

async fn scrape_all(shard: &Shard) -> Result<Assembled, Busy> {
    let replies = shard.call_all(|| Op::Snapshot).await?;
    let snaps = replies
        .into_iter()
        .filter_map(|r| match r {
            Reply::Snapshot(s) => Some(s),
            _ => None,
        })
        .collect();
    Ok(scrape::assemble(snaps))
}

async fn push(shard: &Shard, req: Request, rest: &str, mode: PushMode) -> Response {
    let key = match GroupKey::from_path(rest) {
        Ok(k) => k,
        Err(e) => return Response::text(400, format!("bad grouping key: {e}")),
    };
    let owner = key.shard(shard.shards);
    let now = unix_now();
    let families = match parse_body(shard, &req, &key) {
        Ok(f) => f,
        Err(resp) => {
            let _ = shard.call(owner, Op::Failure { key, now }).await;
            return resp;
        }
    };
    match shard.call(owner, Op::Push { key, families, mode, now }).await {
        Ok(Reply::Pushed(Ok(()))) => Response::text(200, ""),
        Ok(Reply::Pushed(Err(conflict))) => Response::text(400, format!("push rejected: {conflict}")),
        Ok(_) => Response::text(500, "unexpected reply from the owning shard"),
        Err(Busy) => busy(),
    }
}

/// Body formats, chosen by Content-Type; anything else is read as text 0.0.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Protobuf,
    OpenMetrics,
}

impl Format {
    pub fn from_content_type(ct: Option<&str>) -> Format {
        let ct = ct.unwrap_or("").to_ascii_lowercase();
        if ct.starts_with("application/vnd.google.protobuf") {
            Format::Protobuf
        } else if ct.starts_with("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Decompresses and parses the body in this shard's arena, rendering it with the group's
/// labels. A refusal comes back as the response to send.
fn parse_body(shard: &Shard, req: &Request, key: &GroupKey) -> Result<Vec<RenderedFamily>, Response> {
    let cfg = &shard.config;
    let inflated;
    let body: &[u8] = match req.content_encoding.as_deref() {
        None => &req.body,
        Some(enc) => match Encoding::from_header(enc.as_bytes()) {
            Some(Encoding::Identity) => &req.body,
            Some(e) => match decompress::decode(e, &req.body, cfg.max_decompressed) {
                Ok(b) => {
                    inflated = b;
                    &inflated
                }
                Err(err @ DecompressError::TooLarge { .. }) => return Err(Response::text(413, format!("{err}"))),
                Err(err) => return Err(Response::text(400, format!("push rejected: {err}"))),
            },
            None => {
                return Err(Response::text(415, format!("unsupported Content-Encoding {enc:?}; use gzip or snappy")))
            }
        },
    };
    let injected = key.injected();
    let mut bump = shard.bump.borrow_mut();
    let result = match Format::from_content_type(req.content_type.as_deref()) {
        Format::Text => text::parse_with_limit(body, &injected, &bump, cfg.max_series),
        Format::Protobuf => proto::parse(body, &injected, &bump, cfg.max_series),
        Format::OpenMetrics => openmetrics::parse(body, &injected, &bump, cfg.max_series),
    };
    bump.reset();
    let reject = |e: BodyError| Response::text(400, format!("push rejected: {e}"));
    let families = result.map_err(reject)?;
    if let Some(f) = families.iter().find(|f| is_reserved_family(&f.name)) {
        return Err(reject(BodyError::new(
            0,
            format!("family {:?} is written by the gateway and cannot be pushed", f.name),
        )));
    }
    Ok(families)
}

async fn delete(shard: &Shard, rest: &str) -> Response {
    let key = match GroupKey::from_path(rest) {
        Ok(k) => k,
        Err(e) => return Response::text(400, format!("bad grouping key: {e}")),
    };
    match shard.call(key.shard(shard.shards), Op::Delete { key }).await {
        Ok(_) => Response::text(202, ""),
        Err(Busy) => busy(),
    }
}
