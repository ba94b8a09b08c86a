//! A real Apache Kafka 4.3.1 broker (the test kit's [`sluice_testkit::Kafka`]), so a test
//! can run the same scenario against Kafka and against Sluice. The group coordinator logs at
//! INFO into `kafka.log`, which is printed when a test panics. Readiness is checked with
//! librdkafka's Metadata.

use std::ops::Deref;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::harness::poll_until;
use crate::rk;

/// A JVM broker on two shared cores can take a while to answer its first Metadata.
const KAFKA_START_DEADLINE: Duration = Duration::from_secs(120);

/// Errors only, except the group coordinator, whose rebalance steps show what it did.
const LOG4J2: &str = "status = error\n\
    appender.stderr.type = Console\n\
    appender.stderr.name = STDERR\n\
    appender.stderr.target = SYSTEM_ERR\n\
    appender.stderr.layout.type = PatternLayout\n\
    appender.stderr.layout.pattern = [%d] %p %m (%c)%n\n\
    rootLogger.level = error\n\
    rootLogger.appenderRef.stderr.ref = STDERR\n\
    logger.group.name = org.apache.kafka.coordinator.group\n\
    logger.group.level = info\n";

/// A running Kafka broker that answers Metadata.
pub(crate) struct Kafka(sluice_testkit::Kafka);

impl Kafka {
    /// Starts the broker with `extra` lines appended to Kafka 4.x's `server.properties`
    /// settings; returns once it answers Metadata.
    pub(crate) fn start(extra: &str) -> Kafka {
        let mut k = sluice_testkit::Kafka::spawn("sluice-compat-kafka-", extra, Some(LOG4J2));
        let probe: BaseConsumer = rk::config(k.addr(), &[])
            .create()
            .expect("create metadata client");
        let mut exited = None;
        let up = poll_until(KAFKA_START_DEADLINE, || {
            exited = k.exited();
            exited.is_some()
                || probe
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok_and(|m| !m.brokers().is_empty())
        });
        assert!(
            exited.is_none(),
            "kafka exited with {exited:?}:\n{}",
            k.log()
        );
        assert!(
            up,
            "kafka did not answer within {KAFKA_START_DEADLINE:?}:\n{}",
            k.log()
        );
        Kafka(k)
    }
}

impl Deref for Kafka {
    type Target = sluice_testkit::Kafka;

    fn deref(&self) -> &sluice_testkit::Kafka {
        &self.0
    }
}
