//! Sources: take data in and hand it to channels through a [`ChannelProcessor`], which runs
//! the interceptors, asks the selector where each event goes, and writes each required
//! channel in its own transaction (Flume's `ChannelProcessor`: no atomicity across
//! channels; optional channels written after, their failures ignored).
//!
//! Each source type lives in its own module and exposes
//! `pub fn build(name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError>`.

pub mod avro;
pub mod exec;
pub mod http;
pub mod interceptor;
pub mod kafka;
pub mod netcat;
pub mod selector;
pub mod seq;
pub mod spooldir;
pub mod syslog;
pub mod taildir;

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::channel::{self, Channel, ChannelError};
use crate::counters::Counters;
use crate::event::Event;
use interceptor::Interceptor;
use selector::Selector;

/// What a running source gets from the agent.
#[derive(Clone)]
pub struct SourceContext {
    /// The source's name.
    pub name: String,
    /// Where its events go.
    pub processor: Arc<ChannelProcessor>,
    /// Its counters (`EventReceivedCount`, ...).
    pub counters: Arc<Counters>,
    /// Cancelled when the agent stops: stop taking new input, finish the batch in hand
    /// (commit or fail it), return.
    pub shutdown: CancellationToken,
}

/// A source.
#[async_trait]
pub trait Source: Send {
    /// The batch size it writes to channels with, for the `transactionCapacity` check
    /// (Flume's `BatchSizeSupported`); None when it has no such setting.
    fn batch_size(&self) -> Option<usize> {
        None
    }
    /// Run until `ctx.shutdown` is cancelled. An error stops this source only.
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()>;
}

/// Interceptors + selector + the source's channels.
pub struct ChannelProcessor {
    interceptors: Vec<Box<dyn Interceptor>>,
    selector: Selector,
    channels: Vec<Arc<dyn Channel>>,
    counters: Arc<Counters>,
}

impl ChannelProcessor {
    /// A processor writing to `channels` (in the source's list order; the selector's
    /// routes index into it).
    pub fn new(
        interceptors: Vec<Box<dyn Interceptor>>,
        selector: Selector,
        channels: Vec<Arc<dyn Channel>>,
        counters: Arc<Counters>,
    ) -> Self {
        ChannelProcessor {
            interceptors,
            selector,
            channels,
            counters,
        }
    }

    /// Flume's `processEvent`: one event, one transaction per channel.
    pub async fn process_event(&self, event: Event) -> Result<(), ChannelError> {
        self.process_event_batch(vec![event]).await
    }

    /// Flume's `processEventBatch`: interceptors over the batch, then per required channel
    /// one transaction with all its events; on failure that channel is rolled back and the
    /// error returned (channels already committed keep their events, as in Flume). Then
    /// optional channels; their failures are logged and ignored. Counts
    /// `EventReceivedCount`/`EventAcceptedCount` (received before interceptors, accepted
    /// after all required commits) and `ChannelWriteFail`.
    pub async fn process_event_batch(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let received = i64::try_from(events.len()).unwrap_or(i64::MAX);
        self.counters.add("EventReceivedCount", received);
        let mut events = events;
        for i in &self.interceptors {
            events = i.intercept(events);
            if events.is_empty() {
                return Ok(());
            }
        }
        let accepted = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let n = self.channels.len();
        let mut required: Vec<Vec<Event>> = vec![Vec::new(); n];
        let mut optional: Vec<Vec<Event>> = vec![Vec::new(); n];
        for e in events {
            let route = self.selector.route(&e);
            for &i in &route.optional {
                if let Some(v) = optional.get_mut(i) {
                    v.push(e.clone());
                }
            }
            if let Some((&last, rest)) = route.required.split_last() {
                for &i in rest {
                    if let Some(v) = required.get_mut(i) {
                        v.push(e.clone());
                    }
                }
                if let Some(v) = required.get_mut(last) {
                    v.push(e);
                }
            }
        }
        for (ch, batch) in self.channels.iter().zip(required) {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = channel::put_all(ch.as_ref(), batch).await {
                self.counters.inc("ChannelWriteFail");
                return Err(e);
            }
        }
        for (ch, batch) in self.channels.iter().zip(optional) {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = channel::put_all(ch.as_ref(), batch).await {
                tracing::warn!(
                    "optional channel {}: {e}; events dropped for that channel",
                    ch.name()
                );
            }
        }
        self.counters.add("EventAcceptedCount", accepted);
        Ok(())
    }

    /// The channels this processor writes to.
    pub fn channels(&self) -> &[Arc<dyn Channel>] {
        &self.channels
    }
}
