//! Sluice: a single-node broker that speaks Kafka's wire protocol.
//!
//! - [`config`]: the TOML config file and its validation.
//! - [`server`]: listeners, connections, framing and shutdown.
//! - [`api`]: the table of supported APIs and one handler per API key.
//! - [`log`]: storage (segments, indexes, recovery, checkpoints).
//! - [`group`]: the group coordinator and committed offsets.
//! - [`txn`]: the transaction coordinator and `__transaction_state`.
//! - [`share`]: the share-group coordinator (KIP-932) and `__share_group_state`.
//! - [`guard`]: request layouts, and the walk that checks every frame before it is decoded.
//! - [`security`]: listeners' security protocols, principals and sessions (TLS, SASL, ACLs).
//! - [`http`]: the HTTP listener: `/metrics` and the web console.
//! - [`metrics`]: counters, histograms and the Prometheus text renderer.
//! - [`health`]: the `sluice health` check.
//! - [`failpoint`]: crash points for recovery tests (`SLUICE_FAILPOINT`).
//! - [`limits`]: process resource limits (open files).

pub mod api;
pub mod config;
pub mod failpoint;
pub mod group;
pub mod guard;
pub mod health;
pub mod http;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod security;
pub mod server;
pub mod share;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod txn;
