//! Flume receivers, Spark's `spark-streaming-flume`:
//!
//! - [`FlumePushStream`] (`FlumeUtils.createStream`): an Avro RPC server speaking Flume's
//!   `AvroSourceProtocol`, so a Flume agent's avro sink can send to it. Events are kept in
//!   memory and answered `OK` at once, as Spark's receiver does after `store`; each batch
//!   takes what arrived since the last. A full buffer answers `FAILED`, and the sink sends
//!   the events again later. Events buffered when the process dies are lost (Spark without
//!   its write-ahead log behaves the same).
//! - [`FlumePullStream`] (`FlumeUtils.createPollingStream`): polls Spark's SparkSink in
//!   Flume agents (`SparkFlumeProtocol`). Each batch asks every sink `parallelism` times
//!   for up to `maxBatchSize` events; each answer is a sink transaction. The transactions
//!   are acked once the job has processed the batch, and nacked when it fails, so the sink
//!   delivers those events again: at-least-once.
//!
//! Both run the job on a fixed batch clock like [`DirectStream`](crate::DirectStream), stop
//! on a failed job, and on shutdown finish the batch in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_flume_rpc::{
    AvroSourceHandler, ClientOptions, Event, Server, ServerOptions, SparkSinkClient, Status,
};

use crate::clock::now_ms;
use crate::error::{BoxError, Error, Result};

/// Spark's `FlumeUtils` default `maxBatchSize` for the polling stream.
pub const DEFAULT_MAX_BATCH_SIZE: i32 = 1000;
/// Spark's `FlumeUtils` default `parallelism` for the polling stream.
pub const DEFAULT_PARALLELISM: usize = 5;
/// Events the push receiver buffers between batches before it answers `FAILED`.
pub const DEFAULT_PUSH_CAPACITY: usize = 100_000;

/// One batch of Flume events.
#[derive(Debug, Clone)]
pub struct FlumeBatch {
    time_ms: i64,
    events: Vec<Event>,
}

impl FlumeBatch {
    /// The batch time in ms since the epoch.
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// The events, in arrival order (per sender).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The batch clock shared by both receivers: waits for each tick (or shutdown), gets the
/// batch from `take`, runs `job`, and tells `settle` whether it succeeded. A shutdown
/// during a batch lets it finish.
async fn run_batches<S, T, TFut, F, Fut, C, CFut, P>(
    interval: Duration,
    shutdown: S,
    mut take: T,
    mut job: F,
    mut settle: C,
) -> Result<()>
where
    S: Future<Output = ()>,
    T: FnMut() -> TFut,
    TFut: Future<Output = (Vec<Event>, P)>,
    F: FnMut(FlumeBatch) -> Fut,
    Fut: Future<Output = std::result::Result<(), BoxError>>,
    C: FnMut(P, bool) -> CFut,
    CFut: Future<Output = ()>,
{
    let start = Instant::now();
    let start_ms = now_ms();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut stopping = false;
    let mut due = start + interval;
    while !stopping {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let time_ms = start_ms
            .saturating_add(i64::try_from(due.duration_since(start).as_millis()).unwrap_or(0));
        due += interval;
        let (events, pending) = take().await;
        let run = job(FlumeBatch { time_ms, events });
        let mut run = std::pin::pin!(run);
        let outcome = loop {
            tokio::select! {
                out = &mut run => break out,
                () = &mut shutdown, if !stopping => stopping = true,
            }
        };
        settle(pending, outcome.is_ok()).await;
        if let Err(source) = outcome {
            return Err(Error::Job {
                batch_time_ms: time_ms,
                source,
            });
        }
    }
    Ok(())
}

/// Options of the push receiver.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Events buffered between batches before the receiver answers `FAILED`.
    pub capacity: usize,
    /// The Avro RPC server's settings (compression must match the avro sink's).
    pub server: ServerOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_PUSH_CAPACITY,
            server: ServerOptions::default(),
        }
    }
}

struct PushBuffer {
    events: Mutex<Vec<Event>>,
    capacity: usize,
}

impl PushBuffer {
    fn push(&self, mut more: Vec<Event>) -> Status {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len().saturating_add(more.len()) > self.capacity {
            return Status::Failed;
        }
        events.append(&mut more);
        Status::Ok
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait::async_trait]
impl AvroSourceHandler for PushBuffer {
    async fn append(&self, event: Event) -> Status {
        self.push(vec![event])
    }

