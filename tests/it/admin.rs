//! Topic administration edge cases over the wire: Kafka's error codes for bad input, and
//! recovery of half-finished deletes and compaction swaps at start-up.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::Config;
use sluice::testing::TestBroker;

use crate::client::{batch, values, Client};
use crate::fetch::{create, fetch, produce};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

fn create_raw(
    c: &mut Client,
    t: create_topics_request::CreatableTopic,
) -> create_topics_response::CreatableTopicResult {
    let req = CreateTopicsRequest::default().with_topics(vec![t]);
    let ResponseKind::CreateTopics(r) =
        c.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
    else {
        panic!()
    };
    r.topics[0].clone()
}

#[test]
fn bad_admin_requests_get_kafkas_error_codes() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let t = |n: &str| {
        create_topics_request::CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(1)
            .with_replication_factor(1)
    };
    assert_eq!(create_raw(&mut c, t("ok-topic")).error_code, 0);
    assert_eq!(
        create_raw(&mut c, t("ok-topic")).error_code,
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        create_raw(&mut c, t("bad name!")).error_code,
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    assert_eq!(create_raw(&mut c, t(&"x".repeat(250))).error_code, 17);
    assert_eq!(create_raw(&mut c, t("ok_topic")).error_code, 0);
    assert_eq!(
        create_raw(&mut c, t("ok.topic")).error_code,
        17,
        "collides with ok_topic"
    );
    assert_eq!(
        create_raw(&mut c, t("neg").with_num_partitions(-5)).error_code,
        37,
        "INVALID_PARTITIONS"
    );
    assert_eq!(
        create_raw(&mut c, t("rf").with_replication_factor(3)).error_code,
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    let cfg = |k: &str, v: &str| {
        create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(k.into()))
            .with_value(Some(StrBytes::from_string(v.into())))
    };
    let r = create_raw(
        &mut c,
        t("cfg1").with_configs(vec![cfg("no.such.key", "1")]),
    );
    assert_eq!(r.error_code, 40, "INVALID_CONFIG");
    assert!(r.error_message.unwrap().contains("no.such.key"));
    let r = create_raw(
        &mut c,
        t("cfg2").with_configs(vec![cfg("retention.ms", "soon")]),
    );
    assert_eq!(r.error_code, 40);
    assert!(r.error_message.unwrap().contains("retention.ms"));
    // Deleting an unknown topic.
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("never-was")]);
    let ResponseKind::DeleteTopics(r) =
        c.call(ApiKey::DeleteTopics, 5, RequestKind::DeleteTopics(req))
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // Shrinking partitions.
    let req = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(name("ok-topic"))
            .with_count(1),
    ]);
    let ResponseKind::CreatePartitions(r) = c.call(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(req),
    ) else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 37);
    // validate_only creates nothing.
    let req = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![t("dry")]);
    let ResponseKind::CreateTopics(r) =
        c.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
    else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0);
    assert!(!b.data_dir().join("dry-0").exists());
}

#[test]
fn half_finished_deletes_and_compaction_swaps_are_completed_at_start_up() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    create(&mut c, "live", 1);
    produce(&mut c, "live", 0, batch(&[b"a", b"b"]));
    produce(&mut c, "live", 0, batch(&[b"c"]));
    drop(c);
    // Stopped between steps: a topic deletion interrupted after the rename, an
    // uncommitted compaction output, and a committed compaction swap of the live segment
    // (same records, as compaction leaves them when nothing is obsolete).
    let b = b.restart_after(Config::default(), |dir| {
        let gone = dir.join("gone-0.0123456789abcdef0123456789abcdef-delete");
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::write(gone.join("00000000000000000000.log"), b"junk").unwrap();
        let live = dir.join("live-0");
        std::fs::write(live.join("00000000000000000000.log.cleaned"), b"partial").unwrap();
        std::fs::copy(
            live.join("00000000000000000000.log"),
            live.join("00000000000000000000.log.swap"),
        )
        .unwrap();
    });
    let dir = b.data_dir().to_path_buf();
    assert!(
        !dir.join("gone-0.0123456789abcdef0123456789abcdef-delete")
            .exists(),
        "deleted topic left behind"
    );
    assert!(
        !dir.join("live-0/00000000000000000000.log.cleaned").exists(),
        "uncommitted output left behind"
    );
    assert!(
        !dir.join("live-0/00000000000000000000.log.swap").exists(),
        "committed swap not completed"
    );
    let mut c = Client::connect(b.addr);
    let got = values(fetch(&mut c, "live", 0, 0, 1 << 20).records.unwrap());
    let vals: Vec<&[u8]> = got.iter().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(vals, vec![&b"a"[..], b"b", b"c"]);
    assert_eq!(produce(&mut c, "live", 0, batch(&[b"d"])), 3);
}
