//! Sarama (github.com/IBM/sarama, pinned in `compat-tests/go/sarama-txn/go.sum`): its
//! transactional producer (`Producer.Transaction.ID`, `BeginTxn`, `AddOffsetsToTxn`,
//! `CommitTxn`, `AbortTxn`) and a `Consumer.IsolationLevel = ReadCommitted` consumer, in
//! the program `compat-tests/go/sarama-txn`, which checks what it reads itself.

use std::process::Command;

use super::{installed, Target};
use crate::harness::{assert_success, run_with_timeout, unique_topic, TOOL_TIMEOUT};
use crate::rk;

/// Creates the three-partition topic and runs the program; it prints `OK` when every check
/// held.
fn sarama_txn(target: &Target) {
    let bin = installed("go-clients/sarama-txn", "install-go.sh");
    let addr = target.addr();
    let topic = unique_topic("txn-sarama");
    rk::create_topic(addr, &topic, 3);
    let mut cmd = Command::new(bin);
    cmd.args([
        addr,
        &topic,
        &unique_topic("txn-sarama-id"),
        &unique_topic("txn-sarama-group"),
    ]);
    let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
    assert_success(&out, "sarama-txn");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "sarama-txn printed no OK"
    );
}

#[test]
fn sarama_commit_abort_read_committed() {
    sarama_txn(&Target::sluice());
}

#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn sarama_transactions_on_kafka() {
    sarama_txn(&Target::kafka());
}
