//! Declarative jobs: `sluice-spark job FILE.toml` runs a streaming aggregation described in
//! a TOML file, with no Rust to write. A job reads a Kafka stream, parses each record's
//! value into fields, joins static tables, filters, groups by a key (and an event-time
//! window), aggregates, and writes the results to a sink.
//!
//! Module map:
//! - `spec`: the job file's TOML ([`spec::JobFile`]) and its validation into a
//!   [`JobSpec`]; errors name the file and the key.
//! - `parse`: the line parsers (`split`, `json`, `regex`), fields, key templates, filters,
//!   event-time text.
//! - `table`: static tables (CSV or JSON-lines file, Redis hash, PostgreSQL query), their
//!   snapshots and reloading.
//! - `record`: what happens to each record: parse, join, filter, key, window, aggregate.
//! - `output`: the stdout sink, the Kafka sink's records, the late-record side output.
//! - `run`: [`run`]: the stream, the sink and the batch loop.
//!
//! Not here: windows, the watermark and aggregates (`window`, `agg`), the Redis and
//! PostgreSQL sinks (`redis_sink`, `pg_sink`), the stream itself (`stream`).

pub mod output;
pub mod parse;
pub mod record;
pub mod run;
pub mod spec;
pub mod table;

pub use run::{run, run_with_listeners};
pub use spec::{load, JobSpec};
