//! Routing and the HTTP API handlers. Every status code a handler can answer is chosen here.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::decompress::{self, DecompressError, Encoding};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::config::{parse_duration, Lifecycle};
use crate::expo::{BodyError, RenderedFamily};
use crate::grouping::GroupKey;
use crate::http::{Method, Request, Response};
use crate::jsonapi;
use crate::metrics::PushOutcome;
use crate::scrape::{self, Assembled};
use crate::shard::{Busy, Op, Reply, Shard};
use crate::store::{is_reserved_family, Life, PushError, PushMode};
use crate::{openmetrics, proto, text};

pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Per-push lifecycle override: `persistent`, `ttl` or `clear`.
pub const LIFECYCLE_HEADER: &str = "x-ringgate-lifecycle";
/// Per-push ttl (a duration such as `90s`); implies the ttl lifecycle unless the lifecycle
/// header says otherwise.
pub const TTL_HEADER: &str = "x-ringgate-ttl";
/// Scraper identity for the clear lifecycle (also the `scraper` query parameter).
pub const SCRAPER_HEADER: &str = "x-ringgate-scraper";

/// What the connection should write back.
pub enum Outcome {
    Respond(Response),
    Scrape(Scrape),
}

/// A scrape to write; once written whole, its clear groups are acknowledged to their owners.
pub struct Scrape {
    pub assembled: Assembled,
    pub scraper: Box<str>,
    /// Per shard: the clear groups (key, generation) this scrape carries.
    pub clear: Vec<Vec<(GroupKey, u64)>>,
    pub started: Instant,
    /// Held while this scrape's clear groups are unacknowledged; `None` when it has none.
    pending: Option<crate::registry::AckPending>,
}

/// After a scrape was written whole: tell every owner which clear groups it delivered.
pub async fn acknowledge(shard: &Shard, scrape: Scrape) {
    for (owner, items) in scrape.clear.into_iter().enumerate() {
        if !items.is_empty() {
            let _ = shard.call(owner, Op::Ack { scraper: scrape.scraper.clone(), items }).await;
        }
    }
    drop(scrape.pending);
}

/// How long a scrape waits for the same scraper's previous scrape to be acknowledged (it may
/// still be being written to a slow or vanished client); after that it goes ahead, and may
/// carry clear groups the previous one delivered too.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
            let scraper = req.query_param("scraper").or(req.header(SCRAPER_HEADER)).unwrap_or("default");
            if scraper.len() > 128 {
                return Outcome::Respond(Response::text(400, "scraper id longer than 128 bytes"));
            }
            match scrape_all(shard, scraper).await {
                Ok(s) => Outcome::Scrape(s),
                Err(Busy) => Outcome::Respond(busy()),
            }
        }
        "/api/v1/status" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            let groups = match shard.call_all(|| Op::Groups).await {
                Ok(r) => r.into_iter().map(|r| if let Reply::Groups(g) = r { g.len() } else { 0 }).sum(),
                Err(Busy) => return Outcome::Respond(busy()),
            };
            let body = jsonapi::status(&shard.config, shard.shared.start_time, groups);
            Outcome::Respond(Response::new(200, "application/json", body))
        }
        "/api/v1/metrics" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            let mut all = Vec::new();
            match shard.call_all(|| Op::Groups).await {
                Ok(replies) => {
                    for r in replies {
                        if let Reply::Groups(g) = r {
                            all.extend(g);
                        }
                    }
                }
                Err(Busy) => return Outcome::Respond(busy()),
            }
            Outcome::Respond(Response::new(200, "application/json", jsonapi::metrics(all)))
        }
        "/api/v1/admin/wipe" => {
            if req.method != Method::Put {
                return method_not_allowed("PUT");
            }
            if !shard.config.admin_api {
                return Outcome::Respond(Response::text(
                    403,
                    "the admin API is not enabled (start with --web.enable-admin-api)",
                ));
            }
            match shard.call_all(|| Op::Wipe).await {
                Ok(_) => Outcome::Respond(Response::text(202, "")),
                Err(Busy) => Outcome::Respond(busy()),
            }
        }
        "/-/quit" => {
            if !matches!(req.method, Method::Put | Method::Post) {
                return method_not_allowed("PUT, POST");
            }
            if !shard.config.lifecycle_api {
                return Outcome::Respond(Response::text(
                    403,
                    "the lifecycle API is not enabled (start with --web.enable-lifecycle)",
                ));
            }
            shard.shared.stop.store(true, Ordering::SeqCst);
            Outcome::Respond(Response::text(200, "Requesting termination... Goodbye!"))
        }
        "/-/healthy" | "/-/ready" => {
            if !get {
                return method_not_allowed("GET, HEAD");
            }
            Outcome::Respond(Response::text(200, "OK"))
        }
        p => {
            if let Some(rest) = p.strip_prefix("/metrics/") {
                let started = Instant::now();
                let resp = match req.method {
                    Method::Put => push(shard, req, rest, PushMode::Replace).await,
                    Method::Post => push(shard, req, rest, PushMode::Merge).await,
                    Method::Delete => {
                        shard.stats.deletes.set(shard.stats.deletes.get() + 1);
                        return Outcome::Respond(delete(shard, rest).await);
                    }
                    _ => return method_not_allowed("PUT, POST, DELETE"),
                };
                shard.stats.push(PushOutcome::from_status(resp.status));
                shard.stats.push_duration.observe(started.elapsed().as_secs_f64());
                return Outcome::Respond(resp);
            }
            Outcome::Respond(Response::text(404, format!("no such endpoint: {p}")))
        }
    }
}

