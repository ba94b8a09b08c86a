//! librdkafka 2.12 (the `rdkafka` crate) as a transactional producer: `init_transactions`,
//! `begin_transaction`, `send`, `send_offsets_to_transaction`, `commit_transaction` and
//! `abort_transaction`, read back by `read_committed` and `read_uncommitted` consumers and
//! by the group's committed offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::Target;
use crate::harness::{poll_until, unique_topic};
use crate::rk::{self, Got, Rec, Recorder};

/// Bound on each transactional call (librdkafka's own default for them is
/// `transaction.timeout.ms`, 60 s).
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Partitions of the topic the first scenario writes.
const PARTITIONS: i32 = 3;
/// Records each transaction writes to each partition.
const PER_PARTITION: usize = 4;
/// How long a consumer may take to see what a finished transaction wrote (Kafka writes the
/// markers after EndTxn returns, so the last stable offset may trail the call).
const SETTLE: Duration = Duration::from_secs(40);

/// A producer with `transactional.id` set, after `init_transactions`.
fn txn_producer(addr: &str, txn_id: &str) -> BaseProducer<Recorder> {
    let p = rk::producer(addr, &[("transactional.id", txn_id)]);
    p.init_transactions(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|e| panic!("init_transactions for {txn_id}: {e}"));
    p
}

/// Sends `recs` to `topic` inside the open transaction and flushes; returns each record's
/// `(partition, offset)`, panicking on a delivery error.
fn send_all(p: &BaseProducer<Recorder>, topic: &str, recs: &[Rec]) -> Vec<(i32, i64)> {
    rk::produce_all(p, topic, recs)
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("transactional record {i} to {topic}: {e}")))
        .collect()
}

/// A consumer with manual assignment and the given `isolation.level`, reporting partition
/// EOF so a reader knows when it has reached the end (the last stable offset under
/// `read_committed`).
fn reader(addr: &str, isolation: &str) -> BaseConsumer {
    rk::consumer(
        addr,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    )
}

/// Reads every partition of `topic` from the start with `isolation` until at least `want`
/// records arrived and every partition has reported EOF after its last record (librdkafka
/// reports the end once per arrival there: the high watermark under `read_uncommitted`, the
/// last stable offset under `read_committed`). Returns what arrived, sorted by partition and
/// offset; panics if that does not happen within [`SETTLE`].
fn read_all(addr: &str, topic: &str, partitions: i32, isolation: &str, want: usize) -> Vec<Got> {
    let c = reader(addr, isolation);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("build assignment");
    }
    c.assign(&tpl).expect("assign");
    let end = Instant::now() + SETTLE;
    let mut got = Vec::new();
    let mut eof = vec![false; usize::try_from(partitions).unwrap()];
    let mut last_err = None;
    while (got.len() < want || eof.iter().any(|e| !e)) && Instant::now() < end {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                eof[usize::try_from(m.partition()).unwrap()] = false;
                got.push(rk::to_got(&m));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => eof[usize::try_from(p).unwrap()] = true,
            Some(Err(e)) => last_err = Some(e),
            None => {}
        }
    }
    assert!(
        got.len() >= want && eof.iter().all(|e| *e),
        "{isolation}: read {} of {want} records from {topic} within {SETTLE:?}, partitions at their end: {eof:?}; last error {last_err:?}; got {got:?}",
        got.len()
    );
    got.sort_by_key(|g| (g.partition, g.offset));
    got
}

/// `(partition, offset, key)` of records read back.
fn keys(got: &[Got]) -> Vec<(i32, i64, String)> {
    got.iter()
        .map(|g| {
            let key = String::from_utf8_lossy(g.rec.key.as_deref().unwrap_or_default());
            (g.partition, g.offset, key.into_owned())
        })
        .collect()
}

/// Records of one transaction: [`PER_PARTITION`] per partition, keyed `TAG-P-I`.
fn txn_records(tag: &str) -> Vec<Rec> {
    (0..PARTITIONS)
        .flat_map(|p| {
            (0..PER_PARTITION).map(move |i| Rec {
                partition: Some(p),
                ..Rec::kv(&format!("{tag}-{p}-{i}"), &format!("{tag} value {p} {i}"))
            })
        })
        .collect()
}

