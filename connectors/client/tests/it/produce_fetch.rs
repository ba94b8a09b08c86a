//! Produce, fetch and list offsets, topic metadata, and reconnecting after a broker restart.

use std::time::Duration;

use bytes::Bytes;
use sluice_client::{
    Acks, Compression, FetchPosition, FetchedRecord, Header, OffsetSpec, ProduceBatch,
    ProduceOptions, ProduceRecord, ResponseError, TimestampType,
};

use crate::harness::{eventually, test_config, unique, Broker};

const WAIT: Duration = Duration::from_millis(500);
const MAX_BYTES: i32 = 1 << 20;
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn sample(tag: &str, ts: i64) -> Vec<ProduceRecord> {
    vec![
        ProduceRecord::new(format!("{tag}-v0"))
            .with_key(format!("{tag}-k0"))
            .with_header("source", "it")
            .with_header("codec", tag.to_owned())
            .with_timestamp(ts),
        ProduceRecord {
            key: None,
            value: Some(Bytes::from(format!("{tag}-v1"))),
            headers: vec![Header {
                key: "null-valued".to_owned(),
                value: None,
            }],
            timestamp: Some(ts + 1),
        },
        ProduceRecord {
            key: Some(Bytes::from(format!("{tag}-k2"))),
            value: None,
            headers: Vec::new(),
            timestamp: Some(ts + 2),
        },
    ]
}

fn assert_same(got: &[FetchedRecord], sent: &[ProduceRecord], base: i64) {
    assert_eq!(got.len(), sent.len(), "record count");
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        assert_eq!(g.offset, base + i as i64, "offset of record {i}");
        assert_eq!(g.key, s.key, "key of record {i}");
        assert_eq!(g.value, s.value, "value of record {i}");
        assert_eq!(g.headers, s.headers, "headers of record {i}");
        assert_eq!(Some(g.timestamp), s.timestamp, "timestamp of record {i}");
        assert_eq!(g.timestamp_type, TimestampType::Creation);
    }
}

#[tokio::test]
async fn round_trip_with_keys_headers_and_every_codec() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("codecs");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();

    let mut expected_base = 0;
    for (n, codec) in CODECS.into_iter().enumerate() {
        let records = sample(&format!("{codec:?}"), 1_700_000_000_000 + n as i64 * 10);
        let options = ProduceOptions {
            compression: codec,
            ..ProduceOptions::default()
        };
        let base = client.produce(&topic, 0, &records, &options).await.unwrap();
        assert_eq!(base, expected_base, "{codec:?}: base offset");

        let fetched = client
            .fetch(&topic, 0, base, MAX_BYTES, WAIT)
            .await
            .unwrap();
        assert_same(&fetched.records, &records, base);
        assert_eq!(fetched.next_offset, base + 3, "{codec:?}: next offset");
        assert_eq!(fetched.high_watermark, base + 3);

        // A fetch from the middle of a (compressed) batch gets the whole batch from the
        // broker; the client must drop the records before the requested offset.
        let mid = client
            .fetch(&topic, 0, base + 1, MAX_BYTES, WAIT)
            .await
            .unwrap();
        assert_same(&mid.records, &records[1..], base + 1);
        expected_base += 3;
    }

    // Everything at once, from offset 0, across batches of every codec.
    let all = client.fetch(&topic, 0, 0, MAX_BYTES, WAIT).await.unwrap();
    let offsets: Vec<i64> = all.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..15).collect::<Vec<i64>>());
}

#[tokio::test]
async fn fetch_at_the_end_returns_nothing_and_keeps_the_position() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("end");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    client
        .produce(
            &topic,
            0,
            &[ProduceRecord::new("x")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
    let r = client
        .fetch(&topic, 0, 1, MAX_BYTES, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, 1);
    assert_eq!(r.high_watermark, 1);
}

#[tokio::test]
async fn fetch_out_of_range_is_a_typed_error_naming_the_offset() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("oor");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let err = client
        .fetch(&topic, 0, 1_000, MAX_BYTES, WAIT)
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::OffsetOutOfRange),
        "{err}"
    );
    assert!(!err.is_retriable());
    let msg = err.to_string();
    assert!(
        msg.contains(&topic) && msg.contains("partition 0") && msg.contains("offset 1000"),
        "{msg}"
    );
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("offsets");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();

    assert_eq!(
        client
            .list_offsets(&topic, 0, OffsetSpec::Earliest)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        client
            .list_offsets(&topic, 0, OffsetSpec::Latest)
            .await
            .unwrap(),
        Some(0)
    );

    for ts in [1_000, 2_000, 3_000] {
        client
            .produce(
                &topic,
                0,
                &[ProduceRecord::new(format!("at {ts}")).with_timestamp(ts)],
                &ProduceOptions::default(),
            )
            .await
            .unwrap();
    }
    let spec = |s| client.list_offsets(&topic, 0, s);
    assert_eq!(spec(OffsetSpec::Earliest).await.unwrap(), Some(0));
    assert_eq!(spec(OffsetSpec::Latest).await.unwrap(), Some(3));
    assert_eq!(spec(OffsetSpec::Timestamp(0)).await.unwrap(), Some(0));
    assert_eq!(spec(OffsetSpec::Timestamp(1_500)).await.unwrap(), Some(1));
    assert_eq!(spec(OffsetSpec::Timestamp(2_000)).await.unwrap(), Some(1));
    assert_eq!(spec(OffsetSpec::Timestamp(3_000)).await.unwrap(), Some(2));
    assert_eq!(spec(OffsetSpec::Timestamp(3_001)).await.unwrap(), None);

    let many = client
        .list_offsets_many(
            &[(topic.clone(), 0), (topic.clone(), 7)],
            OffsetSpec::Latest,
        )
        .await;
    assert_eq!(many[0].as_ref().unwrap(), &Some(3));
    assert_eq!(
        many[1].as_ref().unwrap_err().kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn topics_partitions_and_create_errors() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("meta");
    client.create_topic(&topic, 4, 1, &[]).await.unwrap();
    assert_eq!(client.partitions(&topic).await.unwrap(), vec![0, 1, 2, 3]);
    assert!(client.topics().await.unwrap().contains(&topic));
    let info = client.topic(&topic).await.unwrap();
    let leader = info.partitions[&2].leader;
    assert!(
        client.brokers().iter().any(|b| b.node_id == leader),
        "leader {leader} is a known broker"
    );

    let again = client.create_topic(&topic, 4, 1, &[]).await.unwrap_err();
    assert_eq!(
        again.kafka_error(),
        Some(ResponseError::TopicAlreadyExists),
        "{again}"
    );

    let mut strict = test_config(broker.addr()).with_auto_topic_creation(false);
    strict.retries = 1;
    let strict = sluice_client::Client::connect(strict).await.unwrap();
    let missing = strict.partitions(&unique("missing")).await.unwrap_err();
    assert_eq!(
        missing.kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition),
        "{missing}"
    );
}

