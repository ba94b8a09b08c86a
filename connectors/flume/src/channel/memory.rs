//! The `memory` channel: a bounded in-memory queue (Flume's `MemoryChannel`).
//!
//! Keys and defaults: `capacity` 100, `transactionCapacity` 100 (must be ≤ capacity),
//! `keep-alive` 3 s (how long a commit waits for space), `byteCapacity` and
//! `byteCapacityBufferPercentage` 20. Only body bytes count against `byteCapacity`, in
//! 100-byte slots (at least one per event), as in Flume. Flume's default `byteCapacity` is
//! 80 % of the JVM heap; there is no heap here, so unset means no byte limit (`capacity`
//! still bounds the queue), and `0` means no byte limit as in Flume.
//!
//! One deliberate difference: `take` does not wait `keep-alive` when the queue is empty; it
//! returns at once and the sink waits on [`Channel::wait_for_events`], which wakes as soon
//! as a commit adds events. Same semantics, lower latency. Contents are lost on a crash.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Channel, ChannelError, Transaction};
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::event::Event;

/// Bytes per byte-capacity slot, as in Flume.
const SLOT_BYTES: usize = 100;

/// Parsed `memory` channel settings.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// `capacity`.
    pub capacity: usize,
    /// `transactionCapacity`.
    pub transaction_capacity: usize,
    /// `keep-alive`.
    pub keep_alive: Duration,
    /// Byte budget in slots (None = unlimited).
    pub byte_slots: Option<usize>,
}

impl MemoryConfig {
    /// Read the settings from `ctx`.
    pub fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let capacity: usize = ctx.parse("capacity", 100)?;
        let transaction_capacity: usize = ctx.parse("transactionCapacity", 100)?;
        if capacity == 0 {
            return Err(ctx.error("capacity", "must be greater than 0"));
        }
        if transaction_capacity == 0 {
            return Err(ctx.error("transactionCapacity", "must be greater than 0"));
        }
        if transaction_capacity > capacity {
            return Err(ctx.error(
                "transactionCapacity",
                &format!("{transaction_capacity} is larger than capacity {capacity}"),
            ));
        }
        let keep_alive = Duration::from_secs(ctx.parse("keep-alive", 3u64)?);
        let buffer_pct: u64 = ctx.parse("byteCapacityBufferPercentage", 20)?;
        if buffer_pct > 100 {
            return Err(ctx.error("byteCapacityBufferPercentage", "must be between 0 and 100"));
        }
        let byte_slots = match ctx.get("byteCapacity") {
            None => None,
            Some(_) => {
                let bytes: u64 = ctx.parse("byteCapacity", 0)?;
                if bytes == 0 {
                    None
                } else {
                    let usable = bytes.saturating_mul(100 - buffer_pct) / 100;
                    Some(
                        usize::try_from(usable / SLOT_BYTES as u64)
                            .unwrap_or(usize::MAX)
                            .max(1),
                    )
                }
            }
        };
        Ok(MemoryConfig {
            capacity,
            transaction_capacity,
            keep_alive,
            byte_slots,
        })
    }
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Slots held by queued events plus events taken but not yet committed.
    slots_used: usize,
    /// Events taken by open transactions (they still occupy capacity until commit, as in
    /// Flume, so a rollback can always put them back).
    in_flight: usize,
}