/// Commits a transaction, aborts the next and commits a third, each writing to all three
/// partitions; checks what `read_committed` and `read_uncommitted` consumers see, and that
/// each transaction ended with one control record per partition (the offsets the consumers
/// skip, and the high watermark).
pub(super) fn commit_and_abort_across_partitions(target: &Target) {
    let addr = target.addr();
    let topic = unique_topic("txn-rk");
    rk::create_topic(addr, &topic, PARTITIONS);
    let p = txn_producer(addr, &unique_topic("txn-rk-id"));

    // (key, partition, offset) of every record written, and which of them were committed.
    let mut committed = Vec::new();
    let mut everything = Vec::new();
    for (tag, commit) in [("commit1", true), ("abort", false), ("commit2", true)] {
        p.begin_transaction()
            .unwrap_or_else(|e| panic!("begin_transaction ({tag}): {e}"));
        let recs = txn_records(tag);
        let acks = send_all(&p, &topic, &recs);
        if commit {
            p.commit_transaction(TXN_CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("commit_transaction ({tag}): {e}"));
        } else {
            p.abort_transaction(TXN_CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("abort_transaction ({tag}): {e}"));
        }
        for (rec, (part, off)) in recs.iter().zip(acks) {
            let key = String::from_utf8(rec.key.clone().unwrap()).unwrap();
            assert_eq!(Some(part), rec.partition, "{key} went to partition {part}");
            everything.push((part, off, key.clone()));
            if commit {
                committed.push((part, off, key));
            }
        }
    }
    committed.sort();
    everything.sort();

    // Each transaction's marker takes one offset in every partition it wrote to: Kafka's
    // offsets run data 0..4, marker 4, data 5..9, marker 9, data 10..14, marker 14.
    let per = i64::try_from(PER_PARTITION).unwrap();
    for part in 0..PARTITIONS {
        let offsets: Vec<i64> = everything
            .iter()
            .filter(|(p, _, _)| *p == part)
            .map(|(_, o, _)| *o)
            .collect();
        let want: Vec<i64> = (0..3)
            .flat_map(|txn| (0..per).map(move |i| txn * (per + 1) + i))
            .collect();
        assert_eq!(
            offsets, want,
            "partition {part}: offsets of the three transactions' records (one control record after each)"
        );
    }
    let c = reader(addr, "read_uncommitted");
    let hw_want = 3 * (per + 1);
    for part in 0..PARTITIONS {
        let mut last = None;
        let ok = poll_until(SETTLE, || {
            last = c.fetch_watermarks(&topic, part, rk::RPC_TIMEOUT).ok();
            last.is_some_and(|(_, hi)| hi == hw_want)
        });
        assert!(
            ok,
            "partition {part}: high watermark {last:?}, want {hw_want} (the third commit marker)"
        );
    }

    let seen = read_all(addr, &topic, PARTITIONS, "read_committed", committed.len());
    assert_eq!(
        keys(&seen),
        committed,
        "read_committed must see exactly the two committed transactions"
    );
    let seen = read_all(
        addr,
        &topic,
        PARTITIONS,
        "read_uncommitted",
        everything.len(),
    );
    assert_eq!(
        keys(&seen),
        everything,
        "read_uncommitted must see all three transactions' records (and no control records)"
    );
}

/// What the group has committed for `topic`/0, read with OffsetFetch by `c` (a member of
/// the group). librdkafka retries UNSTABLE_OFFSET_COMMIT itself while a transactional
/// commit is pending.
fn committed_offset(c: &BaseConsumer, topic: &str) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c
        .committed_offsets(tpl, rk::RPC_TIMEOUT)
        .unwrap_or_else(|e| panic!("OffsetFetch: {e}"));
    got.find_partition(topic, 0)
        .expect("OffsetFetch answers for the partition asked")
        .offset()
}

/// A group member subscribed to `topic` with `read_committed` and no auto commit.
fn member(addr: &str, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = rk::config(
        addr,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("session.timeout.ms", "10000"),
        ],
    )
    .create()
    .expect("create group member");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// Polls `c` until it has handed over `n` records; panics after [`SETTLE`].
fn take(c: &BaseConsumer, n: usize) -> Vec<Got> {
    let end = Instant::now() + SETTLE;
    let mut got = Vec::new();
    let mut last_err = None;
    while got.len() < n && Instant::now() < end {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(rk::to_got(&m)),
            Some(Err(e)) => last_err = Some(e),
            None => {}
        }
    }
    assert_eq!(
        got.len(),
        n,
        "group member read {} of {n} records within {SETTLE:?}; last error {last_err:?}",
        got.len()
    );
    got
}

