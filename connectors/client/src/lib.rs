//! `sluice-client`: a small async Kafka client for the Sluice connectors. It speaks to any
//! Kafka-compatible broker (Sluice, Apache Kafka 3.0 or newer); every message is encoded and
//! decoded by the `kafka-protocol` crate, and nothing here depends on the broker crate.
//!
//! Module map:
//! - `config`: [`ClientConfig`].
//! - `error`: [`Error`], with Kafka error codes and retriable/fatal classification.
//! - `frame`: length-prefixed framing, request/response headers, correlation ids.
//! - `versions`: the table of API versions implemented here, and negotiation.
//! - `security`: [`Security`]: `security.protocol`, SASL (PLAIN, SCRAM-SHA-256/512) and TLS
//!   (rustls) settings from Kafka's client keys, and the SASL tokens.
//! - `connection`: one negotiated connection ([`Connection`]), TLS or not, authenticated.
//! - `pool`: pooled connections per broker; a failed connection is replaced.
//! - `metadata`: brokers, topics, partition leaders.
//! - `client`: [`Client`]: routing, metadata refresh, retries, topic admin.
//! - `produce`: [`Client::produce`], [`Client::produce_batches`].
//! - [`partitioner`]: Kafka's default partition for a keyed record (murmur2).
//! - `fetch`: [`Client::fetch`], [`Client::fetch_many`], [`Client::list_offsets`].
//! - `offsets`: [`Client::find_coordinator`], [`Client::commit_offsets`],
//!   [`Client::fetch_committed`].
//! - `group`: [`GroupMember`]: classic-protocol membership with the range assignor.
//! - `txn`: [`TransactionalProducer`]: transactions (KIP-98, transaction version 1).

mod client;
mod config;
mod connection;
mod error;
mod fetch;
mod frame;
pub mod group;
mod metadata;
mod offsets;
pub mod partitioner;
mod pool;
mod produce;
pub mod security;
mod txn;
mod versions;

pub use client::Client;
pub use config::{ClientConfig, IsolationLevel};
pub use connection::Connection;
pub use error::{At, Error, Result};
pub use fetch::{FetchPosition, FetchResult, FetchedRecord, OffsetSpec};
pub use group::assignor::Assignment;
pub use group::{GroupConfig, GroupMember, Rebalance};
pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::records::TimestampType;
pub use metadata::{BrokerInfo, PartitionInfo, TopicInfo};
pub use offsets::{CommitOffset, CommittedOffset, Coordinator, Generation};
pub use produce::{
    encode_batch, Acks, Compression, Header, ProduceBatch, ProduceOptions, ProduceRecord,
};
pub use security::{
    ConfigError, JaasConfig, SaslConfig, SaslMechanism, Security, SecurityProtocol, TlsConfig,
    SECURITY_KEYS,
};
pub use txn::{
    TransactionConfig, TransactionalProducer, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MAX_BLOCK,
    DEFAULT_TRANSACTION_TIMEOUT,
};
pub use versions::{Versions, IMPLEMENTED};
