//! A shard: one executor's store plus its links to every other shard.
//!
//! Ownership is the pure function [`GroupKey::shard`]. A request for another shard's group
//! travels through the shard mesh ([`crate::mesh`]) carrying its id and origin; the owner answers
//! through the mesh too, and the origin's receiver task completes the waiting request. The
//! mesh cannot send to its own shard, so a request for a local group is a direct call.
//!
//! Where a body is parsed: on the shard that accepted the connection. Parsing is most of the
//! CPU a push costs and is spread evenly by SO_REUSEPORT whatever the keys are; what travels
//! to the owner is the rendered families (moved, not copied), and the owner only swaps them
//! into its maps. Queues are bounded: when the owner's queue is full the push is answered 503
//! at once instead of waiting.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::ConnectedReceiver;

use crate::config::{Config, Lifecycle};
use crate::expo::RenderedFamily;
use crate::grouping::GroupKey;
use crate::mesh::Senders;
use crate::metrics::Stats;
use crate::registry::{Registry, Scrapers};
use crate::store::{Budget, Life, PushError, PushMode, ShardSnapshot, Store};

/// State every shard shares: the family-type registry, the scrapers seen, and the stop flags.
pub struct Shared {
    pub registry: Arc<Registry>,
    pub scrapers: Arc<Scrapers>,
    /// Set by SIGTERM/SIGINT or /-/quit: stop accepting, drain, flush, exit.
    pub stop: AtomicBool,
    pub start_time: f64,
    /// How new connections split over the shards (`--http.connection-steering`).
    pub balance: crate::steer::Balance,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            registry: Arc::new(Registry::default()),
            scrapers: Arc::new(Scrapers::default()),
            stop: AtomicBool::new(false),
            start_time: crate::api::unix_now(),
            balance: crate::steer::Balance::new(0, false),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// Work for the owning shard.
pub enum Op {
    Push { key: GroupKey, families: Vec<RenderedFamily>, mode: PushMode, now: f64, life: Life },
    Failure { key: GroupKey, now: f64 },
    Delete { key: GroupKey },
    Snapshot { scraper: Box<str> },
    Ack { scraper: Box<str>, items: Vec<(GroupKey, u64)> },
    Wipe,
    Groups,
}

/// One group as the JSON API shows it and the snapshot writer stores it: reference counts
/// of its rendered families, no byte copies.
pub struct GroupView {
    pub key: GroupKey,
    pub families: Vec<Arc<RenderedFamily>>,
    pub push_time: f64,
    pub failure_time: f64,
    pub lifecycle: Lifecycle,
    pub ttl: Duration,
    /// Unix time at which the group expires, if it does.
    pub expires_at: Option<f64>,
    /// Scrapers that took the current generation of a clear group.
    pub taken_by: Vec<Box<str>>,
    pub shard: usize,
}

pub enum Reply {
    Pushed(Result<(), PushError>),
    Done,
    Snapshot(ShardSnapshot),
    Wiped(usize),
    Groups(Vec<GroupView>),
}

pub enum Msg {
    Request { id: u64, from: usize, op: Op },
    Reply { id: u64, reply: Reply },
}

/// The owner's queue is full.
#[derive(Debug)]
pub struct Busy;

pub struct Shard {
    pub id: usize,
    pub shards: usize,
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub store: RefCell<Store>,
    pub bump: RefCell<bumpalo::Bump>,
    pub stats: Stats,
    /// Requests being handled (not idle keep-alive connections): drained before exit.
    pub in_flight: Cell<usize>,
    /// `--push.max-in-flight`: bytes of request bodies this shard may hold, and that size.
    pub body_budget: (Rc<glommio::sync::Semaphore>, u64),
    /// The task queue scrapes are written from (see `server::serve`); `None` outside an
    /// executor started by `server::start`.
    pub scrape_queue: Cell<Option<glommio::TaskQueueHandle>>,
    senders: Option<Senders<Msg>>,
    pending: RefCell<AHashMap<u64, LocalSender<Reply>>>,
    next_id: Cell<u64>,
}

impl Shard {
    pub fn new(id: usize, config: Arc<Config>, shared: Arc<Shared>, senders: Option<Senders<Msg>>) -> Shard {
        let budget = config.max_in_flight.max(1);
        Shard {
            body_budget: (Rc::new(glommio::sync::Semaphore::new(budget)), budget),
            scrape_queue: Cell::new(None),
            id,
            shards: config.shards,
            // Each shard owns its groups, so the store-wide limits are split evenly.
            store: RefCell::new(Store::with_budget(
                shared.registry.clone(),
                config.clear_max_age,
                Budget {
                    groups: config.max_groups.div_ceil(config.shards),
                    bytes: config.max_bytes.div_ceil(config.shards as u64),
                },
            )),
            config,
            shared,
            bump: RefCell::new(bumpalo::Bump::new()),
            stats: Stats::default(),
            in_flight: Cell::new(0),
            senders,
            pending: RefCell::new(AHashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// Runs `op` on shard `target`: directly when it is this one, else through the mesh.
    pub async fn call(&self, target: usize, op: Op) -> Result<Reply, Busy> {
        if target == self.id {
            return Ok(self.handle(op));
        }
        let senders = self.senders.as_ref().ok_or(Busy)?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        if senders.try_send_to(target, Msg::Request { id, from: self.id, op }).is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(Busy);
        }
        rx.recv().await.ok_or(Busy)
    }

    /// Asks every shard (this one included) for the same operation, in shard order.
    pub async fn call_all(&self, op: impl Fn() -> Op) -> Result<Vec<Reply>, Busy> {
        let mut out = Vec::with_capacity(self.shards);
        for s in 0..self.shards {
            out.push(self.call(s, op()).await?);
        }
        Ok(out)
    }

    /// Applies an operation to this shard's store. Synchronous: no borrow outlives it.
    pub fn handle(&self, op: Op) -> Reply {
        let mut store = self.store.borrow_mut();
        match op {
            Op::Push { key, families, mode, now, life } => {
                Reply::Pushed(store.push(key, families, mode, now, life, Instant::now()))
            }
            Op::Failure { key, now } => {
                store.record_failure(&key, now);
                Reply::Done
            }
            Op::Delete { key } => {
                store.delete(&key);
                Reply::Done
            }
            Op::Snapshot { scraper } => {
                let mut snap = store.snapshot(&scraper);
                let (budget, cap) = &self.body_budget;
                self.stats.in_flight_bytes.set(cap - budget.available().min(*cap));
                let own = self.stats.render(self.id, store.len(), store.bytes(), &store.removals);
                snap.families.extend(own.into_iter().map(|f| vec![f]));
                snap.families.sort_by(|a, b| a[0].name.cmp(&b[0].name));
                Reply::Snapshot(snap)
            }
            Op::Ack { scraper, items } => {
                let required: Vec<Box<str>> = if self.config.clear_scrapers.is_empty() {
                    self.shared.scrapers.active(Instant::now(), self.config.clear_max_age)
                } else {
                    self.config.clear_scrapers.iter().map(|s| s.as_str().into()).collect()
                };
                store.ack(&scraper, &items, |taken| required.iter().all(|r| taken.contains(r)));
                Reply::Done
            }
            Op::Wipe => Reply::Wiped(store.wipe()),
            Op::Groups => Reply::Groups(self.views(&store)),
        }
    }

    /// Every group of this shard as a [`GroupView`].
    fn views(&self, store: &Store) -> Vec<GroupView> {
        let now_wall = crate::api::unix_now();
        let now = Instant::now();
        store
            .groups()
            .map(|g| GroupView {
                key: g.key.clone(),
                families: g.families.values().cloned().collect(),
                push_time: g.push_time,
                failure_time: g.failure_time,
                lifecycle: g.lifecycle,
                ttl: g.ttl,
                expires_at: g.deadline.map(|d| now_wall + d.saturating_duration_since(now).as_secs_f64()),
                taken_by: g.taken_by.clone(),
                shard: self.id,
            })
            .collect()
    }

    /// What the persistence writer needs: the store version and every group.
    pub fn persist_view(&self) -> (u64, Vec<GroupView>) {
        let store = self.store.borrow();
        (store.version, self.views(&store))
    }

    /// Serves the mesh: one task per peer (in task queue `queue` when given), answering requests
    /// and completing replies.
    pub fn spawn_receivers(
        self: &Rc<Self>,
        receivers: Vec<(usize, ConnectedReceiver<Msg>)>,
        queue: Option<glommio::TaskQueueHandle>,
    ) {
        for (_peer, stream) in receivers {
            let shard = self.clone();
            let serving = async move {
                while let Some(msg) = stream.recv().await {
                    match msg {
                        Msg::Request { id, from, op } => {
                            let reply = shard.handle(op);
                            let Some(senders) = shard.senders.as_ref() else { continue };
                            // Usually the queue back has room. When it is full, the reply waits
                            // in its own task: this loop must keep draining requests, or two
                            // shards answering each other could deadlock.
                            if let Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg))) =
                                senders.try_send_to(from, Msg::Reply { id, reply })
                            {
                                let s = shard.clone();
                                glommio::spawn_local(async move {
                                    if let Some(senders) = s.senders.as_ref() {
                                        let _ = senders.send_to(from, msg).await;
                                    }
                                })
                                .detach();
                            }
                        }
                        Msg::Reply { id, reply } => {
                            if let Some(tx) = shard.pending.borrow_mut().remove(&id) {
                                let _ = tx.try_send(reply);
                            }
                        }
                    }
                }
            };
            match queue {
                // A queue made by this executor and never removed: spawning into it cannot fail.
                Some(tq) => glommio::spawn_local_into(serving, tq).expect("mesh task queue exists").detach(),
                None => glommio::spawn_local(serving).detach(),
            };
        }
    }
}
