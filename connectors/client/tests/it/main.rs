//! Integration tests of `sluice-client` against the real broker binary: each test starts
//! `sluice` on an ephemeral port in a temp dir (see `harness`). One module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod groups;
mod harness;
mod offsets;
mod produce_fetch;
mod security;
mod txn;
