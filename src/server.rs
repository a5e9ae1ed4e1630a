//! Startup and the accept loops: one glommio executor per shard, each pinned to a CPU and
//! accepting on the same address through SO_REUSEPORT.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::api::{self, Outcome, EXPOSITION_CONTENT_TYPE};
use crate::config::Config;
use crate::http::{Conn, Limits, Method, Response};
use crate::registry::Registry;
use crate::shard::Shard;
use crate::sys::PortReservation;

/// A started gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub shards: usize,
    stop: Arc<AtomicBool>,
    handles: Option<glommio::PoolThreadHandles<()>>,
}

impl Running {
    /// Asks every shard to stop accepting.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for every shard to finish.
    pub fn join(mut self) {
        if let Some(h) = self.handles.take() {
            let _ = h.join_all();
        }
    }
}

/// Starts every shard and returns once all of them accept connections.
pub fn start(config: Config) -> io::Result<Running> {
    let reservation = PortReservation::new(config.listen)?;
    let addr = reservation.addr;
    let shards = config.shards;
    let config = Arc::new(config);
    let registry = Arc::new(Registry::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mesh = MeshBuilder::full(shards, 1024);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let placement = if config.pin { PoolPlacement::MaxSpread(shards, None) } else { PoolPlacement::Unbound(shards) };
    let handles = {
        let stop = stop.clone();
        LocalExecutorPoolBuilder::new(placement)
            .name("ringgate-shard")
            .on_all_shards(move || {
                let config = config.clone();
                let registry = registry.clone();
                let stop = stop.clone();
                let mesh = mesh.clone();
                let ready = ready_tx.clone();
                async move {
                    let (senders, receivers) = match mesh.join().await {
                        Ok(sr) => sr,
                        Err(_) => {
                            let _ = ready.send(Err("could not join the shard mesh".into()));
                            return;
                        }
                    };
                    let id = senders.peer_id();
                    let shard = Rc::new(Shard::new(id, config, registry, Some(senders)));
                    shard.spawn_receivers(receivers);
                    let listener = match TcpListener::bind(addr) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready.send(Err(format!("shard {id}: cannot listen on {addr}: {e}")));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    accept_loop(shard, listener, stop).await;
                }
            })
            .map_err(|e| io::Error::other(format!("cannot start shard executors: {e}")))?
    };
    for _ in 0..shards {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(io::Error::other(msg)),
            Err(_) => return Err(io::Error::other("a shard did not start within 30 s")),
        }
    }
    drop(reservation);
    Ok(Running { addr, shards, stop, handles: Some(handles) })
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, stop: Arc<AtomicBool>) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            loop {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
            }
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                crate::warn!("shard {}: accept failed: {e}", shard.id);
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shard = shard.clone();
        let open = open.clone();
        glommio::spawn_local(async move {
            if open.get() >= shard.config.max_connections {
                let mut conn = Conn::new(stream);
                let resp =
                    Response::text(503, "too many open connections on this shard (raise --http.max-connections)")
                        .with("Retry-After", "1");
                let _ = conn.respond(&resp, false, false).await;
                return;
            }
            open.set(open.get() + 1);
            serve(&shard, stream).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn serve(shard: &Shard, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let c = &shard.config;
    let limits = Limits {
        max_header: c.max_header,
        max_body: c.max_body,
        header_timeout: c.header_timeout,
        body_timeout: c.body_timeout,
        idle_timeout: c.idle_timeout,
    };
    let mut conn = Conn::new(stream);
    loop {
        let req = match conn.read_request(&limits).await {
            Ok(r) => r,
            Err(e) => {
                if let Some((status, msg)) = e.response() {
                    let _ = conn.respond(&Response::text(status, msg), false, false).await;
                }
                return;
            }
        };
        let head_only = req.method == Method::Head;
        let keep_alive = req.keep_alive;
        let written = match api::handle(shard, req).await {
            Outcome::Respond(resp) => conn.respond(&resp, head_only, keep_alive).await,
            Outcome::Scrape(a) => {
                let resp = Response::new(200, EXPOSITION_CONTENT_TYPE, Vec::new());
                let head = resp.head(a.len, keep_alive);
                if head_only {
                    futures_lite::AsyncWriteExt::write_all(&mut conn.stream, &head).await
                } else {
                    let mut slices = Vec::with_capacity(1 + a.families * 2);
                    slices.push(&head[..]);
                    slices.extend(a.slices());
                    conn.write_vectored_all(&slices).await
                }
            }
        };
        if written.is_err() || !keep_alive {
            return;
        }
    }
}
