//! Incremental fetch sessions (KIP-227) over the wire: a full fetch opens a session, an
//! incremental one answers only changed partitions and waits on every partition of the
//! session, session errors, topic ids, zero-copy records, and sessions turned off.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::Config;
use sluice::testing::TestBroker;
use uuid::Uuid;

use crate::client::{batch, values, Client};
use crate::fetch::{create, produce};

/// FETCH_SESSION_ID_NOT_FOUND.
const NOT_FOUND: i16 = 70;
/// INVALID_FETCH_SESSION_EPOCH.
const BAD_EPOCH: i16 = 71;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

/// One Fetch round trip. `parts` are (partition, offset); by topic id from v13 on.
#[allow(clippy::too_many_arguments)]
fn fetch(
    c: &mut Client,
    version: i16,
    topic: (&str, Uuid),
    session: (i32, i32),
    parts: &[(i32, i64)],
    forget: &[i32],
    max_wait_ms: i32,
) -> FetchResponse {
    let by_id = version >= 13;
    let topic_entry = |t: fetch_request::FetchTopic| {
        if by_id {
            t.with_topic_id(topic.1)
        } else {
            t.with_topic(name(topic.0))
        }
    };
    let mut topics = Vec::new();
    if !parts.is_empty() {
        topics.push(
            topic_entry(fetch_request::FetchTopic::default()).with_partitions(
                parts
                    .iter()
                    .map(|&(p, o)| {
                        fetch_request::FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            ),
        );
    }
    let mut forgotten = Vec::new();
    if !forget.is_empty() {
        let t = fetch_request::ForgottenTopic::default().with_partitions(forget.to_vec());
        forgotten.push(if by_id {
            t.with_topic_id(topic.1)
        } else {
            t.with_topic(name(topic.0))
        });
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_id(session.0)
        .with_session_epoch(session.1)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten);
    let ResponseKind::Fetch(r) = c.call(ApiKey::Fetch, version, RequestKind::Fetch(req)) else {
        panic!()
    };
    r
}

/// (partition, high watermark, record values) of one partition answered.
type Answer = (i32, i64, Vec<(i64, Bytes)>);

/// Every partition answered.
fn answered(r: &FetchResponse) -> Vec<Answer> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
            let vals = p.records.clone().map(values).unwrap_or_default();
            (p.partition_index, p.high_watermark, vals)
        })
        .collect()
}

fn topic_id(c: &mut Client, topic: &str) -> Uuid {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let ResponseKind::Metadata(r) = c.call(ApiKey::Metadata, 12, RequestKind::Metadata(req)) else {
        panic!()
    };
    r.topics[0].topic_id
}

