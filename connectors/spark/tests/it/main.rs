//! Integration tests of `sluice-spark` against the real `sluice` broker binary and a real
//! `redis-server` and PostgreSQL server (see `harness`), one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

mod binary;
mod flume;
mod harness;
mod job;
mod kafka;
mod pg_sink;
mod pipeline;
mod redis_sink;
mod stream;
mod transactions;
mod ui;
mod window;
