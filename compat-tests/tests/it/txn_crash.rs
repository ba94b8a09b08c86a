//! Transactions across broker crashes, judged by librdkafka: a `kill -9` while a transaction
//! is open (between AddPartitions and EndTxn), and crashes at the two points inside EndTxn
//! no client can time a kill for (after the Prepare record, after the markers), reached with
//! the broker's `SLUICE_FAILPOINT`. No committed record is lost and no aborted one is ever
//! visible to `read_committed`.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::TopicPartitionList;

use crate::harness::{poll_until, unique_topic, Broker};

/// Panics with `what` unless `cond` holds within [`DEADLINE`].
fn eventually(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(DEADLINE, cond),
        "timed out after {DEADLINE:?} waiting for {what}"
    );
}
use crate::rk;

const DEADLINE: Duration = Duration::from_secs(60);

fn txn_producer(bs: &str, id: &str) -> BaseProducer {
    let p: BaseProducer = rk::config(
        bs,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", "4000"),
            ("socket.timeout.ms", "4000"),
            ("message.timeout.ms", "4000"),
        ],
    )
    .create()
    .expect("create transactional producer");
    p.init_transactions(rk::RPC_TIMEOUT)
        .expect("init_transactions");
    p
}

/// Sends `values` round-robin over `partitions` partitions and waits until all are acked.
fn send_all(p: &BaseProducer, topic: &str, partitions: i32, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        let part = i32::try_from(i).unwrap() % partitions;
        p.send(BaseRecord::<(), _>::to(topic).payload(v).partition(part))
            .expect("enqueue");
    }
    p.flush(rk::RPC_TIMEOUT).expect("flush");
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Every value in `topic` (all partitions, to their end at this isolation level), sorted.
fn read_to_end(bs: &str, topic: &str, partitions: i32, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = rk::config(
        bs,
        &[
            ("group.id", "txn-crash-reader"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", isolation),
        ],
    )
    .create()
    .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for i in 0..partitions {
        tpl.add_partition_offset(topic, i, rdkafka::Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let end = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut eof = std::collections::HashSet::new();
    while eof.len() < usize::try_from(partitions).unwrap() {
        assert!(
            Instant::now() < end,
            "no end of {topic} within {DEADLINE:?}"
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            _ => {}
        }
    }
    got.sort();
    got
}

/// Whether every partition's last stable offset has caught up with its high watermark
/// (no transaction open), as a read_committed ListOffsets sees it.
fn all_stable(bs: &str, topic: &str, partitions: i32) -> bool {
    let committed: BaseConsumer = rk::config(
        bs,
        &[
            ("group.id", "txn-crash-lso"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .unwrap();
    let uncommitted: BaseConsumer = rk::config(
        bs,
        &[
            ("group.id", "txn-crash-hw"),
            ("isolation.level", "read_uncommitted"),
        ],
    )
    .create()
    .unwrap();
    (0..partitions).all(|i| {
        let lso = committed.fetch_watermarks(topic, i, rk::RPC_TIMEOUT);
        let hw = uncommitted.fetch_watermarks(topic, i, rk::RPC_TIMEOUT);
        matches!((lso, hw), (Ok((_, a)), Ok((_, b))) if a == b)
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_broker_killed_inside_a_transaction_aborts_it_and_keeps_what_was_committed() {
    let mut broker = Broker::start_with_env(
        None,
        &[(
            "KAFKA_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS",
            "200",
        )],
    );
    let bs = broker.addr().to_string();
    let topic = unique_topic("txn-kill");
    rk::create_topic(&bs, &topic, 3);
    let p = txn_producer(&bs, &format!("{topic}-tx"));
    let committed = values("c", 6);
    p.begin_transaction().unwrap();
    send_all(&p, &topic, 3, &committed);
    p.commit_transaction(rk::RPC_TIMEOUT).unwrap();
    p.begin_transaction().unwrap();
    let open = values("o", 6);
    send_all(&p, &topic, 3, &open);
    // The records of the open transaction are acknowledged; the broker dies before EndTxn.
    broker.kill9();
    broker.start_again_on_same_port();
    // The producer never comes back: its transaction times out (4 s) and is aborted.
    eventually("the open transaction to be aborted", || {
        all_stable(&bs, &topic, 3)
    });
    assert_eq!(
        read_to_end(&bs, &topic, 3, "read_committed"),
        sorted(committed.clone())
    );
    let mut everything = committed.clone();
    everything.extend(open);
    assert_eq!(
        read_to_end(&bs, &topic, 3, "read_uncommitted"),
        sorted(everything)
    );
    drop(p);
    // The id lives on: a new producer fences the old one and commits.
    let p2 = txn_producer(&bs, &format!("{topic}-tx"));
    p2.begin_transaction().unwrap();
    let more = values("n", 3);
    send_all(&p2, &topic, 3, &more);
    p2.commit_transaction(rk::RPC_TIMEOUT).unwrap();
    let mut want = committed;
    want.extend(more);
    assert_eq!(read_to_end(&bs, &topic, 3, "read_committed"), sorted(want));
}

/// Commit, crashing the broker at `point` inside EndTxn; after the restart the transaction
/// is complete and readable, and the transactional id usable.
fn crash_inside_commit(point: &str) {
    let mut broker = Broker::start_with_env(None, &[("SLUICE_FAILPOINT", point)]);
    let bs = broker.addr().to_string();
    let topic = unique_topic("txn-failpoint");
    rk::create_topic(&bs, &topic, 3);
    let p = txn_producer(&bs, &format!("{topic}-tx"));
    p.begin_transaction().unwrap();
    let committed = values("c", 9);
    send_all(&p, &topic, 3, &committed);
    // The broker dies inside EndTxn: the commit cannot be confirmed.
    let r = p.commit_transaction(Duration::from_secs(5));
    assert!(
        r.is_err(),
        "commit confirmed by a broker that crashed in EndTxn"
    );
    let status = broker
        .wait_exit(DEADLINE)
        .unwrap_or_else(|| panic!("the broker did not stop at {point}"));
    assert!(!status.success(), "{status}");
    assert!(
        broker
            .stderr()
            .contains(&format!("failpoint {point} reached")),
        "{}",
        broker.stderr()
    );
    drop(p);
    broker.set_env("SLUICE_FAILPOINT", None);
    broker.start_again_on_same_port();
    assert!(
        all_stable(&bs, &topic, 3),
        "a transaction is still open after the restart"
    );
    assert_eq!(
        read_to_end(&bs, &topic, 3, "read_committed"),
        sorted(committed.clone())
    );
    let p2 = txn_producer(&bs, &format!("{topic}-tx"));
    p2.begin_transaction().unwrap();
    send_all(&p2, &topic, 3, &values("x", 3));
    p2.abort_transaction(rk::RPC_TIMEOUT).unwrap();
    assert_eq!(
        read_to_end(&bs, &topic, 3, "read_committed"),
        sorted(committed)
    );
}

#[test]
fn a_crash_after_the_prepare_record_completes_the_commit_at_start() {
    crash_inside_commit("txn-after-prepare");
}

#[test]
fn a_crash_after_the_markers_completes_the_commit_at_start() {
    crash_inside_commit("txn-after-markers");
}
