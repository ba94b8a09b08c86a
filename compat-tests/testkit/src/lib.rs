//! Helpers shared by the integration tests of the broker's compat suite and of the connectors:
//! the built `sluice` binary run as a child process ([`Broker`]), polling with a deadline
//! ([`poll_until`], [`wait_until`], [`eventually`], [`within`]), unique names and free ports,
//! a real Apache Kafka broker from the cached jars ([`Kafka`]), a follower for a child's
//! output lines ([`follow`]), and Prometheus pages read by Prometheus's own parser
//! ([`prometheus::scrape`]), and headless Chromium for browser tests ([`browser`]).
//!
//! It runs the broker as a process and speaks no Kafka protocol, so it depends on neither the
//! broker crate nor `sluice-client`: connectors must never depend on the broker, and compat
//! tests must judge the broker with clients we did not write. Client helpers stay in each
//! crate's `tests/it/harness.rs`.

// Everything here runs inside tests, where a failed setup step should panic with its message;
// clippy.toml's allow-*-in-tests does not reach a library that tests depend on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broker;
pub mod browser;
mod kafka;
mod lines;
pub mod prometheus;
mod wait;

pub use broker::{sluice_bin, sluice_bin_beside_test_exe, workspace_root, Broker, BrokerBuilder};
pub use kafka::{kafka_home, kafka_java, kafka_quiet_log_config, Kafka, KAFKA_VERSION};
pub use lines::{follow, wait_line, Lines};
pub use wait::{eventually, poll_until, sigterm_and_wait, wait_until, within};

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// A name unique within this test process (`PREFIX-PID-N`), so tests never share state by
/// accident.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound and released; the caller binds
/// it next, so a rare race with another process is possible).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
