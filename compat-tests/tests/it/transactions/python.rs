//! confluent-kafka for Python (librdkafka 2.x underneath, its own build) runs
//! `python/txn_roundtrip.py`: commit, abort and `send_offsets_to_transaction`, checked by
//! the script itself.

use super::Target;
use crate::harness::{assert_success, python, unique_topic};
use crate::rk;

/// Creates the script's topics and runs it; it prints `OK` when every check held.
fn txn_roundtrip(target: &Target) {
    let addr = target.addr();
    let topic = unique_topic("txn-ckpy");
    let input = unique_topic("txn-ckpy-in");
    let output = unique_topic("txn-ckpy-out");
    let group = unique_topic("txn-ckpy-group");
    rk::create_topic(addr, &topic, 3);
    rk::create_topic(addr, &input, 1);
    rk::create_topic(addr, &output, 1);
    let out = python("txn_roundtrip.py", &[addr, &topic, &input, &output, &group]);
    assert_success(&out, "txn_roundtrip.py");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "txn_roundtrip.py printed no OK"
    );
}

#[test]
fn confluent_kafka_commit_abort_send_offsets() {
    txn_roundtrip(&Target::sluice());
}

#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn confluent_kafka_transactions_on_kafka() {
    txn_roundtrip(&Target::kafka());
}
