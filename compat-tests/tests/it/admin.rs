//! Topic administration with Apache Kafka 4.3.1's stock tools (kafka-topics, kafka-configs,
//! kafka-delete-records, kafka-log-dirs), cross-checked with rdkafka, and retention seen by
//! a consumer.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use crate::harness::{assert_success, class, java_tool, poll_until, unique_topic, Broker};
use crate::rk::{self, Rec};

const CONFIGS: &str = "kafka.admin.ConfigCommand";
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";
const LOG_DIRS: &str = "org.apache.kafka.tools.LogDirsCommand";

/// A tool's stdout and stderr together.
pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn topic_configs(bs: &str, topic: &str) -> String {
    let out = java_tool(
        CONFIGS,
        &[
            "--bootstrap-server",
            bs,
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--describe",
        ],
        None,
    );
    assert_success(&out, "kafka-configs --describe");
    text(&out)
}

#[test]
fn stock_admin_tools_change_what_the_broker_holds() {
    let mut broker = Broker::start();
    let topic = unique_topic("admin");
    let bs = broker.addr().to_string();
    let out = kafka_topics_create(&bs, &topic, 1, &[]);
    assert_success(&out, "kafka-topics --create");

    // Partitions grow, never shrink.
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            &topic,
            "--partitions",
            "3",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --alter --partitions 3");
    assert_eq!(rk::partition_count(&bs, &topic), Some(3));
    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            &bs,
            "--alter",
            "--topic",
            &topic,
            "--partitions",
            "2",
        ],
        None,
    );
    assert!(
        text(&out).contains("InvalidPartitionsException"),
        "{}",
        text(&out)
    );

    // Topic configs: add, persist across a restart, delete; unknown keys are named.
    let alter = |bs: &str, args: &[&str]| {
        let mut a = vec![
            "--bootstrap-server",
            bs,
            "--entity-type",
            "topics",
            "--entity-name",
            &topic,
            "--alter",
        ];
        a.extend_from_slice(args);
        java_tool(CONFIGS, &a, None)
    };
    let out = alter(
        &bs,
        &["--add-config", "retention.ms=123456,max.message.bytes=2000"],
    );
    assert_success(&out, "kafka-configs --add-config");
    assert!(topic_configs(&bs, &topic).contains("retention.ms=123456"));
    broker.restart();
    let bs = broker.addr().to_string();
    let described = topic_configs(&bs, &topic);
    assert!(described.contains("retention.ms=123456"), "{described}");
    assert!(described.contains("max.message.bytes=2000"), "{described}");
    let out = alter(&bs, &["--delete-config", "retention.ms"]);
    assert_success(&out, "kafka-configs --delete-config");
    assert!(!topic_configs(&bs, &topic).contains("retention.ms=123456"));
    let out = alter(&bs, &["--add-config", "no.such.config=1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no.such.config"), "{}", text(&out));

    let out = java_tool(
        CONFIGS,
        &[
            "--bootstrap-server",
            &bs,
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--describe",
            "--all",
        ],
        None,
    );
    assert_success(&out, "kafka-configs --describe --all (broker)");
    assert!(
        text(&out).contains("log.retention.ms=604800000"),
        "{}",
        text(&out)
    );

    // A broker default changed at run time reaches topics without their own override,
    // and survives a restart.
    let out = java_tool(
        CONFIGS,
        &[
            "--bootstrap-server",
            &bs,
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--alter",
            "--add-config",
            "log.retention.ms=7777777",
        ],
        None,
    );
    assert_success(&out, "kafka-configs --alter (broker)");
    broker.restart();
    let bs = broker.addr().to_string();
    let out = java_tool(
        CONFIGS,
        &[
            "--bootstrap-server",
            &bs,
            "--entity-type",
            "topics",
            "--entity-name",
            &topic,
            "--describe",
            "--all",
        ],
        None,
    );
    assert!(
        text(&out).contains("retention.ms=7777777"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("DYNAMIC_BROKER_CONFIG:log.retention.ms=7777777"),
        "{}",
        text(&out)
    );

    // kafka-delete-records moves the low watermark; kafka-log-dirs sees the data.
    let one = unique_topic("admin-records");
    rk::create_topic(&bs, &one, 1);
    let recs: Vec<Rec> = (0..10)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("v{i}")))
        .collect();
    rk::produce_ok(&bs, &one, &recs, &[]);
    let out = kafka_delete_records(&bs, &one, 4);
    assert_success(&out, "kafka-delete-records");
    assert!(text(&out).contains("low_watermark: 4"), "{}", text(&out));
    let c = rk::consumer(&bs, &[]);
    let (low, high) = c
        .fetch_watermarks(&one, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (4, 10));
    let out = java_tool(
        LOG_DIRS,
        &[
            "--bootstrap-server",
            &bs,
            "--describe",
            "--topic-list",
            &one,
        ],
        None,
    );
    assert_success(&out, "kafka-log-dirs --describe");
    let t = text(&out);
    assert!(t.contains(&format!("\"partition\":\"{one}-0\"")), "{t}");
    assert!(
        !t.contains("\"size\":0,"),
        "partition should have data: {t}"
    );

    // Deleting a topic removes its data from disk.
    let out = java_tool(
        class::TOPICS,
        &["--bootstrap-server", &bs, "--delete", "--topic", &topic],
        None,
    );
    assert_success(&out, "kafka-topics --delete");
    let out = java_tool(class::TOPICS, &["--bootstrap-server", &bs, "--list"], None);
    assert!(
        !text(&out).lines().any(|l| l.trim() == topic),
        "{}",
        text(&out)
    );
    let data = broker.data_dir();
    assert!(
        poll_until(Duration::from_secs(20), || {
            std::fs::read_dir(&data)
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(&topic))
        }),
        "topic directories still on disk"
    );
}

