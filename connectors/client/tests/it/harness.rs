//! The shared test kit's broker (the built `sluice`, or `$SLUICE_BIN`, on `127.0.0.1:0` with a
//! config that turns off the initial rebalance delay), plus what is this crate's own: a client
//! with quick retries, and an external broker.
//!
//! With `SLUICE_CLIENT_IT_BOOTSTRAP=host:port` the tests run against that broker instead
//! (say, Apache Kafka with `group.initial.rebalance.delay.ms=0`), to check that the client
//! and Sluice agree with Kafka; tests that restart the broker are skipped then.

use std::time::Duration;

use sluice_client::{Client, ClientConfig};
pub use sluice_testkit::{eventually, unique, within};

/// Broker config for tests: groups form as soon as the first member joins.
const BROKER_CONFIG: &str = "[group]\ninitial_rebalance_delay_ms = 0\n";

/// A broker process of our own, or an external broker.
pub struct Broker {
    /// `None` for an external broker.
    process: Option<sluice_testkit::Broker>,
    addr: String,
}

impl Broker {
    /// Starts a broker on an ephemeral port (or uses `$SLUICE_CLIENT_IT_BOOTSTRAP`).
    pub fn start() -> Broker {
        if let Some(addr) = std::env::var("SLUICE_CLIENT_IT_BOOTSTRAP")
            .ok()
            .filter(|a| !a.is_empty())
        {
            return Broker {
                process: None,
                addr,
            };
        }
        let process = sluice_testkit::Broker::builder()
            .temp_prefix("sluice-client-it-")
            .config(BROKER_CONFIG)
            .start();
        Broker {
            addr: process.addr().to_owned(),
            process: Some(process),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the broker is an external one this harness cannot restart.
    pub fn is_external(&self) -> bool {
        self.process.is_none()
    }

    /// Kills the broker (`kill -9`) and starts it again on the same port and data dir.
    pub fn restart_on_same_port(&mut self) {
        let p = self
            .process
            .as_mut()
            .expect("an external broker cannot be restarted");
        p.kill9();
        p.start_again_on_same_port();
    }

    /// A client for this broker with short retry pauses.
    pub async fn client(&self) -> Client {
        Client::connect(test_config(self.addr())).await.unwrap()
    }
}

/// Client settings for tests: quick retries, bounded waits.
pub fn test_config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new([addr]).with_client_id("sluice-client-it");
    c.retry_backoff = Duration::from_millis(20);
    c.retry_backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(15);
    c
}
