//! Flume's Avro RPC, both ends, over Avro's Netty transport.
//!
//! - `AvroSourceProtocol` (`append`, `appendBatch`): [`Server::avro_source`] is a Flume avro
//!   source's network side, [`AvroSourceClient`] an avro sink's.
//! - `SparkFlumeProtocol` (`getEventBatch`, `ack`, `nack`): [`Server::spark_sink`] is Spark's
//!   SparkSink's network side, [`SparkSinkClient`] Spark's polling receiver's.
//! - [`encode_event`]/[`decode_event`]: a bare `AvroFlumeEvent` datum, as Flume's Kafka
//!   channel, sink and source store events in Kafka.
//!
//! Module map:
//! - `codec`: Avro binary encoding of the primitive types used here (hand-written; see the
//!   crate README for why not `apache-avro`).
//! - `event`: [`Event`], [`Status`], [`EventBatch`] and their datums.
//! - `protocol`: the protocols' JSON texts and MD5s; parsing a peer's protocol text.
//! - `handshake`: Avro's handshake records.
//! - `frame`: Netty data-pack framing with size limits.
//! - `conn`: one TCP connection, optionally zlib-wrapped (`compression-type = deflate`),
//!   optionally under TLS.
//! - `keystore`: JKS and PKCS12 keystores and truststores.
//! - `tls`: [`ServerTls`] and [`ClientTls`], Flume's `ssl` settings as rustls configs.
//! - `zlib_io`: a zlib stream under TLS, for `ssl` together with deflate (Flume's order).
//! - `server`: [`Server`], the handler traits, per-connection handshake and dispatch.
//! - `client`: [`RpcClient`] (handshake, calls) and the typed clients.

mod client;
mod codec;
mod conn;
mod event;
mod frame;
mod handshake;
pub mod keystore;
mod protocol;
mod server;
mod tls;
mod zlib_io;

pub use client::{AvroSourceClient, ClientOptions, RpcClient, RpcError, SparkSinkClient};
pub use codec::{DecodeError, Problem};
pub use conn::Compression;
pub use event::{decode_event, encode_event, Event, EventBatch, Headers, Status};
pub use frame::{encode_frame, Frame, FrameDecoder, FrameError};
pub use handshake::HandshakeMatch;
pub use protocol::{Protocol, ProtocolError, AVRO_SOURCE_PROTOCOL_JSON, SPARK_FLUME_PROTOCOL_JSON};
pub use server::{
    AvroSourceHandler, Server, ServerOptions, SparkSinkHandler, DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use tls::{ClientTls, ServerTls, StoreFile, TlsError, TlsFilters, Trust};
