//! Kafka transactions (KIP-98, KIP-447, KIP-890) with real clients that are not Java:
//! librdkafka through the `rdkafka` crate (`librdkafka`), confluent-kafka for Python
//! (`python`), Sarama (`sarama`) and franz-go's own `pkg/kgo` integration tests
//! (`franz_go`). Each scenario is a function of the bootstrap address, so the same code runs
//! against Sluice and, in the opt-in (`--ignored`) `*_on_kafka` tests, against Apache Kafka
//! 4.3.1: what Kafka does there is the expectation.
//!
//! The scenarios: a transactional producer commits one transaction and aborts another across
//! three partitions, and a `read_committed` consumer sees exactly the committed records where
//! a `read_uncommitted` one sees both; and consume-transform-produce, where
//! `send_offsets_to_transaction` moves the group's committed offset only when the
//! transaction commits.

use std::path::PathBuf;

use crate::harness::{compat_dir, Broker};
use crate::kafka::Kafka;

mod franz_go;
mod librdkafka;
mod librdkafka_suite;
mod python;
mod sarama;

/// Sluice's config for every test here: no initial rebalance delay (Kafka's 3 s would
/// dominate the consume-transform-produce runs), and KIP-848 members heartbeat every 500 ms.
const SLUICE_CONFIG: &str = "\
[group]
initial_rebalance_delay_ms = 0
consumer_heartbeat_interval_ms = 500
";

/// The same for Kafka: `group.initial.rebalance.delay.ms=0`, as Kafka's own Docker image and
/// franz-go's CI brokers run.
const KAFKA_CONFIG: &str = "group.initial.rebalance.delay.ms=0\n\
    group.consumer.heartbeat.interval.ms=500\n\
    group.consumer.min.heartbeat.interval.ms=500\n";

/// The broker a scenario runs against.
pub(crate) enum Target {
    /// The built `sluice` binary (boxed: it is much larger than the other variant).
    Sluice(Box<Broker>),
    /// Apache Kafka 4.3.1 from the cached jars.
    Kafka(Kafka),
}

impl Target {
    /// A fresh Sluice broker with [`SLUICE_CONFIG`].
    pub(crate) fn sluice() -> Target {
        Target::Sluice(Box::new(Broker::start_with_config(SLUICE_CONFIG)))
    }

    /// A fresh Kafka 4.3.1 broker with [`KAFKA_CONFIG`].
    pub(crate) fn kafka() -> Target {
        Target::Kafka(Kafka::start(KAFKA_CONFIG))
    }

    /// `127.0.0.1:PORT` of the broker.
    pub(crate) fn addr(&self) -> &str {
        match self {
            Target::Sluice(b) => b.addr(),
            Target::Kafka(k) => k.addr(),
        }
    }
}

/// A file that an install script put under `compat-tests/.cache/`; panics with the script to
/// run when it is missing.
fn installed(rel: &str, script: &str) -> PathBuf {
    let p = compat_dir().join(".cache").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash compat-tests/scripts/{script}` first",
        p.display()
    );
    p
}
