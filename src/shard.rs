//! A shard: one executor's store plus its links to every other shard.
//!
//! Ownership is the pure function [`GroupKey::shard`]. A request for another shard's group
//! travels through glommio's channel mesh carrying its id and origin; the owner answers
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
use std::sync::Arc;

use ahash::AHashMap;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};

use crate::config::Config;
use crate::expo::RenderedFamily;
use crate::grouping::GroupKey;
use crate::registry::{Registry, TypeConflict};
use crate::store::{PushMode, ShardSnapshot, Store};

/// Work for the owning shard.
pub enum Op {
    Push { key: GroupKey, families: Vec<RenderedFamily>, mode: PushMode, now: f64 },
    Failure { key: GroupKey, now: f64 },
    Delete { key: GroupKey },
    Snapshot,
    Wipe,
}

pub enum Reply {
    Pushed(Result<(), TypeConflict>),
    Done,
    Snapshot(ShardSnapshot),
    Wiped(usize),
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
    pub registry: Arc<Registry>,
    pub store: RefCell<Store>,
    pub bump: RefCell<bumpalo::Bump>,
    senders: Option<Senders<Msg>>,
    pending: RefCell<AHashMap<u64, LocalSender<Reply>>>,
    next_id: Cell<u64>,
}

impl Shard {
    pub fn new(id: usize, config: Arc<Config>, registry: Arc<Registry>, senders: Option<Senders<Msg>>) -> Shard {
        Shard {
            id,
            shards: config.shards,
            store: RefCell::new(Store::new(registry.clone())),
            config,
            registry,
            bump: RefCell::new(bumpalo::Bump::new()),
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
            Op::Push { key, families, mode, now } => Reply::Pushed(store.push(key, families, mode, now)),
            Op::Failure { key, now } => {
                store.record_failure(&key, now);
                Reply::Done
            }
            Op::Delete { key } => {
                store.delete(&key);
                Reply::Done
            }
            Op::Snapshot => Reply::Snapshot(store.snapshot()),
            Op::Wipe => Reply::Wiped(store.wipe()),
        }
    }

    /// Serves the mesh: one task per peer, answering requests and completing replies.
    pub fn spawn_receivers(self: &Rc<Self>, mut receivers: Receivers<Msg>) {
        for (_peer, stream) in receivers.streams() {
            let shard = self.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = stream.recv().await {
                    match msg {
                        Msg::Request { id, from, op } => {
                            let reply = shard.handle(op);
                            let s = shard.clone();
                            // Sent from its own task: a full queue back to `from` must not stop
                            // this loop from draining requests (that could deadlock two shards).
                            glommio::spawn_local(async move {
                                if let Some(senders) = s.senders.as_ref() {
                                    let _ = senders.send_to(from, Msg::Reply { id, reply }).await;
                                }
                            })
                            .detach();
                        }
                        Msg::Reply { id, reply } => {
                            if let Some(tx) = shard.pending.borrow_mut().remove(&id) {
                                let _ = tx.try_send(reply);
                            }
                        }
                    }
                }
            })
            .detach();
        }
    }
}
