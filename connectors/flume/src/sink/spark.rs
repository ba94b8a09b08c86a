//! Spark's pull sink (`org.apache.spark.streaming.flume.sink.SparkSink`, CONNECTORS.md A9):
//! an Avro RPC server for `SparkFlumeProtocol` that Spark's polling receiver (or any
//! `SparkSinkClient`) pulls batches from.
//!
//! Keys and defaults: `hostname` 0.0.0.0, **port**, `threads` 10, `timeout` 60 s,
//! `backoffInterval` 200 ms.
//!
//! As in Spark's `SparkAvroCallbackHandler` / `TransactionProcessor`:
//! - each `getEventBatch(n)` opens a channel transaction in a task of its own (at most
//!   `threads` at once; more calls wait for a slot) and takes up to `n` events. While the
//!   channel has none it waits (up to `backoffInterval` at a time) and tries again, so the
//!   call returns once there is at least one event. The reply carries the events and a
//!   sequence number unique to the transaction: 8 random characters fixed for the life of
//!   the sink, then a counter;
//! - the transaction then waits up to `timeout` seconds: `ack(seq)` commits it; `nack(seq)`,
//!   the timeout, or the sink stopping rolls it back, so the events are sent again later. An
//!   ack or nack for an unknown (finished) sequence number is ignored;
//! - an error batch (non-empty `errorMsg`, no events) answers a stopped sink ("Spark sink has
//!   been stopped!"), `n` ≤ 0 and channel errors; it needs no ack;
//! - as in Spark, a batch larger than the channel's `transactionCapacity` cannot be taken:
//!   the take fails, the transaction rolls back and the reply is an error batch carrying the
//!   channel's message (Spark's receiver asks for 1000 by default, the memory channel allows
//!   100: raise `transactionCapacity` or lower the receiver's batch size);
//! - `process()` does nothing but wait (Spark's blocks the runner until stop; here it
//!   returns every second so the runner can see the agent stopping);
//! - stop: open transactions are rolled back, then the server shuts down.
//!
//! Counters: `EventDrainAttemptCount` (events sent), `EventDrainSuccessCount` (events acked),
//! `ConnectionFailedCount` (server failed to bind).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sluice_flume_rpc::{EventBatch, Server, ServerOptions, SparkSinkHandler};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};

/// How long one `process()` call waits before returning to the runner, which then checks
/// whether the agent is stopping (Spark's `process()` blocks until stop).
const PROCESS_WAIT: Duration = Duration::from_secs(1);

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let hostname = ctx.string("hostname", "0.0.0.0");
    let port: u16 = ctx
        .get("port")
        .ok_or_else(|| ctx.error("port", "The port to bind to must be specified"))
        .and_then(|_| ctx.parse_required("port"))?;
    let threads: usize = ctx.parse("threads", 10)?;
    if threads == 0 {
        return Err(ctx.error("threads", "must be greater than 0"));
    }
    let timeout: u64 = ctx.parse("timeout", 60)?;
    let backoff: u64 = ctx.parse("backoffInterval", 200)?;
    tracing::info!(
        "Configured Spark Sink with hostname: {hostname}, port: {port}, poolSize: {threads}, transactionTimeout: {timeout}, backoffInterval: {backoff}"
    );
    let counters = Arc::new(Counters::new(Kind::Sink, name));
    Ok(Box::new(SparkSink {
        name: name.to_string(),
        hostname,
        port,
        handler: Arc::new(Handler {
            name: name.to_string(),
            channel: channel.clone(),
            counters: counters.clone(),
            slots: Arc::new(Semaphore::new(threads)),
            timeout: Duration::from_secs(timeout),
            backoff: Duration::from_millis(backoff.max(1)),
            seq_base: random_alphanumeric(8),
            seq_counter: AtomicU64::new(0),
            acks: Mutex::new(HashMap::new()),
            stopped: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
        }),
        channel,
        counters,
        server: None,
    }))
}

