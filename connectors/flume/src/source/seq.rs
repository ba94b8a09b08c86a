//! The `seq` source (Flume's `SequenceGeneratorSource`): events whose bodies are the decimal
//! counter 0, 1, 2, ... Keys: `batchSize` 1, `totalEvents` (Long.MAX_VALUE).
//!
//! A pollable source: each round builds one batch and hands it to the channels (one event
//! with `process_event` when `batchSize` is 1, else `process_event_batch`). A failed batch is
//! retried with the same bodies after Flume's pollable back-off (1 s more per consecutive
//! failure, at most 5 s). After `totalEvents` the source stays idle until shutdown, as Flume's
//! returns BACKOFF forever.

use std::time::Duration;

use async_trait::async_trait;

use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// Flume's `PollableSourceConstants.DEFAULT_BACKOFF_SLEEP_INCREMENT`.
const BACKOFF_INCREMENT: Duration = Duration::from_millis(1000);
/// Flume's `PollableSourceConstants.DEFAULT_MAX_BACKOFF_SLEEP`.
const MAX_BACKOFF: Duration = Duration::from_millis(5000);

/// Build the source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let batch: usize = ctx.parse("batchSize", 1)?;
    if batch == 0 {
        return Err(ctx.error("batchSize", "must be greater than 0"));
    }
    let total: u64 = ctx.parse("totalEvents", i64::MAX as u64)?;
    Ok(Box::new(SeqSource { batch, total }))
}

struct SeqSource {
    batch: usize,
    total: u64,
}

/// The bodies of the batch starting at `next`: at most `batch`, never reaching `total`.
fn batch_bodies(next: u64, batch: usize, total: u64) -> Vec<Event> {
    let end = next.saturating_add(batch as u64).min(total);
    (next..end).map(|i| Event::new(i.to_string())).collect()
}

#[async_trait]
impl Source for SeqSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let mut next: u64 = 0;
        let mut failures: u32 = 0;
        while next < self.total && !ctx.shutdown.is_cancelled() {
            let events = batch_bodies(next, self.batch, self.total);
            let n = events.len() as u64;
            match ctx.processor.process_event_batch(events).await {
                Ok(()) => {
                    // Flume counts a batch only on its batch path (batchSize > 1).
                    if self.batch > 1 {
                        ctx.counters.inc("AppendBatchAcceptedCount");
                    }
                    next += n;
                    failures = 0;
                    // Let other tasks run between batches.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = (BACKOFF_INCREMENT * failures).min(MAX_BACKOFF);
                    tracing::debug!(
                        "source {}: {e}; retrying events from {next} in {pause:?}",
                        ctx.name
                    );
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        if next >= self.total {
            tracing::info!("source {}: generated all {} events", ctx.name, self.total);
        }
        ctx.shutdown.cancelled().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_stop_at_total() {
        let b = batch_bodies(8, 5, 10);
        let bodies: Vec<&[u8]> = b.iter().map(|e| &e.body[..]).collect();
        assert_eq!(bodies, vec![&b"8"[..], b"9"]);
        assert!(batch_bodies(10, 5, 10).is_empty());
    }
}