async fn scrape_all(shard: &Shard, scraper: &str) -> Result<Scrape, Busy> {
    let started = Instant::now();
    shard.shared.scrapers.seen(scraper, started);
    while shard.shared.scrapers.pending(scraper) > 0 && started.elapsed() < ACK_WAIT {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
    let replies = shard.call_all(|| Op::Snapshot { scraper: scraper.into() }).await?;
    let mut snaps = Vec::with_capacity(replies.len());
    let mut clear = Vec::with_capacity(replies.len());
    for r in replies {
        if let Reply::Snapshot(mut s) = r {
            clear.push(std::mem::take(&mut s.clear));
            snaps.push(s);
        }
    }
    let pending = clear.iter().any(|c| !c.is_empty()).then(|| shard.shared.scrapers.begin_ack(scraper));
    Ok(Scrape { assembled: scrape::assemble(snaps), scraper: scraper.into(), clear, started, pending })
}

/// The lifecycle a push asks for: its headers, else the server default.
fn push_life(shard: &Shard, req: &Request) -> Result<Life, Response> {
    let cfg = &shard.config;
    let mut lifecycle = cfg.lifecycle;
    let mut ttl = cfg.group_ttl;
    if let Some(v) = req.header(TTL_HEADER) {
        ttl = parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| {
            Response::text(400, format!("invalid {TTL_HEADER} header {v:?}: expected a duration such as 90s or 5m"))
        })?;
        lifecycle = Lifecycle::Ttl;
    }
    if let Some(v) = req.header(LIFECYCLE_HEADER) {
        lifecycle = Lifecycle::parse(v.trim()).ok_or_else(|| {
            Response::text(400, format!("invalid {LIFECYCLE_HEADER} header {v:?}: expected persistent, ttl or clear"))
        })?;
    }
    Ok(Life { lifecycle, ttl })
}

async fn push(shard: &Shard, req: Request, rest: &str, mode: PushMode) -> Response {
    let key = match GroupKey::from_path(rest) {
        Ok(k) => k,
        Err(e) => return Response::text(400, format!("bad grouping key: {e}")),
    };
    let owner = key.shard(shard.shards);
    let now = unix_now();
    shard.stats.received(req.body.len());
    let life = match push_life(shard, &req) {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let families = match parse_body(shard, &req, &key) {
        Ok(f) => f,
        Err(resp) => {
            let _ = shard.call(owner, Op::Failure { key, now }).await;
            return resp;
        }
    };
    match shard.call(owner, Op::Push { key, families, mode, now, life }).await {
        Ok(Reply::Pushed(Ok(()))) => Response::text(200, ""),
        Ok(Reply::Pushed(Err(e @ PushError::Conflict(_)))) => Response::text(400, format!("push rejected: {e}")),
        Ok(Reply::Pushed(Err(e @ PushError::TooManyGroups { .. }))) => {
            Response::text(429, format!("push rejected: {e}")).with("Retry-After", "60")
        }
        Ok(Reply::Pushed(Err(e @ PushError::StoreFull { .. }))) => {
            Response::text(503, format!("push rejected: {e}")).with("Retry-After", "30")
        }
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
        let ct = ct.unwrap_or("").as_bytes();
        let starts = |prefix: &str| ct.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()));
        if starts("application/vnd.google.protobuf") {
            Format::Protobuf
        } else if starts("application/openmetrics-text") {
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
    let mut families = result.map_err(reject)?;
    if let Some(f) = families.iter().find(|f| is_reserved_family(&f.name)) {
        return Err(reject(BodyError::new(
            0,
            format!("family {:?} is written by the gateway and cannot be pushed", f.name),
        )));
    }
    crate::expo::pack(&mut families);
    crate::expo::compress(&mut families);
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
