//! Internal topics belong to the broker: a client's Produce to `__consumer_offsets` is refused
//! with INVALID_TOPIC_EXCEPTION (17), as Kafka refuses it, so a crafted record there can't
//! rewrite another group's committed offsets.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::harness::{unique_topic, Broker};
use crate::rk::{self, Rec};

/// Kafka's offset-commit key, version 1: the layout the broker stores and replays.
fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(&1i16.to_be_bytes());
    for s in [group, topic] {
        k.extend_from_slice(&i16::try_from(s.len()).unwrap().to_be_bytes());
        k.extend_from_slice(s.as_bytes());
    }
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn commit(addr: &str, group: &str, topic: &str, offset: i64) {
    let c: BaseConsumer = rk::config(addr, &[("group.id", group)])
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("build offsets");
    c.commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("OffsetCommit for group {group}: {e}"));
}

fn committed(addr: &str, group: &str, topic: &str) -> Offset {
    let c: BaseConsumer = rk::config(addr, &[("group.id", group)])
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c
        .committed_offsets(tpl, rk::RPC_TIMEOUT)
        .unwrap_or_else(|e| panic!("OffsetFetch for group {group}: {e}"));
    got.find_partition(topic, 0)
        .unwrap_or_else(|| panic!("OffsetFetch lacks {topic}/0"))
        .offset()
}

#[test]
fn produce_to_consumer_offsets_is_refused_and_cannot_erase_a_commit() {
    let mut broker = Broker::start();
    let topic = unique_topic("victim-topic");
    let group = unique_topic("victim-group");
    rk::create_topic(broker.addr(), &topic, 1);
    commit(broker.addr(), &group, &topic, 5);
    assert_eq!(committed(broker.addr(), &group, &topic), Offset::Offset(5));

    // A tombstone (no value) keyed exactly like the victim's commit record, sent by a plain
    // librdkafka producer straight to the offsets partition.
    let tombstone = Rec {
        partition: Some(0),
        key: Some(offset_commit_key(&group, &topic, 0)),
        ..Rec::default()
    };
    let p = rk::producer(broker.addr(), &[("retries", "0")]);
    let reports = rk::produce_all(&p, "__consumer_offsets", &[tombstone]);
    drop(p);

    // Committed offsets are replayed from __consumer_offsets at start-up: the commit must
    // survive that replay. Checked before the produce result, so a broker that stored the
    // tombstone shows the damage it did.
    broker.restart();
    assert_eq!(
        committed(broker.addr(), &group, &topic),
        Offset::Offset(5),
        "the victim group's committed offset changed across a restart (produce: {reports:?})"
    );
    match &reports[..] {
        [Err(e)] => assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::InvalidTopic),
            "produce to __consumer_offsets must fail with INVALID_TOPIC_EXCEPTION (17): {e}"
        ),
        other => panic!("produce to __consumer_offsets was not refused: {other:?}"),
    }
}
