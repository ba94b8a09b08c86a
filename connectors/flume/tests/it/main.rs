//! Integration tests of `sluice-flume`: each test runs the real agent binary (and, where
//! Kafka is involved, the real `sluice` broker) with a Flume config, and checks what comes
//! out. One module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

mod avro_ssl;
mod channels;
mod config_dir;
mod config_errors;
mod harness;
mod interop;
mod kafka;
mod prometheus;
mod routing;
mod seed;
mod sinks;
mod sources;
mod transactions;
