//! The channels between shards: one bounded glommio shared channel for every ordered pair of
//! shards, all made up front on the starting thread and handed out as one bundle per shard.
//!
//! glommio has a `channel_mesh::MeshBuilder` for this, but it keeps its peer list in an `Rc`
//! that every executor thread clones and drops while joining: the non-atomic reference count
//! races, and about one start or stop in a hundred (one in ten under AddressSanitizer, with
//! two shards on two busy CPUs) corrupted the heap ("unaligned tcache chunk detected", a
//! heap-use-after-free in `MeshBuilder::join`). Here no reference count is shared between
//! threads: each channel end has exactly one owner, moved once to the thread that uses it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use glommio::{GlommioError, ResourceType};

/// One shard's ends of the mesh, before its executor connects them.
pub struct Ends<T: Send + 'static> {
    pub id: usize,
    /// `senders[j]`: to shard `j` (`None` for `j == id`).
    senders: Vec<Option<SharedSender<T>>>,
    /// `receivers[j]`: from shard `j` (`None` for `j == id`).
    receivers: Vec<Option<SharedReceiver<T>>>,
}

/// Every shard's ends of a full mesh of `shards` shards, in shard order; each channel holds
/// up to `capacity` messages.
pub fn full<T: Send + 'static>(shards: usize, capacity: usize) -> Vec<Ends<T>> {
    let mut ends: Vec<Ends<T>> = (0..shards)
        .map(|id| Ends {
            id,
            senders: (0..shards).map(|_| None).collect(),
            receivers: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (tx, rx) = shared_channel::new_bounded(capacity);
                ends[from].senders[to] = Some(tx);
                ends[to].receivers[from] = Some(rx);
            }
        }
    }
    ends
}

impl<T: Send + 'static> Ends<T> {
    /// Connects every end on the calling executor. Returns once each peer has connected its
    /// side too, so every shard must call this.
    pub async fn connect(self) -> (Senders<T>, Vec<(usize, ConnectedReceiver<T>)>) {
        // A connecting end waits for its peer's executor to connect the other end, and glommio
        // wakes it only when this executor's reactor next runs; nothing tells an executor
        // asleep in io_uring that a peer has connected, so with every shard asleep the start
        // could hang for good (seen with 8 shards on 2 busy CPUs). A short timer keeps this
        // reactor turning until every end is connected.
        let connected_all = Rc::new(Cell::new(false));
        let ticker = glommio::spawn_local({
            let done = connected_all.clone();
            async move {
                while !done.get() {
                    glommio::timer::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        // Both directions at once: a sender's connect waits for its receiver's, and the
        // peer may be connecting its ends in a different order.
        let senders: Vec<_> =
            self.senders.into_iter().map(|s| s.map(|s| glommio::spawn_local(s.connect()).detach())).collect();
        let receivers: Vec<_> = self
            .receivers
            .into_iter()
            .enumerate()
            .filter_map(|(j, r)| r.map(|r| (j, glommio::spawn_local(r.connect()).detach())))
            .collect();
        let mut connected = Vec::with_capacity(senders.len());
        for s in senders {
            connected.push(match s {
                Some(task) => task.await,
                None => None,
            });
        }
        let mut inbound = Vec::with_capacity(receivers.len());
        for (j, task) in receivers {
            if let Some(r) = task.await {
                inbound.push((j, r));
            }
        }
        connected_all.set(true);
        ticker.await;
        (Senders { id: self.id, senders: connected }, inbound)
    }
}

/// The connected sending ends of one shard.
pub struct Senders<T: Send + 'static> {
    id: usize,
    senders: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send + 'static> Senders<T> {
    /// This shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Queues `msg` for shard `to` if its channel has room. A full channel gives the message
    /// back in `GlommioError::WouldBlock(ResourceType::Channel(msg))`; there is no channel to
    /// this shard itself, and asking for one is answered like a closed channel.
    pub fn try_send_to(&self, to: usize, msg: T) -> Result<(), GlommioError<T>> {
        match self.senders.get(to) {
            Some(Some(s)) => s.try_send(msg),
            _ => Err(GlommioError::Closed(ResourceType::Channel(msg))),
        }
    }

    /// Sends `msg` to shard `to`, waiting for room.
    pub async fn send_to(&self, to: usize, msg: T) -> Result<(), GlommioError<T>> {
        match self.senders.get(to) {
            Some(Some(s)) => s.send(msg).await,
            _ => Err(GlommioError::Closed(ResourceType::Channel(msg))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
    use std::sync::{Arc, Mutex};

    #[test]
    fn every_shard_reaches_every_other_and_not_itself() {
        let n = 3;
        let ends = Arc::new(Mutex::new(full::<(usize, usize)>(n, 4)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(n))
            .on_all_shards({
                let (ends, seen) = (ends.clone(), seen.clone());
                move || async move {
                    let mine = ends.lock().unwrap().pop().unwrap();
                    let id = mine.id;
                    let (senders, receivers) = mine.connect().await;
                    assert_eq!(senders.id(), id);
                    assert!(matches!(senders.try_send_to(id, (id, id)), Err(GlommioError::Closed(_))));
                    assert!(matches!(senders.try_send_to(n, (id, n)), Err(GlommioError::Closed(_))));
                    for to in (0..n).filter(|&to| to != id) {
                        senders.send_to(to, (id, to)).await.unwrap();
                    }
                    assert_eq!(receivers.len(), n - 1);
                    for (from, rx) in receivers {
                        let (sender, addressee) = rx.recv().await.unwrap();
                        seen.lock().unwrap().push((from, sender, addressee, id));
                    }
                }
            })
            .unwrap();
        handles.join_all();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let want: Vec<_> =
            (0..n).flat_map(|from| (0..n).filter(move |&to| to != from).map(move |to| (from, from, to, to))).collect();
        assert_eq!(seen, want);
    }
}