#[test]
fn retention_deletes_old_segments_and_consumers_reset() {
    let broker = Broker::start_with_config(
        "[log]\nsegment_bytes = 2000\nretention_check_interval_ms = 200\n",
    );
    let bs = broker.addr().to_string();
    let topic = unique_topic("retention");
    let out = kafka_topics_create(&bs, &topic, 1, &["retention.ms=1000"]);
    assert_success(&out, "kafka-topics --create --config retention.ms=1000");
    let recs: Vec<Rec> = (0..60)
        .map(|i| Rec::kv(&format!("k{i}"), &"x".repeat(100)))
        .collect();
    // One record per batch so segments fill and roll.
    rk::produce_ok(
        &bs,
        &topic,
        &recs,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    let c = rk::consumer(&bs, &[]);
    let mut low = 0;
    assert!(
        poll_until(Duration::from_secs(30), || {
            low = c
                .fetch_watermarks(&topic, 0, Duration::from_secs(5))
                .map(|w| w.0)
                .unwrap_or(0);
            low > 0
        }),
        "the earliest offset never moved"
    );
    // A consumer positioned below the new start is reset by its policy to the new start.
    let resetting = rk::consumer(&bs, &[("auto.offset.reset", "earliest")]);
    let got = rk::consume_with(&resetting, &topic, 0, Offset::Offset(0), 1);
    assert!(
        got[0].offset >= low,
        "first record {} is below the log start {low}",
        got[0].offset
    );
}

#[test]
fn compaction_keeps_the_last_value_per_key() {
    let broker =
        Broker::start_with_config("[log]\nsegment_bytes = 1500\ncleaner_backoff_ms = 200\n");
    let bs = broker.addr().to_string();
    let topic = unique_topic("compact");
    let out = kafka_topics_create(
        &bs,
        &topic,
        1,
        &[
            "cleanup.policy=compact",
            "min.cleanable.dirty.ratio=0.01",
            "delete.retention.ms=0",
        ],
    );
    assert_success(&out, "kafka-topics --create (compacted)");
    // 10 keys, 8 versions each, then tombstones for keys 0 and 1, one record per batch so
    // segments roll; the final padding record keeps the interesting ones out of the active
    // segment.
    let mut recs = Vec::new();
    for version in 0..8 {
        for key in 0..10 {
            recs.push(Rec::kv(
                &format!("key{key}"),
                &format!("v{version}-{}", "p".repeat(40)),
            ));
        }
    }
    for key in 0..2 {
        recs.push(Rec {
            key: Some(format!("key{key}").into_bytes()),
            value: None,
            ..Rec::default()
        });
    }
    for i in 0..30 {
        recs.push(Rec::kv(&format!("pad{i}"), &"x".repeat(60)));
    }
    let acked = rk::produce_ok(
        &bs,
        &topic,
        &recs,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    let total = acked.len();
    let last = i64::try_from(total).unwrap() - 1;
    let mut got = Vec::new();
    assert!(
        poll_until(Duration::from_secs(30), || {
            got = read_to(&bs, &topic, last);
            got.iter()
                .filter(|g| g.rec.key.as_deref().is_some_and(|k| k.starts_with(b"key")))
                .count()
                == 8
        }),
        "compaction never left exactly the 8 live keys; saw {} records",
        got.len()
    );
    let live: Vec<(String, String)> = got
        .iter()
        .filter(|g| g.rec.key.as_deref().is_some_and(|k| k.starts_with(b"key")))
        .map(|g| {
            (
                String::from_utf8(g.rec.key.clone().unwrap()).unwrap(),
                String::from_utf8(g.rec.value.clone().unwrap_or_default()).unwrap(),
            )
        })
        .collect();
    for (k, v) in &live {
        assert!(v.starts_with("v7-"), "{k} kept an old value {v}");
        assert!(k != "key0" && k != "key1", "deleted key {k} is back");
    }
    let offsets: Vec<i64> = got.iter().map(|g| g.offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets must increase"
    );
    assert_eq!(got.last().map(|g| g.offset), Some(last));
}

/// Everything in partition 0 from the beginning up to and including offset `last`.
fn read_to(bs: &str, topic: &str, last: i64) -> Vec<rk::Got> {
    let c = rk::consumer(bs, &[]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let g = rk::to_got(&m);
            let done = g.offset >= last;
            got.push(g);
            if done {
                break;
            }
        }
    }
    got
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let broker = Broker::start();
    let bs = broker.addr().to_string();
    let topic = unique_topic("lat");
    let out = kafka_topics_create(&bs, &topic, 1, &["message.timestamp.type=LogAppendTime"]);
    assert_success(&out, "kafka-topics --create (LogAppendTime)");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let rec = Rec {
        key: Some(b"k".to_vec()),
        value: Some(b"v".to_vec()),
        timestamp: Some(1_000),
        ..Rec::default()
    };
    rk::produce_ok(&bs, &topic, &[rec], &[]);
    let got = rk::consume(&bs, &topic, 0, Offset::Beginning, 1);
    let ts = got[0].rec.timestamp.expect("timestamp");
    assert!(
        i128::from(ts) >= i128::try_from(before).unwrap(),
        "timestamp {ts} is the producer's, not the broker's append time"
    );
}

/// Kafka 4.3.1's kafka-delete-records: partition 0 of `topic` up to `offset`.
pub(crate) fn kafka_delete_records(bs: &str, topic: &str, offset: i64) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("offsets.json");
    std::fs::write(
        &json,
        format!(r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":{offset}}}],"version":1}}"#),
    )
    .unwrap();
    java_tool(
        DELETE_RECORDS,
        &[
            "--bootstrap-server",
            bs,
            "--offset-json-file",
            json.to_str().unwrap(),
        ],
        None,
    )
}

/// Kafka 4.3.1's kafka-topics: `--create` of `topic` with `partitions` and each of `configs`
/// (`key=value`) as a `--config`.
pub(crate) fn kafka_topics_create(
    bs: &str,
    topic: &str,
    partitions: u32,
    configs: &[&str],
) -> std::process::Output {
    let partitions = partitions.to_string();
    let mut args = vec![
        "--bootstrap-server",
        bs,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
    ];
    for c in configs {
        args.extend(["--config", c]);
    }
    java_tool(class::TOPICS, &args, None)
}
