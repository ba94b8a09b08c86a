//! The `avro` sink (Flume's `AvroSink` / `AbstractRpcSink`): sends events to an avro source
//! (Flume's or ours) with `appendBatch`, over the `sluice-flume-rpc` client.
//!
//! Keys and defaults: **hostname**, **port**, `batch-size` 100, `connect-timeout` 20000 ms,
//! `request-timeout` 20000 ms, `compression-type` none | deflate, `compression-level` 6,
//! `reset-connection-interval` 0 s (off), and the SSL keys (`ssl` false, `trust-all-certs`
//! false, `truststore`, `truststore-password`, `truststore-type` JKS | PKCS12,
//! `include-`/`exclude-protocols`, `include-`/`exclude-cipher-suites`; see `crate::ssl`).
//! Without `truststore` or `trust-all-certs` the system's CA certificates are trusted. As in
//! Flume, the server's certificate chain is checked but not its host name.
//!
//! As in Flume:
//! - the connection is opened at start (a failure is logged, not fatal) and again by the
//!   first `process()` that finds none; a failed connect fails that `process()` (counted in
//!   `ConnectionFailedCount`), so the runner waits 5 s before the next try;
//! - each `process()` takes up to `batch-size` events in one transaction and sends them in
//!   one `appendBatch`; anything but `OK` (FAILED, UNKNOWN, an I/O error, a timeout) rolls the
//!   transaction back and drops the connection, so the next call reconnects;
//! - with `reset-connection-interval` > 0 the connection is closed and reopened that often
//!   (for load balancers in front of several sources).
//!
//! With both `ssl` and deflate, zlib runs under TLS, as Flume layers them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sluice_flume_rpc::{AvroSourceClient, ClientOptions, Status as RpcStatus};
use tokio::time::Instant;

use super::{take_batch, Sink, Status};
use crate::channel::Channel;
use crate::conf::{ConfigError, Context};
use crate::counters::{Counters, Kind};
use crate::source::avro::parse_compression;

/// Build the sink.
pub fn build(
    name: &str,
    ctx: &Context,
    channel: Arc<dyn Channel>,
) -> Result<Box<dyn Sink>, ConfigError> {
    let host = ctx.require("hostname")?.to_string();
    let port: u16 = ctx.parse_required("port")?;
    let batch: usize = ctx.parse("batch-size", 100)?;
    if batch == 0 {
        return Err(ctx.error("batch-size", "must be greater than 0"));
    }
    let connect_timeout: u64 = ctx.parse("connect-timeout", 20_000)?;
    let request_timeout: u64 = ctx.parse("request-timeout", 20_000)?;
    let compression = parse_compression(ctx, "compression-type", Some("compression-level"))?;
    let reset: u64 = ctx.parse("reset-connection-interval", 0)?;
    let tls = crate::ssl::client(ctx, &format!("Sink {name}"))?;
    // Flume's RpcClient refuses timeouts under 1 s and uses 1 s instead.
    let clamp = |ms: u64| Duration::from_millis(ms.max(1000));
    Ok(Box::new(AvroSink {
        name: name.to_string(),
        channel,
        counters: Arc::new(Counters::new(Kind::Sink, name)),
        addr: format_addr(&host, port),
        batch,
        opts: ClientOptions {
            connect_timeout: clamp(connect_timeout),
            request_timeout: clamp(request_timeout),
            compression,
            tls,
        },
        reset_interval: (reset > 0).then(|| Duration::from_secs(reset)),
        client: None,
        connected_at: None,
    }))
}

fn format_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

struct AvroSink {
    name: String,
    channel: Arc<dyn Channel>,
    counters: Arc<Counters>,
    addr: String,
    batch: usize,
    opts: ClientOptions,
    reset_interval: Option<Duration>,
    client: Option<AvroSourceClient>,
    connected_at: Option<Instant>,
}

impl AvroSink {
    async fn connect(&mut self) -> anyhow::Result<()> {
        match AvroSourceClient::connect(&self.addr, self.opts.clone()).await {
            Ok(c) => {
                self.client = Some(c);
                self.connected_at = Some(Instant::now());
                self.counters.inc("ConnectionCreatedCount");
                tracing::info!(
                    "sink {}: Rpc sink {}: connected to {}",
                    self.name,
                    self.name,
                    self.addr
                );
                Ok(())
            }
            Err(e) => {
                self.counters.inc("ConnectionFailedCount");
                Err(anyhow::anyhow!(
                    "Rpc sink {}: unable to create Rpc client to {}: {e}",
                    self.name,
                    self.addr
                ))
            }
        }
    }

    fn disconnect(&mut self) {
        if self.client.take().is_some() {
            self.counters.inc("ConnectionClosedCount");
            tracing::info!(
                "sink {}: Rpc sink {}: closing connection to {}",
                self.name,
                self.name,
                self.addr
            );
        }
        self.connected_at = None;
    }
}

#[async_trait]
impl Sink for AvroSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }
    fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    fn batch_size(&self) -> Option<usize> {
        Some(self.batch)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        self.counters.started();
        if let Err(e) = self.connect().await {
            tracing::warn!("sink {}: {e:#}; will retry on the next delivery", self.name);
        }
        Ok(())
    }

    async fn process(&mut self) -> anyhow::Result<Status> {
        if let (Some(at), Some(every)) = (self.connected_at, self.reset_interval) {
            if at.elapsed() >= every {
                tracing::debug!("sink {}: resetting connection after {every:?}", self.name);
                self.disconnect();
            }
        }
        if self.client.is_none() {
            self.connect().await?;
        }
        let mut tx = self.channel.begin();
        let events = match take_batch(&mut tx, self.batch, &self.counters).await {
            Ok(ev) => ev,
            Err(e) => {
                self.counters.inc("ChannelReadFail");
                let _ = tx.rollback().await;
                return Err(e.into());
            }
        };
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Status::Backoff);
        }
        let sent = match self.client.as_mut() {
            Some(c) => c.append_batch(&events).await.map_err(anyhow::Error::from),
            None => Err(anyhow::anyhow!("no connection")),
        };
        let failure = match sent {
            Ok(RpcStatus::Ok) => None,
            Ok(other) => Some(anyhow::anyhow!("{} answered {other:?}", self.addr)),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            let _ = tx.rollback().await;
            self.counters.inc("EventWriteFail");
            self.disconnect();
            return Err(e.context(format!(
                "Failed to send events: Rpc sink {} could not deliver a batch of {} to {}; rolled back",
                self.name,
                events.len(),
                self.addr
            )));
        }
        if let Err(e) = tx.commit().await {
            self.counters.inc("ChannelReadFail");
            let _ = tx.rollback().await;
            return Err(e.into());
        }
        self.counters.add(
            "EventDrainSuccessCount",
            i64::try_from(events.len()).unwrap_or(i64::MAX),
        );
        Ok(Status::Ready)
    }

    async fn stop(&mut self) {
        self.disconnect();
        self.counters.stopped();
    }
}