    async fn append_batch(&self, events: Vec<Event>) -> Status {
        self.push(events)
    }
}

/// Flume push mode: an avro-source-compatible server feeding batches.
pub struct FlumePushStream {
    server: Option<Server>,
    buffer: Arc<PushBuffer>,
    interval: Duration,
}

impl std::fmt::Debug for FlumePushStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlumePushStream")
            .field("server", &self.server)
            .field("capacity", &self.buffer.capacity)
            .finish_non_exhaustive()
    }
}

impl FlumePushStream {
    /// Binds `addr` (`host:port`; port 0 picks one) and starts accepting events.
    pub async fn bind(addr: &str, interval: Duration, options: PushOptions) -> Result<Self> {
        if interval.is_zero() {
            return Err(Error::Config(
                "batch interval must be above zero".to_owned(),
            ));
        }
        let buffer = Arc::new(PushBuffer {
            events: Mutex::new(Vec::new()),
            capacity: options.capacity,
        });
        let handler: Arc<dyn AvroSourceHandler> = buffer.clone();
        let server = Server::avro_source(addr, handler, options.server)
            .await
            .map_err(|e| Error::Flume {
                what: format!("listen on {addr}"),
                message: e.to_string(),
            })?;
        tracing::info!(addr = %server.local_addr(), "flume push receiver listening");
        Ok(Self {
            server: Some(server),
            buffer,
            interval,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::local_addr)
    }

    /// Runs `job` on each batch of received events until `shutdown`; then stops the server
    /// and runs one last batch with what it had received.
    pub async fn for_each_batch<S, F, Fut>(&mut self, shutdown: S, mut job: F) -> Result<()>
    where
        S: Future<Output = ()>,
        F: FnMut(FlumeBatch) -> Fut,
        Fut: Future<Output = std::result::Result<(), BoxError>>,
    {
        let buffer = Arc::clone(&self.buffer);
        let take = || {
            let buffer = Arc::clone(&buffer);
            async move { (buffer.take(), ()) }
        };
        let result = run_batches(self.interval, shutdown, take, &mut job, |(), _| async {}).await;
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        result?;
        let rest = self.buffer.take();
        if !rest.is_empty() {
            let time_ms = now_ms();
            job(FlumeBatch {
                time_ms,
                events: rest,
            })
            .await
            .map_err(|source| Error::Job {
                batch_time_ms: time_ms,
                source,
            })?;
        }
        Ok(())
    }
}

/// Options of the polling receiver.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Events asked for per request (`maxBatchSize`, Spark's default 1000).
    pub max_batch_size: i32,
    /// Requests per sink per batch (`parallelism`, Spark's default 5).
    pub parallelism: usize,
    /// Connection settings.
    pub client: ClientOptions,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            parallelism: DEFAULT_PARALLELISM,
            client: ClientOptions::default(),
        }
    }
}

/// One connection to one sink; reconnected after a failure.
struct Slot {
    addr: String,
    client: Option<SparkSinkClient>,
}

/// Open sink transactions of one batch: slot index and sequence number.
type Taken = Vec<(usize, String)>;

/// What one request got: the transaction's sequence number and its events.
type Polled = Option<(String, Vec<Event>)>;

/// Flume pull mode: polls SparkSinks and acks what the job processed.
pub struct FlumePullStream {
    slots: Vec<Slot>,
    options: PullOptions,
    interval: Duration,
}

