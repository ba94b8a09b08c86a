//! Fetch semantics: long-poll wake-up, whole batches, out-of-range.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::testing::TestBroker;

use crate::client::{batch, values, Client};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

pub fn create(c: &mut Client, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let ResponseKind::CreateTopics(r) =
        c.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
    else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

pub fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> i64 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records)),
            ])]);
    let ResponseKind::Produce(r) = c.call(ApiKey::Produce, 9, RequestKind::Produce(req)) else {
        panic!()
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    p.base_offset
}

pub fn fetch(
    c: &mut Client,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])]);
    let ResponseKind::Fetch(r) = c.call(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!()
    };
    r.responses[0].partitions[0].clone()
}

#[test]
fn long_poll_is_woken_by_an_append() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    create(&mut c, "wake", 1);
    let addr = b.addr;
    let producer = std::thread::spawn(move || {
        let mut p = Client::connect(addr);
        // The fetch below waits up to 30 s; this lands while it waits (or before it starts,
        // which the fetch must also see).
        produce(&mut p, "wake", 0, batch(&[b"hello"]))
    });
    let got = fetch(&mut c, "wake", 0, 30_000, 1 << 20);
    producer.join().unwrap();
    let got = if got.records.as_ref().is_some_and(|r| !r.is_empty()) {
        got
    } else {
        fetch(&mut c, "wake", 0, 0, 1 << 20)
    };
    assert_eq!(got.high_watermark, 1);
    let vals = values(got.records.unwrap());
    assert_eq!(vals, vec![(0, Bytes::from_static(b"hello"))]);
}

#[test]
fn fetch_inside_a_batch_returns_the_whole_batch_and_out_of_range_is_reported() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    create(&mut c, "batches", 1);
    assert_eq!(produce(&mut c, "batches", 0, batch(&[b"a", b"b", b"c"])), 0);
    assert_eq!(produce(&mut c, "batches", 0, batch(&[b"d"])), 3);
    let got = fetch(&mut c, "batches", 1, 0, 1 << 20);
    let vals = values(got.records.unwrap());
    assert_eq!(
        vals.first().map(|v| v.0),
        Some(0),
        "starts at the batch base: {vals:?}"
    );
    assert_eq!(vals.len(), 4);
    // max_bytes smaller than one batch still returns that batch whole
    let got = fetch(&mut c, "batches", 0, 0, 1);
    assert_eq!(values(got.records.unwrap()).len(), 3);
    let got = fetch(&mut c, "batches", 99, 0, 1 << 20);
    assert_eq!(got.error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!(got.high_watermark, 4);
}
