//! Tests: `kafka.consumer.isolation.level=read_committed` on the Kafka source and the Kafka
//! channel, as Flume's Kafka consumers honour it. Topics are written by `sluice-client`'s
//! transactional producer: an aborted transaction, a committed one, then a plain record as a
//! sentinel. With read_committed exactly the committed records and the sentinel arrive.
//! Runs against Sluice, or `$SLUICE_FLUME_IT_BOOTSTRAP` (Apache Kafka).

use std::time::Duration;

use sluice_client::{Client, ProduceOptions, ProduceRecord, TransactionConfig};

use crate::harness::{eventually, unique, Agent, Broker};
use crate::sources::logged_events;

const DEADLINE: Duration = Duration::from_secs(60);

/// Writes, to `topic`/0: an aborted transaction (`{tag}-aborted-N`), a committed one
/// (`{tag}-committed-N`), then a plain `{tag}-sentinel`.
async fn write_transactions(client: &Client, topic: &str, tag: &str) {
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("flume-txn")))
        .await
        .unwrap();
    let recs = |kind: &str| -> Vec<ProduceRecord> {
        (0..3)
            .map(|i| ProduceRecord::new(format!("{tag}-{kind}-{i}")))
            .collect()
    };
    producer.begin().unwrap();
    producer.send(topic, 0, &recs("aborted")).await.unwrap();
    producer.abort().await.unwrap();
    producer.begin().unwrap();
    producer.send(topic, 0, &recs("committed")).await.unwrap();
    producer.commit().await.unwrap();
    client
        .produce(
            topic,
            0,
            &[ProduceRecord::new(format!("{tag}-sentinel"))],
            &ProduceOptions::default(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_source_and_channel_deliver_only_committed_records() {
    let broker = Broker::start_or_external();
    let client = broker.client().await;
    let src = unique("txn-src");
    let chan = unique("txn-chan");
    client.create_topic(&src, 1, 1, &[]).await.unwrap();
    client.create_topic(&chan, 1, 1, &[]).await.unwrap();
    write_transactions(&client, &src, "src").await;
    write_transactions(&client, &chan, "chan").await;

    // Source r1 (read_committed) → memory → logger; Kafka channel kch (read_committed,
    // raw bodies) → logger. Nothing puts into kch: its topic was written above.
    let config = format!(
        "a1.sources = r1\na1.channels = c1 kch\na1.sinks = k1 k2\n\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.kafka.bootstrap.servers = {addr}\n\
         a1.sources.r1.kafka.topics = {src}\n\
         a1.sources.r1.kafka.consumer.group.id = {g1}\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.kafka.consumer.isolation.level = read_committed\n\
         a1.sources.r1.batchSize = 2\n\
         a1.sources.r1.batchDurationMillis = 200\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.kch.type = org.apache.flume.channel.kafka.KafkaChannel\n\
         a1.channels.kch.kafka.bootstrap.servers = {addr}\n\
         a1.channels.kch.kafka.topic = {chan}\n\
         a1.channels.kch.parseAsFlumeEvent = false\n\
         a1.channels.kch.kafka.consumer.group.id = {g2}\n\
         a1.channels.kch.kafka.consumer.auto.offset.reset = earliest\n\
         a1.channels.kch.kafka.consumer.isolation.level = read_committed\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k2.type = logger\n\
         a1.sinks.k2.channel = kch\n",
        addr = broker.addr(),
        g1 = unique("g"),
        g2 = unique("g"),
    );
    let agent = Agent::start(&config, "a1", &[]);
    // The sentinels come after everything else in their partitions: once both are logged,
    // every record before them has been delivered or skipped.
    let bodies = eventually(DEADLINE, "both sentinels logged", || async {
        let bodies: Vec<String> = logged_events(&agent.log())
            .iter()
            .map(|e| e.text())
            .collect();
        (bodies.iter().any(|b| b == "src-sentinel") && bodies.iter().any(|b| b == "chan-sentinel"))
            .then_some(bodies)
    })
    .await;
    for tag in ["src", "chan"] {
        let mine: Vec<&str> = bodies
            .iter()
            .map(String::as_str)
            .filter(|b| b.starts_with(&format!("{tag}-")))
            .collect();
        let want: Vec<String> = (0..3)
            .map(|i| format!("{tag}-committed-{i}"))
            .chain([format!("{tag}-sentinel")])
            .collect();
        assert_eq!(mine, want, "{tag}: only committed records, once, in order");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_uncommitted_source_delivers_aborted_records_too() {
    let broker = Broker::start_or_external();
    let client = broker.client().await;
    let src = unique("txn-ru");
    client.create_topic(&src, 1, 1, &[]).await.unwrap();
    write_transactions(&client, &src, "ru").await;
    let config = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.kafka.bootstrap.servers = {addr}\n\
         a1.sources.r1.kafka.topics = {src}\n\
         a1.sources.r1.kafka.consumer.group.id = {g}\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.batchSize = 10\n\
         a1.sources.r1.batchDurationMillis = 200\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = c1\n",
        addr = broker.addr(),
        g = unique("g"),
    );
    let agent = Agent::start(&config, "a1", &[]);
    let bodies = eventually(DEADLINE, "the sentinel logged", || async {
        let bodies: Vec<String> = logged_events(&agent.log())
            .iter()
            .map(|e| e.text())
            .collect();
        bodies.iter().any(|b| b == "ru-sentinel").then_some(bodies)
    })
    .await;
    let want: Vec<String> = (0..3)
        .map(|i| format!("ru-aborted-{i}"))
        .chain((0..3).map(|i| format!("ru-committed-{i}")))
        .chain(["ru-sentinel".to_owned()])
        .collect();
    assert_eq!(
        bodies, want,
        "Kafka's default isolation: every data record, markers never"
    );
}
