//! Compatibility tests: real Kafka clients (librdkafka via `rdkafka`, Kafka's Java tools,
//! kafka-python, confluent-kafka, kcat, Sarama, franz-go) against the built `sluice` binary.
//! Each test starts its own broker on an ephemeral port in a temp dir. A few opt-in
//! (`--ignored`) tests run the same scenario against Apache Kafka 4.3.1 itself (`kafka.rs`).
//! Install the clients with `bash compat-tests/scripts/install-all.sh`; see
//! compat-tests/README.md.

// Helpers under tests/ aren't covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod kafka;
mod rk;

mod acls;
mod admin;
mod bad_input;
mod configs_parity;
mod console;
mod durability;
mod env_config;
mod faults;
mod fetch_sessions;
mod fuzz;
mod groups;
mod internal_topics;
mod java_tools;
mod kcat;
mod metrics;
mod produce_validation;
mod python_clients;
mod rdkafka_client;
mod security_clients;
mod security_sasl;
mod security_tls;
mod share_groups;
mod transactions;
mod transactions_java;
mod txn_crash;