#[derive(Debug)]
struct Inner {
    name: String,
    config: MemoryConfig,
    queue: Mutex<Queue>,
    /// Signalled when a commit adds events or a rollback returns them.
    has_events: Notify,
    /// Signalled when a commit or rollback frees space.
    has_space: Notify,
    counters: Arc<Counters>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means another task panicked mid-operation; the queue itself
        // is always left consistent (every mutation is a single step), so keep going.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The memory channel.
#[derive(Debug, Clone)]
pub struct MemoryChannel {
    inner: Arc<Inner>,
}

impl MemoryChannel {
    /// A channel named `name` with `config`.
    pub fn new(name: &str, config: MemoryConfig) -> Self {
        let counters = Arc::new(Counters::new(Kind::Channel, name));
        counters.set(
            "ChannelCapacity",
            i64::try_from(config.capacity).unwrap_or(i64::MAX),
        );
        MemoryChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                queue: Mutex::new(Queue::default()),
                has_events: Notify::new(),
                has_space: Notify::new(),
                counters,
            }),
        }
    }

    /// Events currently queued (not counting those taken by open transactions).
    pub fn len(&self) -> usize {
        self.inner.lock().events.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn slots(e: &Event) -> usize {
    e.body.len().div_ceil(SLOT_BYTES).max(1)
}

#[async_trait]
impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(MemoryTransaction {
            inner: self.inner.clone(),
            puts: Vec::new(),
            takes: Vec::new(),
            done: false,
        })
    }

    async fn wait_for_events(&self, timeout: Duration) {
        let notified = self.inner.has_events.notified();
        if !self.inner.lock().events.is_empty() {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    fn transaction_capacity(&self) -> Option<usize> {
        Some(self.inner.config.transaction_capacity)
    }

    fn counters(&self) -> Arc<Counters> {
        self.inner.counters.clone()
    }
}

struct MemoryTransaction {
    inner: Arc<Inner>,
    puts: Vec<Event>,
    takes: Vec<Event>,
    done: bool,
}

impl MemoryTransaction {
    fn check_capacity(&self) -> Result<(), ChannelError> {
        if self.puts.len() + self.takes.len() >= self.inner.config.transaction_capacity {
            return Err(ChannelError::TransactionFull {
                channel: self.inner.name.clone(),
                capacity: self.inner.config.transaction_capacity,
            });
        }
        Ok(())
    }

    /// Try to move the puts into the queue and retire the takes. Returns false when there
    /// is not enough room yet.
    fn try_commit(&mut self) -> Result<bool, ChannelError> {
        let cfg = &self.inner.config;
        let put_slots: usize = self.puts.iter().map(slots).sum();
        let take_slots: usize = self.takes.iter().map(slots).sum();
        let mut q = self.inner.lock();
        let occupied = q.events.len() + q.in_flight;
        let after = occupied - self.takes.len().min(occupied) + self.puts.len();
        if after > cfg.capacity {
            return Ok(false);
        }
        if let Some(limit) = cfg.byte_slots {
            let used = q.slots_used.saturating_sub(take_slots) + put_slots;
            if used > limit {
                if put_slots > limit {
                    return Err(ChannelError::Full {
                        channel: self.inner.name.clone(),
                        detail: format!(
                            "a transaction of {put_slots} byte slots can never fit in byteCapacity ({limit} slots)"
                        ),
                    });
                }
                return Ok(false);
            }
        }
        q.in_flight = q.in_flight.saturating_sub(self.takes.len());
        q.slots_used = q.slots_used.saturating_sub(take_slots) + put_slots;
        let added = self.puts.len();
        q.events.extend(self.puts.drain(..));
        let size = q.events.len();
        drop(q);
        let counters = &self.inner.counters;
        counters.add(
            "EventPutSuccessCount",
            i64::try_from(added).unwrap_or(i64::MAX),
        );
        counters.add(
            "EventTakeSuccessCount",
            i64::try_from(self.takes.len()).unwrap_or(i64::MAX),
        );
        counters.set("ChannelSize", i64::try_from(size).unwrap_or(i64::MAX));
        let freed = !self.takes.is_empty();
        self.takes.clear();
        if added > 0 {
            self.inner.has_events.notify_waiters();
        }
        if freed {
            self.inner.has_space.notify_waiters();
        }
        Ok(true)
    }

    fn undo(&mut self) {
        self.puts.clear();
        if self.takes.is_empty() {
            return;
        }
        let mut q = self.inner.lock();
        q.in_flight = q.in_flight.saturating_sub(self.takes.len());
        for e in self.takes.drain(..).rev() {
            q.events.push_front(e);
        }
        let size = q.events.len();
        drop(q);
        self.inner
            .counters
            .set("ChannelSize", i64::try_from(size).unwrap_or(i64::MAX));
        self.inner.has_events.notify_waiters();
    }
}

#[async_trait]
impl Transaction for MemoryTransaction {
    async fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        self.inner.counters.inc("EventPutAttemptCount");
        self.check_capacity()?;
        self.puts.push(event);
        Ok(())
    }

    async fn take(&mut self) -> Result<Option<Event>, ChannelError> {
        self.inner.counters.inc("EventTakeAttemptCount");
        self.check_capacity()?;
        let mut q = self.inner.lock();
        let Some(e) = q.events.pop_front() else {
            return Ok(None);
        };
        q.in_flight += 1;
        drop(q);
        self.takes.push(e.clone());
        Ok(Some(e))
    }

    async fn commit(&mut self) -> Result<(), ChannelError> {
        let deadline = tokio::time::Instant::now() + self.inner.config.keep_alive;
        let inner = self.inner.clone();
        loop {
            let space = inner.has_space.notified();
            if self.try_commit()? {
                self.done = true;
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, space).await.is_err() {
                let size = self.inner.lock().events.len();
                return Err(ChannelError::Full {
                    channel: self.inner.name.clone(),
                    detail: format!(
                        "no room for {} events after waiting {:?} (capacity {}, {size} queued); sinks are not keeping up",
                        self.puts.len(),
                        self.inner.config.keep_alive,
                        self.inner.config.capacity
                    ),
                });
            }
        }
    }

    async fn rollback(&mut self) -> Result<(), ChannelError> {
        self.undo();
        self.done = true;
        Ok(())
    }
}

