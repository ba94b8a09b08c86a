//! Produce refusals at the protocol level: internal topics by name and by topic id (v13,
//! which no stock client here sends), and KIP-467 record errors in the response.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::testing::TestBroker;

use crate::client::{batch, kv_batch, Client};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn produce_one(
    c: &mut Client,
    version: i16,
    data: produce_request::TopicProduceData,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![data.with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records)),
        ])]);
    let ResponseKind::Produce(r) = c.call(ApiKey::Produce, version, RequestKind::Produce(req))
    else {
        panic!()
    };
    r.responses[0].partition_responses[0].clone()
}

#[test]
fn internal_topics_refuse_produce_by_name_and_by_id() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let ResponseKind::Metadata(m) = c.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(name("__consumer_offsets"))),
        ]))),
    ) else {
        panic!()
    };
    let t = &m.topics[0];
    assert!(t.is_internal);
    let by_name = produce_one(
        &mut c,
        9,
        produce_request::TopicProduceData::default().with_name(name("__consumer_offsets")),
        batch(&[b"x"]),
    );
    assert_eq!(by_name.error_code, 17, "{:?}", by_name.error_message);
    let by_id = produce_one(
        &mut c,
        13,
        produce_request::TopicProduceData::default().with_topic_id(t.topic_id),
        batch(&[b"x"]),
    );
    assert_eq!(by_id.error_code, 17, "{:?}", by_id.error_message);
    assert_eq!(by_id.base_offset, -1);
}

/// One uncompressed batch of five records; those at `keyless` have no key.
fn keyed_batch(keyless: &[usize]) -> Bytes {
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    let records: Vec<(Option<&[u8]>, &[u8])> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| ((!keyless.contains(&i)).then_some(k.as_bytes()), &b"v"[..]))
        .collect();
    kv_batch(&records)
}

#[test]
fn keyless_records_on_a_compacted_topic_come_back_as_record_errors() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("compact"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("cleanup.policy"))
                .with_value(Some(StrBytes::from_static_str("compact")))]),
    ]);
    let ResponseKind::CreateTopics(r) =
        c.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
    else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0);
    let topic = || produce_request::TopicProduceData::default().with_name(name("compact"));

    let p = produce_one(&mut c, 9, topic(), keyed_batch(&[1, 3]));
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    assert_eq!(p.base_offset, -1);
    let idx: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(idx, vec![1, 3]);
    assert!(p
        .record_errors
        .iter()
        .all(|e| e.batch_index_error_message.is_some()));
    assert!(p
        .error_message
        .as_ref()
        .is_some_and(|m| m.contains("2 record errors")));

    // Nothing of it was stored.
    let p = produce_one(&mut c, 9, topic(), keyed_batch(&[]));
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}
