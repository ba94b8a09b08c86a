//! Broker integration tests: a `TestBroker` per test, driven over TCP with requests encoded
//! by the kafka-protocol crate. Protocol edge cases no stock client produces live here; the
//! behaviour real clients see is judged in `compat-tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod acls;
mod admin;
mod binary;
mod client;
mod fetch;
mod fetch_session;
mod groups;
mod produce;
mod protocol;
mod storage;