impl Drop for MemoryTransaction {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(capacity: usize, tx: usize) -> MemoryChannel {
        MemoryChannel::new(
            "c1",
            MemoryConfig {
                capacity,
                transaction_capacity: tx,
                keep_alive: Duration::from_millis(50),
                byte_slots: None,
            },
        )
    }

    #[tokio::test]
    async fn puts_are_visible_only_after_commit_and_rollback_restores_order() {
        let ch = channel(10, 10);
        let mut tx = ch.begin();
        tx.put(Event::new("a")).await.unwrap();
        tx.put(Event::new("b")).await.unwrap();
        assert!(ch.is_empty());
        tx.commit().await.unwrap();
        assert_eq!(ch.len(), 2);

        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        assert_eq!(tx.take().await.unwrap().unwrap().body, "b");
        assert!(tx.take().await.unwrap().is_none());
        tx.rollback().await.unwrap();
        assert_eq!(ch.len(), 2);

        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        drop(tx); // dropped without commit: rolled back
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        tx.commit().await.unwrap();
        assert_eq!(ch.len(), 1);
        assert_eq!(ch.counters().get("EventTakeSuccessCount"), 1);
    }

    #[tokio::test]
    async fn full_channel_and_transaction_capacity_are_errors() {
        let ch = channel(2, 2);
        let mut tx = ch.begin();
        tx.put(Event::new("a")).await.unwrap();
        tx.put(Event::new("b")).await.unwrap();
        assert!(matches!(
            tx.put(Event::new("c")).await,
            Err(ChannelError::TransactionFull { .. })
        ));
        tx.commit().await.unwrap();
        let mut tx = ch.begin();
        tx.put(Event::new("c")).await.unwrap();
        assert!(matches!(tx.commit().await, Err(ChannelError::Full { .. })));
        tx.rollback().await.unwrap();
        assert_eq!(ch.len(), 2);
    }

    #[tokio::test]
    async fn taken_events_keep_their_slot_until_commit() {
        let ch = channel(2, 2);
        crate::channel::put_all(&ch, vec![Event::new("a"), Event::new("b")])
            .await
            .unwrap();
        let mut take = ch.begin();
        take.take().await.unwrap().unwrap();
        // The taken event may come back on rollback, so there is still no room.
        assert!(crate::channel::put_one(&ch, Event::new("c")).await.is_err());
        take.commit().await.unwrap();
        crate::channel::put_one(&ch, Event::new("c")).await.unwrap();
        assert_eq!(ch.len(), 2);
    }

    #[test]
    fn config_checks_transaction_capacity_against_capacity() {
        let ctx = Context::from_pairs(
            "a1.channels.c1.",
            [("capacity", "10"), ("transactionCapacity", "20")],
        );
        let err = MemoryConfig::from_context(&ctx).unwrap_err();
        assert!(
            err.to_string()
                .contains("a1.channels.c1.transactionCapacity"),
            "{err}"
        );
        let ctx = Context::from_pairs("a1.channels.c1.", [("capacity", "x")]);
        assert!(MemoryConfig::from_context(&ctx).is_err());
    }
}
