//! `sluice-flume`: an ingest agent that runs Apache Flume 1.11 configs.
//!
//! Module map:
//! - `conf`: Java `Properties` loading and Flume's wiring/validation rules → [`conf::AgentConfig`].
//! - `registry`: component type names (aliases, class names) → the modules that build them.
//! - `agent`: materialises an `AgentConfig` and runs it (start and shutdown order).
//! - `event`: [`Event`] (headers + body, shared with the Avro RPC crate).
//! - `channel`: the transaction model and the memory, file and Kafka channels.
//! - `source`: the channel processor (interceptors, selectors) and every source type.
//! - `sink`: sink runner, sink processors, and every sink type.
//! - `counters`, `monitoring`: Flume's component counters and their JSON over HTTP.
//! - `prometheus`: the same counters in Prometheus's text format (`/metrics/prometheus`).
//! - `ssl`: the avro source's and sink's SSL keys (and Flume's global defaults for them).

pub mod agent;
pub mod channel;
pub mod conf;
pub mod counters;
pub mod event;
pub mod monitoring;
pub mod prometheus;
pub mod registry;
pub mod sink;
pub mod source;
pub mod ssl;

pub use agent::Agent;
pub use event::Event;