impl std::fmt::Debug for FlumePullStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<&str> = self.slots.iter().map(|s| s.addr.as_str()).collect();
        f.debug_struct("FlumePullStream")
            .field("sinks", &addrs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FlumePullStream {
    /// A stream polling the SparkSinks at `addrs` (`host:port`). Connections open lazily.
    pub fn new(addrs: &[String], interval: Duration, options: PullOptions) -> Result<Self> {
        if addrs.is_empty() {
            return Err(Error::Config("no SparkSink addresses".to_owned()));
        }
        if options.max_batch_size <= 0 || options.parallelism == 0 || interval.is_zero() {
            return Err(Error::Config(format!(
                "maxBatchSize ({}), parallelism ({}) and the batch interval must be above zero",
                options.max_batch_size, options.parallelism
            )));
        }
        let slots = addrs
            .iter()
            .flat_map(|a| (0..options.parallelism).map(move |_| a.clone()))
            .map(|addr| Slot { addr, client: None })
            .collect();
        Ok(Self {
            slots,
            options,
            interval,
        })
    }

    /// Runs `job` on each batch until `shutdown`. The batch's sink transactions are acked
    /// after the job succeeds; a failed job nacks them and stops the stream with the error.
    pub async fn for_each_batch<S, F, Fut>(&mut self, shutdown: S, job: F) -> Result<()>
    where
        S: Future<Output = ()>,
        F: FnMut(FlumeBatch) -> Fut,
        Fut: Future<Output = std::result::Result<(), BoxError>>,
    {
        let slots = Arc::new(tokio::sync::Mutex::new(std::mem::take(&mut self.slots)));
        let options = self.options.clone();
        let take = || {
            let slots = Arc::clone(&slots);
            let options = options.clone();
            async move {
                let mut slots = slots.lock().await;
                poll_all(&mut slots, &options).await
            }
        };
        let settle = |taken: Taken, ok: bool| {
            let slots = Arc::clone(&slots);
            async move {
                let mut slots = slots.lock().await;
                settle_all(&mut slots, taken, ok).await;
            }
        };
        let result = run_batches(self.interval, shutdown, take, job, settle).await;
        self.slots = std::mem::take(&mut *slots.lock().await);
        result
    }
}

/// Asks every slot once, concurrently, for a batch of events.
async fn poll_all(slots: &mut Vec<Slot>, options: &PullOptions) -> (Vec<Event>, Taken) {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut slot) in std::mem::take(slots).into_iter().enumerate() {
        let options = options.clone();
        tasks.spawn(async move {
            let got = poll_one(&mut slot, &options).await;
            (i, slot, got)
        });
    }
    let mut results: Vec<(usize, Slot, Polled)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!("flume poll task failed: {e}"),
        }
    }
    results.sort_by_key(|(i, _, _)| *i);
    let mut events = Vec::new();
    let mut taken = Vec::new();
    for (_, slot, got) in results {
        // The slot's index from now on (a slot whose task died is gone).
        let index = slots.len();
        if let Some((seq, mut evs)) = got {
            taken.push((index, seq));
            events.append(&mut evs);
        }
        slots.push(slot);
    }
    (events, taken)
}

async fn poll_one(slot: &mut Slot, options: &PullOptions) -> Polled {
    if slot.client.is_none() {
        match SparkSinkClient::connect(&slot.addr, options.client.clone()).await {
            Ok(c) => slot.client = Some(c),
            Err(e) => {
                tracing::warn!(addr = slot.addr, "cannot connect to SparkSink: {e}");
                return None;
            }
        }
    }
    let client = slot.client.as_mut()?;
    match client.get_event_batch(options.max_batch_size).await {
        Ok(batch) if batch.error_msg.is_empty() && !batch.events.is_empty() => {
            Some((batch.sequence_number, batch.events))
        }
        Ok(batch) => {
            // SparkSink says "no events" with an error message and no open transaction.
            tracing::debug!(
                addr = slot.addr,
                msg = batch.error_msg,
                "no events from SparkSink"
            );
            None
        }
        Err(e) => {
            tracing::warn!(addr = slot.addr, "getEventBatch failed: {e}");
            slot.client = None;
            None
        }
    }
}

/// Acks (or nacks) every transaction of a batch on the connection that opened it.
async fn settle_all(slots: &mut [Slot], taken: Taken, ok: bool) {
    for (i, seq) in taken {
        let Some(slot) = slots.get_mut(i) else {
            continue;
        };
        let Some(client) = slot.client.as_mut() else {
            tracing::warn!(
                addr = slot.addr,
                seq,
                "connection lost before ack; the sink will time the batch out and resend it"
            );
            continue;
        };
        let result = if ok {
            client.ack(&seq).await
        } else {
            client.nack(&seq).await
        };
        if let Err(e) = result {
            tracing::warn!(addr = slot.addr, seq, ok, "ack/nack failed: {e}");
            slot.client = None;
        }
    }
}