#[tokio::test]
async fn produce_to_a_missing_partition_fails_after_bounded_retries() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("nopart");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let err = client
        .produce(
            &topic,
            3,
            &[ProduceRecord::new("x")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition),
        "{err}"
    );
    assert!(err.to_string().contains("partition 3"), "{err}");
}

#[tokio::test]
async fn produce_batches_across_partitions_and_fetch_many() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("multi");
    client.create_topic(&topic, 3, 1, &[]).await.unwrap();
    let batches: Vec<ProduceBatch> = (0..3)
        .map(|p| ProduceBatch {
            topic: topic.clone(),
            partition: p,
            records: (0..=p)
                .map(|i| ProduceRecord::new(format!("p{p}-{i}")))
                .collect(),
        })
        .chain(std::iter::once(ProduceBatch {
            topic: topic.clone(),
            partition: 0,
            records: vec![ProduceRecord::new("p0-again")],
        }))
        .collect();
    let options = ProduceOptions {
        acks: Acks::Leader,
        compression: Compression::Lz4,
        ..ProduceOptions::default()
    };
    let results = client.produce_batches(&batches, &options).await;
    let offsets: Vec<i64> = results.into_iter().map(|r| r.unwrap()).collect();
    // Partition 0 got two batches (in two requests, in order): offsets 0 and 1.
    assert_eq!(offsets, vec![0, 0, 0, 1]);

    let positions: Vec<FetchPosition> = (0..3)
        .map(|p| FetchPosition {
            topic: topic.clone(),
            partition: p,
            offset: 0,
        })
        .collect();
    let fetched = client.fetch_many(&positions, MAX_BYTES, WAIT).await;
    let values: Vec<Vec<String>> = fetched
        .into_iter()
        .map(|r| {
            r.unwrap()
                .records
                .into_iter()
                .map(|rec| String::from_utf8(rec.value.unwrap().to_vec()).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(values[0], vec!["p0-0", "p0-again"]);
    assert_eq!(values[1], vec!["p1-0", "p1-1"]);
    assert_eq!(values[2], vec!["p2-0", "p2-1", "p2-2"]);
}

#[tokio::test]
async fn acks_none_returns_minus_one_and_the_record_arrives() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("acks0");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let options = ProduceOptions {
        acks: Acks::None,
        ..ProduceOptions::default()
    };
    let offset = client
        .produce(
            &topic,
            0,
            &[ProduceRecord::new("fire-and-forget")],
            &options,
        )
        .await
        .unwrap();
    assert_eq!(offset, -1);
    let got = eventually(Duration::from_secs(10), "the acks=0 record", || async {
        let r = client.fetch(&topic, 0, 0, MAX_BYTES, WAIT).await.ok()?;
        r.records.into_iter().next()
    })
    .await;
    assert_eq!(got.value.as_deref(), Some(&b"fire-and-forget"[..]));
}

#[tokio::test]
async fn auto_created_topic_is_produced_to_via_metadata() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("auto");
    // No create_topic: the metadata lookup for the leader creates it (broker default on).
    let base = client
        .produce(
            &topic,
            0,
            &[ProduceRecord::new("hello")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(base, 0);
    assert_eq!(client.partitions(&topic).await.unwrap(), vec![0]);
}

#[tokio::test]
async fn client_reconnects_after_the_broker_restarts() {
    let mut broker = Broker::start();
    if broker.is_external() {
        eprintln!("skipped: cannot restart an external broker");
        return;
    }
    let client = broker.client().await;
    let topic = unique("restart");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    client
        .produce(
            &topic,
            0,
            &[ProduceRecord::new("before")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();

    broker.restart_on_same_port();

    // The pooled connection died with the old process; the pool sees that before reusing
    // it and connects afresh, so even a non-idempotent produce goes through.
    let base = client
        .produce(
            &topic,
            0,
            &[ProduceRecord::new("after")],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(base, 1);
    let r = client.fetch(&topic, 0, 0, MAX_BYTES, WAIT).await.unwrap();
    let values: Vec<&[u8]> = r
        .records
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    assert_eq!(values, vec![&b"before"[..], &b"after"[..]]);
}

#[tokio::test]
async fn connecting_to_nothing_names_what_was_tried() {
    // A port that was free a moment ago: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let err = sluice_client::Client::connect(test_config(&dead))
        .await
        .unwrap_err();
    assert!(
        matches!(err, sluice_client::Error::NoBrokerAvailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&dead), "{err}");
}
