//! The `avro` source (Flume's `AvroSource`): serves `AvroSourceProtocol` over Avro's Netty
//! framing (the `sluice-flume-rpc` server), so Flume avro sinks, Flume's RPC clients and
//! our own avro sink can send to it.
//!
//! Keys and defaults: **bind**, **port**, `threads` (accepted; connections are tasks, so
//! there is no pool to size), `compression-type` none | deflate (every client must match),
//! `ipFilter` false, and the SSL keys (`ssl` false, `keystore`, `keystore-password`,
//! `keystore-type` JKS | PKCS12, `include-`/`exclude-protocols`, `include-`/
//! `exclude-cipher-suites`; see `crate::ssl`): with `ssl = true` every connection is TLS, and
//! a client that fails the handshake (a plaintext one, say) is closed with one warning.
//!
//! `append` is one `processEvent`, `appendBatch` one `processEventBatch`; a channel error
//! answers `FAILED` (the sender keeps the events and retries), success `OK`. Counters:
//! `AppendReceivedCount`/`AppendAcceptedCount` and `AppendBatchReceivedCount`/
//! `AppendBatchAcceptedCount` here; the channel processor counts events and
//! `ChannelWriteFail`.
//!
//! With both `ssl` and deflate, zlib runs under TLS, as Flume layers them.
//!
//! Not supported (a configuration error naming the key): `ipFilter = true`.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_flume_rpc::{AvroSourceHandler, Compression, Server, ServerOptions, ServerTls, Status};

use super::{ChannelProcessor, Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::counters::Counters;
use crate::event::Event;

/// Build the source.
pub fn build(name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let bind = ctx.require("bind")?.to_string();
    let port: u16 = ctx.parse_required("port")?;
    let threads: i64 = ctx.parse("threads", 0)?;
    let _ = threads;
    let compression = parse_compression(ctx, "compression-type", None)?;
    let tls = crate::ssl::server(ctx, &format!("Source {name}"))?;
    if ctx.bool("ipFilter", false)? {
        return Err(ctx.error(
            "ipFilter",
            "ipFilter is not supported by sluice-flume's avro source",
        ));
    }
    Ok(Box::new(AvroSource {
        name: name.to_string(),
        bind,
        port,
        compression,
        tls,
    }))
}

/// `compression-type` (none | deflate) with, for senders, `compression-level` (default 6).
pub fn parse_compression(
    ctx: &Context,
    key: &str,
    level_key: Option<&str>,
) -> Result<Compression, ConfigError> {
    let kind = ctx.string(key, "none");
    if kind.eq_ignore_ascii_case("none") {
        Ok(Compression::None)
    } else if kind.eq_ignore_ascii_case("deflate") {
        let level: u32 = match level_key {
            Some(k) => ctx.parse(k, 6)?,
            None => 6,
        };
        if level > 9 {
            if let Some(k) = level_key {
                return Err(ctx.error(k, "must be between 0 and 9"));
            }
        }
        Ok(Compression::Deflate { level })
    } else {
        Err(ctx.error(key, &format!("{kind:?} is not none or deflate")))
    }
}

struct AvroSource {
    name: String,
    bind: String,
    port: u16,
    compression: Compression,
    tls: Option<ServerTls>,
}

struct Handler {
    name: String,
    processor: Arc<ChannelProcessor>,
    counters: Arc<Counters>,
}

#[async_trait]
impl AvroSourceHandler for Handler {
    async fn append(&self, event: Event) -> Status {
        self.counters.inc("AppendReceivedCount");
        match self.processor.process_event(event).await {
            Ok(()) => {
                self.counters.inc("AppendAcceptedCount");
                Status::Ok
            }
            Err(e) => {
                tracing::warn!("Avro source {}: Unable to process event: {e}", self.name);
                Status::Failed
            }
        }
    }

    async fn append_batch(&self, events: Vec<Event>) -> Status {
        self.counters.inc("AppendBatchReceivedCount");
        let n = events.len();
        match self.processor.process_event_batch(events).await {
            Ok(()) => {
                self.counters.inc("AppendBatchAcceptedCount");
                Status::Ok
            }
            Err(e) => {
                tracing::warn!(
                    "Avro source {}: Unable to process event batch of {n}: {e}",
                    self.name
                );
                Status::Failed
            }
        }
    }
}

#[async_trait]
impl Source for AvroSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let handler = Arc::new(Handler {
            name: self.name.clone(),
            processor: ctx.processor.clone(),
            counters: ctx.counters.clone(),
        });
        let opts = ServerOptions {
            compression: self.compression,
            tls: self.tls.clone(),
            ..ServerOptions::default()
        };
        let server = Server::avro_source((self.bind.as_str(), self.port), handler, opts)
            .await
            .map_err(|e| anyhow::anyhow!("avro source {}: {e}", self.name))?;
        tracing::info!(
            "Avro source {} started on {}{}",
            self.name,
            server.local_addr(),
            if self.tls.is_some() { " (ssl)" } else { "" }
        );
        ctx.shutdown.cancelled().await;
        tracing::info!("Avro source {} stopping", self.name);
        server.shutdown().await;
        tracing::info!("Avro source {} stopped", self.name);
        Ok(())
    }
}