fn session_flow(version: i16) {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let topic = format!("sess{version}");
    create(&mut c, &topic, 3);
    let t = (topic.as_str(), topic_id(&mut c, &topic));
    produce(&mut c, &topic, 0, batch(&[b"a0"]));
    produce(&mut c, &topic, 1, batch(&[b"b0"]));

    // Full fetch: every partition answered, and a session opened.
    let r = fetch(
        &mut c,
        version,
        t,
        (0, 0),
        &[(0, 0), (1, 0), (2, 0)],
        &[],
        0,
    );
    assert_eq!(r.error_code, 0);
    let id = r.session_id;
    assert_ne!(id, 0, "a full fetch with epoch 0 opens a session");
    assert_eq!(answered(&r).len(), 3);

    // Epoch 1 moves partitions 0 and 1 on; nothing is new, so nothing is answered.
    let r = fetch(&mut c, version, t, (id, 1), &[(0, 1), (1, 1)], &[], 0);
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert!(answered(&r).is_empty(), "{:?}", answered(&r));

    // New records on partition 2 (not listed): only it is answered, with them.
    produce(&mut c, &topic, 2, batch(&[b"c0"]));
    let r = fetch(&mut c, version, t, (id, 2), &[], &[], 5_000);
    let got = answered(&r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 2);
    assert_eq!(got[0].2, vec![(0, Bytes::from_static(b"c0"))]);

    // The long poll waits on every partition of the session: epoch 3 lists only partition
    // 2, and an append to partition 1 ends the wait.
    let addr = b.addr;
    let topic2 = topic.clone();
    let producer = std::thread::spawn(move || {
        let mut p = Client::connect(addr);
        produce(&mut p, &topic2, 1, batch(&[b"b1"]))
    });
    let mut epoch = 3;
    let mut r = fetch(&mut c, version, t, (id, epoch), &[(2, 1)], &[], 30_000);
    producer.join().unwrap();
    while answered(&r).is_empty() {
        // The append landed before the fetch looked: the next one sees it at once.
        epoch += 1;
        r = fetch(&mut c, version, t, (id, epoch), &[], &[], 30_000);
    }
    let got = answered(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (1, 2));
    assert_eq!(got[0].2, vec![(1, Bytes::from_static(b"b1"))]);
    epoch += 1;

    // Records large enough to go from the file straight to the socket arrive whole.
    let big = vec![7u8; 200 * 1024];
    produce(&mut c, &topic, 0, batch(&[&big]));
    let r = fetch(&mut c, version, t, (id, epoch), &[(1, 2)], &[], 5_000);
    let got = answered(&r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0);
    assert_eq!(got[0].2, vec![(1, Bytes::from(big))]);
    epoch += 1;

    // Forgetting partition 0: its new records are not answered any more.
    produce(&mut c, &topic, 0, batch(&[b"a2"]));
    let r = fetch(&mut c, version, t, (id, epoch), &[], &[0], 0);
    assert!(answered(&r).is_empty(), "{:?}", answered(&r));
    epoch += 1;

    // Session errors: a wrong epoch, an unknown id.
    let r = fetch(&mut c, version, t, (id, epoch + 5), &[], &[], 0);
    assert_eq!((r.error_code, r.responses.len()), (BAD_EPOCH, 0));
    let r = fetch(&mut c, version, t, (id ^ 1, 1), &[], &[], 0);
    assert_eq!(r.error_code, NOT_FOUND);
    // The session survives a bad request.
    let r = fetch(&mut c, version, t, (id, epoch), &[], &[], 0);
    assert_eq!((r.error_code, r.session_id), (0, id));

    // A final fetch (epoch -1) closes it and is answered without a session.
    let r = fetch(&mut c, version, t, (id, -1), &[(2, 1)], &[], 0);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r).len(), 1);
    let r = fetch(&mut c, version, t, (id, epoch + 1), &[], &[], 0);
    assert_eq!(r.error_code, NOT_FOUND);
}

#[test]
fn incremental_fetches_by_topic_name() {
    session_flow(12);
}

#[test]
fn incremental_fetches_by_topic_id() {
    session_flow(16);
}

#[test]
fn a_full_fetch_naming_a_session_replaces_it() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    create(&mut c, "replace", 1);
    let t = ("replace", Uuid::nil());
    let first = fetch(&mut c, 12, t, (0, 0), &[(0, 0)], &[], 0).session_id;
    let second = fetch(&mut c, 12, t, (first, 0), &[(0, 0)], &[], 0).session_id;
    assert_ne!(second, 0);
    assert_eq!(
        fetch(&mut c, 12, t, (first, 1), &[], &[], 0).error_code,
        NOT_FOUND
    );
    assert_eq!(fetch(&mut c, 12, t, (second, 1), &[], &[], 0).error_code, 0);
}

#[test]
fn no_sessions_when_the_cache_has_no_slots() {
    let b = TestBroker::start_with(Config {
        fetch_session_cache_slots: 0,
        ..Config::default()
    });
    let mut c = Client::connect(b.addr);
    create(&mut c, "nosess", 1);
    produce(&mut c, "nosess", 0, batch(&[b"x"]));
    let r = fetch(
        &mut c,
        12,
        ("nosess", Uuid::nil()),
        (0, 0),
        &[(0, 0)],
        &[],
        0,
    );
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r)[0].2.len(), 1);
}
