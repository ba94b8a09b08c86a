//! Sinks: take events from one channel in transactions and deliver them. A sink runner
//! calls its [`processor::SinkProcessor`] in a loop (Flume's `SinkRunner`): `Ready` → again
//! at once, `Backoff` → wait for new events in the channel (at most
//! `min(consecutive backoffs × 1 s, 5 s)`), an error → logged, wait 5 s.
//!
//! Each sink type lives in its own module and exposes
//! `pub fn build(name: &str, ctx: &Context, channel: Arc<dyn Channel>) -> Result<Box<dyn Sink>, ConfigError>`.
//! The sink gets its counters from [`Sink::counters`] (created in `build` with
//! `Counters::new(Kind::Sink, name)`).

pub mod avro;
pub mod file_roll;
pub mod hdfs;
pub mod kafka;
pub mod logger;
pub mod null;
pub mod processor;
pub mod spark;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::counters::Counters;
use crate::event::Event;

/// Result of one `process` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Delivered a batch (there may be more).
    Ready,
    /// Nothing to do (empty channel) or a retriable failure; wait before the next call.
    Backoff,
}

/// A sink.
#[async_trait]
pub trait Sink: Send {
    /// Its name.
    fn name(&self) -> &str;
    /// Its channel.
    fn channel(&self) -> &Arc<dyn Channel>;
    /// Its counters.
    fn counters(&self) -> Arc<Counters>;
    /// The batch size it takes with, for the `transactionCapacity` check.
    fn batch_size(&self) -> Option<usize> {
        None
    }
    /// Open connections, start servers. Called once before `process`.
    async fn start(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// One transaction: take up to a batch, deliver, commit; on failure roll back and
    /// return the error (events stay in the channel).
    async fn process(&mut self) -> anyhow::Result<Status>;
    /// Close files and connections. After `stop`, `process` is not called again.
    async fn stop(&mut self) {}
}

/// One whole transaction for the sinks that deliver in-process and cannot fail (logger,
/// null): take up to `max` events, hand each to `deliver`, commit, and count
/// `EventDrainSuccessCount`. `Backoff` when the channel had nothing.
pub async fn drain_in_process(
    channel: &Arc<dyn Channel>,
    max: usize,
    counters: &Counters,
    mut deliver: impl FnMut(&Event) + Send,
) -> anyhow::Result<Status> {
    let mut tx = channel.begin();
    let events = take_batch(&mut tx, max, counters).await?;
    events.iter().for_each(&mut deliver);
    tx.commit().await?;
    counters.add(
        "EventDrainSuccessCount",
        i64::try_from(events.len()).unwrap_or(i64::MAX),
    );
    Ok(if events.is_empty() {
        Status::Backoff
    } else {
        Status::Ready
    })
}

/// Take up to `max` events in `tx`. Counts `EventDrainAttemptCount` and the batch-size
/// counters (`BatchEmptyCount`, `BatchUnderflowCount`, `BatchCompleteCount`).
pub async fn take_batch(
    tx: &mut Box<dyn crate::channel::Transaction>,
    max: usize,
    counters: &Counters,
) -> Result<Vec<Event>, crate::channel::ChannelError> {
    let mut out = Vec::with_capacity(max.min(1024));
    while out.len() < max {
        match tx.take().await? {
            Some(e) => out.push(e),
            None => break,
        }
    }
    counters.add(
        "EventDrainAttemptCount",
        i64::try_from(out.len()).unwrap_or(i64::MAX),
    );
    if out.is_empty() {
        counters.inc("BatchEmptyCount");
    } else if out.len() < max {
        counters.inc("BatchUnderflowCount");
    } else {
        counters.inc("BatchCompleteCount");
    }
    Ok(out)
}

/// Longest back-off between `process` calls, as in Flume.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Wait after a `process` error, as in Flume.
pub const ERROR_WAIT: Duration = Duration::from_secs(5);
/// On shutdown, how long sinks keep draining their channel before stopping.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Run `processor` until `shutdown`; then keep going while it delivers (`Ready`) for at
/// most [`DRAIN_GRACE`], and stop its sinks.
pub async fn run(mut processor: processor::SinkProcessor, shutdown: CancellationToken) {
    if let Err(e) = processor.start().await {
        tracing::error!("sink group {}: failed to start: {e:#}", processor.label());
        return;
    }
    let mut backoffs: u32 = 0;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match processor.process().await {
            Ok(Status::Ready) => backoffs = 0,
            Ok(Status::Backoff) => {
                backoffs = backoffs.saturating_add(1);
                let wait = (Duration::from_secs(1) * backoffs).min(MAX_BACKOFF);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = processor.wait_for_events(wait) => {}
                }
            }
            Err(e) => {
                tracing::error!(
                    "sink {}: {e:#}; retrying in {ERROR_WAIT:?}",
                    processor.label()
                );
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(ERROR_WAIT) => {}
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, processor.process()).await {
            Ok(Ok(Status::Ready)) => continue,
            _ => break,
        }
    }
    processor.stop().await;
}