/// `RandomStringUtils.randomAlphanumeric(n)`.
fn random_alphanumeric(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == n {
                break;
            }
            let i = usize::from(*b) % CHARS.len();
            out.push(char::from(CHARS.get(i).copied().unwrap_or(b'0')));
        }
    }
    out
}

struct SparkSink {
    name: String,
    hostname: String,
    port: u16,
    handler: Arc<Handler>,
    channel: Arc<dyn Channel>,
    counters: Arc<Counters>,
    server: Option<Server>,
}

struct Handler {
    name: String,
    channel: Arc<dyn Channel>,
    counters: Arc<Counters>,
    /// `threads`: transactions open at once.
    slots: Arc<Semaphore>,
    timeout: Duration,
    backoff: Duration,
    seq_base: String,
    seq_counter: AtomicU64,
    /// Open transactions waiting for their ack (true) or nack (false).
    acks: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    stopped: CancellationToken,
    /// The transaction tasks (finished ones are reaped as new ones start).
    tasks: Mutex<JoinSet<()>>,
}

fn error_batch(msg: &str) -> EventBatch {
    EventBatch {
        error_msg: msg.to_string(),
        sequence_number: String::new(),
        events: Vec::new(),
    }
}

impl Handler {
    fn acks(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<bool>>> {
        self.acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn complete(&self, seq: &str, success: bool) {
        let sender = self.acks().remove(seq);
        match sender {
            Some(tx) => {
                let _ = tx.send(success);
            }
            None => tracing::debug!(
                "Spark sink {}: no open transaction {seq:?} (finished or timed out)",
                self.name
            ),
        }
    }
}

/// One transaction: take events, hand them over, wait for the verdict, commit or roll back.
async fn transaction(h: Arc<Handler>, seq: String, n: usize, reply: oneshot::Sender<EventBatch>) {
    let Ok(_slot) = h.slots.clone().acquire_owned().await else {
        let _ = reply.send(error_batch("Spark sink has been stopped!"));
        return;
    };
    if h.stopped.is_cancelled() {
        let _ = reply.send(error_batch("Spark sink has been stopped!"));
        return;
    }
    let mut tx = h.channel.begin();
    let mut events = Vec::new();
    let mut failed: Option<String> = None;
    while events.len() < n {
        match tx.take().await {
            Ok(Some(e)) => events.push(e),
            Ok(None) if events.is_empty() => {
                tracing::debug!(
                    "Spark sink {}: no events in the channel; waiting up to {:?}",
                    h.name,
                    h.backoff
                );
                tokio::select! {
                    _ = h.stopped.cancelled() => break,
                    _ = h.channel.wait_for_events(h.backoff) => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    if failed.is_some() || events.is_empty() {
        let _ = tx.rollback().await;
        let msg = failed.unwrap_or_else(|| {
            if h.stopped.is_cancelled() {
                "Spark sink has been stopped!".to_string()
            } else {
                "Tried several times, but did not get any events from the channel!".to_string()
            }
        });
        tracing::warn!("Spark sink {}: error batch: {msg}", h.name);
        let _ = reply.send(error_batch(&msg));
        return;
    }
    let count = events.len();
    let (ack_tx, ack_rx) = oneshot::channel();
    h.acks().insert(seq.clone(), ack_tx);
    h.counters.add(
        "EventDrainAttemptCount",
        i64::try_from(count).unwrap_or(i64::MAX),
    );
    let batch = EventBatch {
        error_msg: String::new(),
        sequence_number: seq.clone(),
        events,
    };
    if reply.send(batch).is_err() {
        // The caller went away (connection closed); nobody can ack this batch.
        h.acks().remove(&seq);
        let _ = tx.rollback().await;
        return;
    }
    let verdict = tokio::select! {
        v = ack_rx => v.unwrap_or(false),
        _ = tokio::time::sleep(h.timeout) => {
            tracing::warn!("Spark sink {}: no ack for {seq} within {:?}", h.name, h.timeout);
            false
        }
        _ = h.stopped.cancelled() => false,
    };
    h.acks().remove(&seq);
    if verdict {
        match tx.commit().await {
            Ok(()) => {
                h.counters.add("EventDrainSuccessCount", i64::try_from(count).unwrap_or(i64::MAX));
                return;
            }
            Err(e) => tracing::warn!(
                "Spark sink {}: Error while attempting to commit transaction {seq}. Transaction will be rolled back: {e}",
                h.name
            ),
        }
    } else {
        tracing::warn!(
            "Spark sink {}: Spark could not commit transaction {seq}, NACK received (or timed out). Rolling back transaction.",
            h.name
        );
    }
    if let Err(e) = tx.rollback().await {
        tracing::error!(
            "Spark sink {}: Error rolling back transaction {seq}. Rollback may have failed: {e}",
            h.name
        );
    }
}

/// The handler as the RPC server holds it (its transactions need an `Arc` of it).
struct Rpc(Arc<Handler>);

#[async_trait]
impl SparkSinkHandler for Rpc {
    async fn get_event_batch(&self, n: i32) -> EventBatch {
        let h = &self.0;
        if h.stopped.is_cancelled() {
            return error_batch("Spark sink has been stopped!");
        }
        let seq = format!(
            "{}{}",
            h.seq_base,
            h.seq_counter.fetch_add(1, Ordering::Relaxed) + 1
        );
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return error_batch(
                "Tried several times, but did not get any events from the channel!",
            );
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut tasks = h
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while tasks.try_join_next().is_some() {}
            tasks.spawn(transaction(h.clone(), seq, n, reply_tx));
        }
        reply_rx
            .await
            .unwrap_or_else(|_| error_batch("Unknown Error"))
    }

    async fn ack(&self, sequence_number: String) {
        tracing::debug!(
            "Spark sink {}: Received Ack for batch with sequence number: {sequence_number}",
            self.0.name
        );
        self.0.complete(&sequence_number, true);
    }

    async fn nack(&self, sequence_number: String) {
        self.0.complete(&sequence_number, false);
        tracing::info!(
            "Spark sink {}: Spark failed to commit transaction. Will reattempt events.",
            self.0.name
        );
    }
}

#[async_trait]
impl Sink for SparkSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        tracing::info!(
            "Starting Spark Sink: {} on port: {} and interface: {} with pool size: {} and transaction timeout: {}.",
            self.name,
            self.port,
            self.hostname,
            self.handler.slots.available_permits(),
            self.handler.timeout.as_secs()
        );
        let handler: Arc<dyn SparkSinkHandler> = Arc::new(Rpc(self.handler.clone()));
        let server = Server::spark_sink(
            (self.hostname.as_str(), self.port),
            handler,
            ServerOptions::default(),
        )
        .await
        .map_err(|e| {
            self.counters.inc("ConnectionFailedCount");
            anyhow::anyhow!("Spark sink {}: {e}", self.name)
        })?;
        tracing::info!(
            "Spark sink {}: Avro server listening on {}",
            self.name,
            server.local_addr()
        );
        self.server = Some(server);
        self.counters.started();
        Ok(())
    }

    async fn process(&mut self) -> anyhow::Result<Status> {
        tokio::select! {
            _ = self.handler.stopped.cancelled() => {}
            _ = tokio::time::sleep(PROCESS_WAIT) => {}
        }
        Ok(Status::Backoff)
    }

    async fn stop(&mut self) {
        tracing::info!("Stopping Spark Sink: {}", self.name);
        self.handler.stopped.cancel();
        let mut tasks = std::mem::take(
            &mut *self
                .handler
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        while tasks.join_next().await.is_some() {}
        if let Some(server) = self.server.take() {
            tracing::info!("Stopping Avro Server for sink: {}", self.name);
            server.shutdown().await;
        }
        self.counters.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_base_is_alphanumeric() {
        let s = random_alphanumeric(8);
        assert_eq!(s.len(), 8);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
    }
}