/// Consume-transform-produce: a group member reads ten input records; the first five are
/// transformed and committed together with the input offset 5; the next five are transformed
/// in a transaction that sends offset 10 and is aborted, so the group stays at 5; a new
/// member of the group resumes at 5, and its transaction commits offset 10. The output topic
/// then holds each transformed record once under `read_committed`, and the group is at 10.
pub(super) fn consume_transform_produce(target: &Target) {
    let addr = target.addr();
    let input = unique_topic("txn-rk-in");
    let output = unique_topic("txn-rk-out");
    let group = unique_topic("txn-rk-group");
    rk::create_topic(addr, &input, 1);
    rk::create_topic(addr, &output, 1);
    let inputs: Vec<Rec> = (0..10)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("in-{i}")))
        .collect();
    rk::produce_ok(addr, &input, &inputs, &[]);
    let p = txn_producer(addr, &unique_topic("txn-rk-ctp"));

    // One transaction: the transformed `batch`, and the input offset after it for the group.
    let transact = |c: &BaseConsumer, batch: &[Got], commit: bool| {
        p.begin_transaction().expect("begin_transaction");
        let out: Vec<Rec> = batch
            .iter()
            .map(|g| Rec {
                key: g.rec.key.clone(),
                value: Some(
                    format!(
                        "out-{}",
                        String::from_utf8_lossy(g.rec.value.as_deref().unwrap())
                    )
                    .into_bytes(),
                ),
                ..Rec::default()
            })
            .collect();
        send_all(&p, &output, &out);
        let next = batch.last().unwrap().offset + 1;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&input, 0, Offset::Offset(next))
            .unwrap();
        let cgm = c.group_metadata().expect("consumer group metadata");
        p.send_offsets_to_transaction(&offsets, &cgm, TXN_CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("send_offsets_to_transaction({next}): {e}"));
        if commit {
            p.commit_transaction(TXN_CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("commit_transaction (offset {next}): {e}"));
        } else {
            p.abort_transaction(TXN_CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("abort_transaction (offset {next}): {e}"));
        }
    };

    let c = member(addr, &group, &input);
    let first = take(&c, 10);
    let offsets: Vec<i64> = first.iter().map(|g| g.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>(), "input offsets");
    transact(&c, &first[..5], true);
    assert_eq!(
        committed_offset(&c, &input),
        Offset::Offset(5),
        "the committed transaction moves the group to 5"
    );
    transact(&c, &first[5..], false);
    assert_eq!(
        committed_offset(&c, &input),
        Offset::Offset(5),
        "the aborted transaction's offset 10 must not be committed"
    );
    drop(c);

    // A new member starts where the group's committed offset says.
    let c = member(addr, &group, &input);
    let again = take(&c, 5);
    let offsets: Vec<i64> = again.iter().map(|g| g.offset).collect();
    assert_eq!(
        offsets,
        (5..10).collect::<Vec<i64>>(),
        "a new member resumes at the committed offset 5"
    );
    transact(&c, &again, true);
    assert_eq!(
        committed_offset(&c, &input),
        Offset::Offset(10),
        "the second commit moves the group to 10"
    );
    drop(c);

    let seen = read_all(addr, &output, 1, "read_committed", 10);
    let values: Vec<String> = seen
        .iter()
        .map(|g| String::from_utf8_lossy(g.rec.value.as_deref().unwrap()).into_owned())
        .collect();
    let want: Vec<String> = (0..10).map(|i| format!("out-in-{i}")).collect();
    assert_eq!(
        values, want,
        "read_committed output: each input transformed once"
    );
    let all = read_all(addr, &output, 1, "read_uncommitted", 15);
    let mut by_value: BTreeMap<String, usize> = BTreeMap::new();
    for g in &all {
        *by_value
            .entry(String::from_utf8_lossy(g.rec.value.as_deref().unwrap()).into_owned())
            .or_default() += 1;
    }
    for i in 0..10 {
        let want = if i < 5 { 1 } else { 2 };
        assert_eq!(
            by_value.get(&format!("out-in-{i}")),
            Some(&want),
            "read_uncommitted output holds the aborted attempt too: {by_value:?}"
        );
    }
}

/// A second producer with the same `transactional.id` fences the first: the old one's next
/// transactional call fails with a fatal error (librdkafka's `_FENCED` for Kafka's
/// PRODUCER_FENCED or INVALID_PRODUCER_EPOCH), and what the new one commits is read back.
pub(super) fn new_producer_fences_old(target: &Target) {
    let addr = target.addr();
    let topic = unique_topic("txn-rk-fence");
    rk::create_topic(addr, &topic, 1);
    let txn_id = unique_topic("txn-rk-fence-id");
    let old = txn_producer(addr, &txn_id);
    old.begin_transaction().expect("begin_transaction (old)");
    send_all(&old, &topic, &[Rec::kv("old", "old-1")]);

    // init_transactions of the new producer aborts the old one's open transaction.
    let new = txn_producer(addr, &txn_id);
    new.begin_transaction().expect("begin_transaction (new)");
    send_all(&new, &topic, &[Rec::kv("new", "new-1")]);
    new.commit_transaction(TXN_CALL_TIMEOUT)
        .expect("commit_transaction (new)");

    let err = old
        .commit_transaction(TXN_CALL_TIMEOUT)
        .expect_err("the fenced producer's commit must fail");
    let KafkaError::Transaction(rd) = &err else {
        panic!("fenced commit failed with {err:?}, want a transaction error");
    };
    assert!(
        rd.is_fatal(),
        "a fenced producer's error is fatal in librdkafka: {err:?}"
    );
    assert!(
        matches!(
            rd.code(),
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        ),
        "fenced commit: {err:?}"
    );
    let seen = read_all(addr, &topic, 1, "read_committed", 1);
    assert_eq!(
        seen[0].rec.value.as_deref(),
        Some(&b"new-1"[..]),
        "read_committed sees only the new producer's record"
    );
}

#[test]
fn rdkafka_commit_and_abort_across_partitions() {
    commit_and_abort_across_partitions(&Target::sluice());
}

#[test]
fn rdkafka_consume_transform_produce() {
    consume_transform_produce(&Target::sluice());
}

#[test]
fn rdkafka_new_producer_fences_old() {
    new_producer_fences_old(&Target::sluice());
}

#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1"]
fn rdkafka_transactions_on_kafka() {
    let kafka = Target::kafka();
    commit_and_abort_across_partitions(&kafka);
    consume_transform_produce(&kafka);
    new_producer_fences_old(&kafka);
}
