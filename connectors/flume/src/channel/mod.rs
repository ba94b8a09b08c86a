//! Channels: the buffer between sources and sinks, with Flume's transaction model.
//!
//! A [`Transaction`] is begun on a channel, receives `put`s (source side) or `take`s (sink
//! side), and ends with `commit` or `rollback`. Dropping a transaction that was neither
//! committed nor rolled back rolls it back. Puts become visible to takers only at commit;
//! events taken and then rolled back go back to the head of the channel.
//!
//! Implementations: `memory` (in-memory queue), `file` (write-ahead log + checkpoint,
//! survives `kill -9`), `kafka` (a Kafka topic).

pub mod file;
pub mod kafka;
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::counters::Counters;
use crate::event::Event;

/// Why a channel operation failed. Sources report it to their clients (`FAILED`), sinks
/// roll back and back off.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The channel (or its byte budget) is full; committed puts did not fit.
    #[error("channel {channel} is full: {detail}")]
    Full {
        /// Channel name.
        channel: String,
        /// Which limit was hit.
        detail: String,
    },
    /// More puts or takes in one transaction than `transactionCapacity`.
    #[error("channel {channel}: transaction capacity {capacity} exceeded; increase transactionCapacity or decrease the batch size")]
    TransactionFull {
        /// Channel name.
        channel: String,
        /// The limit.
        capacity: usize,
    },
    /// An I/O or remote failure (file channel disk, Kafka channel broker).
    #[error("channel {channel}: {detail}")]
    Failed {
        /// Channel name.
        channel: String,
        /// What failed.
        detail: String,
    },
    /// The channel is stopping.
    #[error("channel {0} is closed")]
    Closed(String),
}

/// A channel transaction. Use one per batch; never share between tasks.
#[async_trait]
pub trait Transaction: Send {
    /// Stage `event` for commit.
    async fn put(&mut self, event: Event) -> Result<(), ChannelError>;
    /// Take the next event, or `None` when the channel has none right now.
    async fn take(&mut self) -> Result<Option<Event>, ChannelError>;
    /// Make the puts visible and the takes permanent.
    async fn commit(&mut self) -> Result<(), ChannelError>;
    /// Undo: puts are discarded, taken events go back to the head of the channel.
    async fn rollback(&mut self) -> Result<(), ChannelError>;
}

/// A channel.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Its name in the config.
    fn name(&self) -> &str;
    /// Begin a transaction.
    fn begin(&self) -> Box<dyn Transaction>;
    /// Wait until the channel has (or may have) events to take, or `timeout` passes. Sinks
    /// call it when a take found nothing, instead of sleeping blindly.
    async fn wait_for_events(&self, timeout: Duration);
    /// `transactionCapacity`, for channels that have one (Flume's
    /// `TransactionCapacitySupported`); source and sink batch sizes are checked against it.
    fn transaction_capacity(&self) -> Option<usize>;
    /// Start background work (recovery, consumers). Called once before any transaction.
    async fn start(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Stop: flush what must be flushed (checkpoint), release resources.
    async fn stop(&self) {}
    /// Flume's channel counters (`ChannelSize`, `EventPutAttemptCount`, ...).
    fn counters(&self) -> Arc<Counters>;
}

/// Put one event in its own transaction (Flume's single-event `processEvent` path).
pub async fn put_one(channel: &dyn Channel, event: Event) -> Result<(), ChannelError> {
    put_all(channel, vec![event]).await
}

/// Put `events` in one transaction, rolling back on any failure.
pub async fn put_all(channel: &dyn Channel, events: Vec<Event>) -> Result<(), ChannelError> {
    let mut tx = channel.begin();
    for e in events {
        if let Err(err) = tx.put(e).await {
            let _ = tx.rollback().await;
            return Err(err);
        }
    }
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}
