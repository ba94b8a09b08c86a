//! Apache Kafka 4.3.1's stock Java tools (kafka-topics, console producer, console consumer)
//! against Sluice, cross-checked with rdkafka in both directions. Each tool run is one JVM
//! start (1-2 s), so the scenarios are bundled into few runs.

use rdkafka::Offset;

use crate::harness::{
    assert_success, class, codec_id, java_tool, read_batches, unique_topic, Broker,
};
use crate::rk::{self, Rec};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kafka_topics_create_list_describe() {
    let broker = Broker::start();
    let topic = unique_topic("java-topics");
    let bs = broker.addr();

    let out = java_tool(
        class::TOPICS,
        &[
            "--bootstrap-server",
            bs,
            "--create",
            "--topic",
            &topic,
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
        None,
    );
    assert_success(&out, "kafka-topics --create");
    assert!(
        stdout(&out).contains(&format!("Created topic {topic}.")),
        "unexpected --create output: {}",
        stdout(&out)
    );
    assert_eq!(rk::partition_count(bs, &topic), Some(3));

    let out = java_tool(class::TOPICS, &["--bootstrap-server", bs, "--list"], None);
    assert_success(&out, "kafka-topics --list");
    assert!(
        stdout(&out).lines().any(|l| l.trim() == topic),
        "--list does not show {topic}: {}",
        stdout(&out)
    );

    let out = java_tool(
        class::TOPICS,
        &["--bootstrap-server", bs, "--describe", "--topic", &topic],
        None,
    );
    assert_success(&out, "kafka-topics --describe");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Topic: {topic}")) && text.contains("PartitionCount: 3"),
        "--describe output: {text}"
    );
    for p in 0..3 {
        assert!(
            text.contains(&format!("Partition: {p}\tLeader: ")),
            "--describe lacks partition {p}: {text}"
        );
    }
    assert!(
        !text.contains("Leader: none"),
        "partitions have no leader: {text}"
    );
}

/// Lines `key:value` for the console producer with `parse.key=true`.
fn console_lines(tag: &str) -> (Vec<Rec>, Vec<u8>) {
    let recs: Vec<Rec> = (0..20)
        .map(|i| {
            Rec::kv(
                &format!("key{i}"),
                &format!("{tag} line {i} {}", "compressible ".repeat(8)),
            )
        })
        .collect();
    let mut input = Vec::new();
    for r in &recs {
        input.extend_from_slice(r.key.as_deref().unwrap());
        input.push(b':');
        input.extend_from_slice(r.value.as_deref().unwrap());
        input.push(b'\n');
    }
    (recs, input)
}

#[test]
fn console_producer_every_codec_read_by_rdkafka() {
    let broker = Broker::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("java-prod-{codec}"));
        let (recs, input) = console_lines(codec);
        let mut args = vec![
            "--bootstrap-server",
            broker.addr(),
            "--topic",
            &topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
        ];
        if codec != "none" {
            args.extend(["--compression-codec", codec]);
        }
        let out = java_tool(class::CONSOLE_PRODUCER, &args, Some(input));
        assert_success(&out, &format!("kafka-console-producer ({codec})"));

        let got = rk::consume(broker.addr(), &topic, 0, Offset::Beginning, recs.len());
        for (i, (g, want)) in got.iter().zip(&recs).enumerate() {
            assert_eq!(g.offset, i64::try_from(i).unwrap());
            assert_eq!(g.rec.key, want.key, "{codec}: key of record {i}");
            assert_eq!(g.rec.value, want.value, "{codec}: value of record {i}");
        }

        // The Java producer is idempotent by default (acks=all, enable.idempotence=true), so
        // each batch on disk must carry a producer id from InitProducerId and sequences.
        let batches = read_batches(&broker.partition_dir(&topic, 0));
        assert!(!batches.is_empty());
        let mut seq = 0;
        for b in &batches {
            assert!(
                b.producer_id >= 0,
                "{codec}: Java producer batch without producer id (idempotence not used): {b:?}"
            );
            assert_eq!(b.base_sequence, seq, "{codec}: sequence gap: {batches:?}");
            seq += b.record_count;
            assert_eq!(
                b.codec,
                codec_id(codec),
                "{codec}: batch codec on disk: {b:?}"
            );
        }
    }
}

#[test]
fn rdkafka_produce_console_consumer_reads() {
    let broker = Broker::start();
    let topic = unique_topic("java-cons");
    let recs: Vec<Rec> = (0..15)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("from rdkafka {i}")))
        .collect();
    rk::produce_ok(
        broker.addr(),
        &topic,
        &recs,
        &[("compression.codec", "lz4")],
    );

    // With --partition the console consumer uses assign() + seekToBeginning(), an auto-generated
    // group id and enable.auto.commit=false, so it never needs a group coordinator.
    let n = recs.len().to_string();
    let out = java_tool(
        class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            broker.addr(),
            "--topic",
            &topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            &n,
            "--timeout-ms",
            "30000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=:",
        ],
        None,
    );
    assert_success(&out, "kafka-console-consumer");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    let want: Vec<String> = recs
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                String::from_utf8_lossy(r.key.as_deref().unwrap()),
                String::from_utf8_lossy(r.value.as_deref().unwrap())
            )
        })
        .collect();
    assert_eq!(
        lines,
        want,
        "console consumer output; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("Processed a total of {n} messages")),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kafka-features describe` (Admin.describeFeatures) lists the features a Kafka 4.3.1
/// broker finalises, among them `transaction.version` 2 and `metadata.version` 4.3-IV0
/// (read off a real 4.3.1 with the same tool).
#[test]
fn kafka_features_describe_shows_kafka_4_3_levels() {
    let broker = Broker::start();
    let out = java_tool(
        "org.apache.kafka.tools.FeatureCommand",
        &["--bootstrap-server", broker.addr(), "describe"],
        None,
    );
    assert_success(&out, "kafka-features describe");
    let text = stdout(&out);
    let level = |feature: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(feature))
            .and_then(|l| {
                l.split_whitespace()
                    .skip_while(|w| *w != "FinalizedVersionLevel:")
                    .nth(1)
                    .map(str::to_owned)
            })
    };
    assert_eq!(level("transaction.version").as_deref(), Some("2"), "{text}");
    assert_eq!(level("group.version").as_deref(), Some("1"), "{text}");
    assert_eq!(level("share.version").as_deref(), Some("1"), "{text}");
    assert_eq!(
        level("metadata.version").as_deref(),
        Some("4.3-IV0"),
        "{text}"
    );
}
