//! The same word count against a real Apache Kafka 4.3.1 broker (KRaft, started from the
//! jars `compat-tests/scripts/install-java.sh` caches) and against Sluice: identical data
//! gives identical Redis counts and offsets.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_client::Client;
use sluice_spark::{
    AutoOffsetReset, ConsumerStrategy, DirectStream, Error, OffsetRange, RedisSink, StreamConfig,
    TopicPartition,
};
use sluice_testkit::{kafka_java, kafka_quiet_log_config, Kafka};

use crate::binary::{latest, random_line, wait_redis_offsets, Rng, Spark};
use crate::harness::{eventually, produce_lines, test_config, unique, Broker, Redis};

/// `java` with Kafka's jars on the class path and quiet logging.
fn java(heap: &str) -> Command {
    kafka_java(heap, &kafka_quiet_log_config())
}

/// A client of `kafka` once it answers (a JVM broker takes a few seconds to start).
async fn kafka_client(kafka: &mut Kafka) -> Client {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(c) = Client::connect(test_config(kafka.addr())).await {
            if !c.brokers().is_empty() {
                return c;
            }
        }
        if let Some(status) = kafka.exited() {
            panic!("kafka exited with {status}:\n{}", kafka.log());
        }
        assert!(
            Instant::now() < end,
            "kafka did not start:\n{}",
            kafka.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Produces `data[p]` to partition p of `topic` on `client`, in chunks of 50 lines.
async fn produce_all(client: &Client, topic: &str, data: &[Vec<String>]) {
    client
        .create_topic(topic, i32::try_from(data.len()).unwrap(), 1, &[])
        .await
        .unwrap();
    for (p, lines) in data.iter().enumerate() {
        for chunk in lines.chunks(50) {
            produce_lines(client, topic, i32::try_from(p).unwrap(), chunk).await;
        }
    }
}

/// Runs the word count over `topic` into Redis db `db` until it has read everything, stops
/// it with SIGINT, and returns the counts and offsets Redis holds.
async fn wordcount(
    bootstrap: &str,
    client: &Client,
    topic: &str,
    redis: &Redis,
    db: u32,
) -> (HashMap<String, i64>, Vec<i64>) {
    let url = redis.url(db);
    let group = unique("kafka-compat");
    let mut spark = Spark::wordcount(&[
        "--bootstrap-server",
        bootstrap,
        "--topics",
        topic,
        "--redis",
        &url,
        "--group",
        &group,
        "--batch-interval",
        "200ms",
        "--max-rate-per-partition",
        "2500",
        "--starting",
        "earliest",
    ]);
    let want = latest(client, topic, 3).await;
    let sink = RedisSink::connect(&url, "wc").await.unwrap();
    wait_redis_offsets(&sink, topic, &want, Duration::from_secs(60)).await;
    let status = spark.interrupt(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}\n{}", spark.stderr());
    // The group's commits went to this broker too.
    let committed: Vec<Option<i64>> =
        eventually(Duration::from_secs(10), "group commits", || async {
            let keys: Vec<(String, i32)> = (0..3).map(|p| (topic.to_owned(), p)).collect();
            let c: Vec<Option<i64>> = client
                .fetch_committed(&group, &keys)
                .await
                .ok()?
                .into_iter()
                .map(|c| c.offset)
                .collect();
            Some(c)
        })
        .await;
    assert_eq!(
        committed,
        want.iter().map(|o| Some(*o)).collect::<Vec<_>>(),
        "committed offsets at {bootstrap}"
    );
    (sink.counts().await.unwrap(), want)
}

/// Java's own transactional producer writes 200 records ("0".."199") in several
/// transactions; each commit marker takes an offset. Spark's default refuses the gaps;
/// with `allowNonConsecutiveOffsets` every record is read once and no marker shows up.
async fn transaction_markers_are_gaps(kafka: &Kafka, client: &Client) {
    let topic = unique("txn");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let out = java("-Xmx256m")
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--bootstrap-server", kafka.addr(), "--topic", &topic])
        .args([
            "--num-records",
            "200",
            "--payload-monotonic",
            "--throughput",
            "-1",
        ])
        .args([
            "--transactional-id",
            "sluice-spark-it",
            "--transaction-duration-ms",
            "20",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ProducerPerformance failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = latest(client, &topic, 1).await[0];
    assert!(
        latest > 200,
        "commit markers take offsets (latest {latest})"
    );

    let strategy = || ConsumerStrategy::assign([TopicPartition::new(&topic, 0)]);
    let mut config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let mut strict = DirectStream::create(client.clone(), strategy(), config.clone())
        .await
        .unwrap();
    let err = strict
        .next_batch(0)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NonConsecutive { .. }), "{err}");

    config.allow_non_consecutive_offsets = true;
    let mut lenient = DirectStream::create(client.clone(), strategy(), config)
        .await
        .unwrap();
    let batch = lenient.next_batch(0).await.unwrap();
    assert_eq!(
        batch.offset_ranges(),
        &[OffsetRange::new(&topic, 0, 0, latest)]
    );
    let records = batch.collect().await.unwrap().remove(0);
    let mut values: Vec<i64> = records
        .iter()
        .map(|r| {
            String::from_utf8_lossy(r.value.as_deref().unwrap())
                .parse()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..200).collect::<Vec<i64>>());
}

#[tokio::test]
async fn apache_kafka_gives_the_same_counts_as_sluice() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let mut expected: HashMap<String, i64> = HashMap::new();
    let data: Vec<Vec<String>> = (0..3)
        .map(|_| {
            (0..300 + rng.below(200))
                .map(|_| random_line(&mut rng, &mut expected))
                .collect()
        })
        .collect();
    let topic = unique("app-lines");
    let redis = Redis::start();

    // config/server.properties of Kafka 4.x, plus the dev setting that lets groups form at once.
    let mut kafka = Kafka::spawn(
        "sluice-spark-kafka-",
        "group.initial.rebalance.delay.ms=0",
        None,
    );
    let kafka_client = kafka_client(&mut kafka).await;
    produce_all(&kafka_client, &topic, &data).await;
    let (kafka_counts, kafka_offsets) =
        wordcount(kafka.addr(), &kafka_client, &topic, &redis, 1).await;
    transaction_markers_are_gaps(&kafka, &kafka_client).await;
    drop(kafka);

    let sluice = Broker::start();
    let sluice_client = sluice.client().await;
    produce_all(&sluice_client, &topic, &data).await;
    let (sluice_counts, sluice_offsets) =
        wordcount(sluice.addr(), &sluice_client, &topic, &redis, 2).await;

    assert_eq!(kafka_offsets, sluice_offsets, "same offsets");
    assert_eq!(kafka_counts, expected, "Apache Kafka: every word once");
    assert_eq!(
        sluice_counts, kafka_counts,
        "Sluice counts as Apache Kafka does"
    );
}
