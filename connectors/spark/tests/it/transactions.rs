//! Transactions: a direct stream at `isolation.level=read_committed` (ranges end at the
//! last stable offset, aborted records are never read), and the word count's exactly-once
//! Kafka output across repeated `kill -9`. Runs against Sluice, or against
//! `$SLUICE_SPARK_IT_BOOTSTRAP` (Apache Kafka).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sluice_client::{IsolationLevel, ProduceRecord, TransactionConfig};
use sluice_spark::{
    AutoOffsetReset, ConsumerStrategy, DirectStream, Error, OffsetRange, StreamConfig,
    TopicPartition, OFFSET_RANGES_HEADER,
};

use crate::binary::{latest, random_line, Rng, Spark};
use crate::harness::{eventually, produce_lines, unique, Broker};

fn lines(prefix: &str, n: usize) -> Vec<ProduceRecord> {
    (0..n)
        .map(|i| ProduceRecord::new(format!("{prefix}{i}")))
        .collect()
}

fn values(batch: &[Vec<sluice_spark::FetchedRecord>]) -> Vec<String> {
    batch
        .iter()
        .flatten()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Computes batches until one satisfies `cond` (polling, with a deadline).
async fn batch_until(
    stream: &mut DirectStream,
    what: &str,
    cond: impl Fn(&sluice_spark::Batch) -> bool,
) -> sluice_spark::Batch {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = stream.next_batch(0).await.unwrap();
        if cond(&b) {
            return b;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn read_committed_ranges_stop_at_the_lso_and_skip_aborted_records() {
    let broker = Broker::start_or_external();
    let client = broker.client().await;
    let topic = unique("rc-stream");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    // plain 0-1, aborted 2-4 (+ marker 5), committed 6-7 (+ marker 8), open 9-10.
    produce_lines(&client, &topic, 0, &["p0".to_owned(), "p1".to_owned()]).await;
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("rc-stream-id")))
        .await
        .unwrap();
    producer.begin().unwrap();
    producer
        .send(&topic, 0, &lines("aborted", 3))
        .await
        .unwrap();
    producer.abort().await.unwrap();
    producer.begin().unwrap();
    producer
        .send(&topic, 0, &lines("committed", 2))
        .await
        .unwrap();
    producer.commit().await.unwrap();
    producer.begin().unwrap();
    producer.send(&topic, 0, &lines("open", 2)).await.unwrap();

    let tp = TopicPartition::new(&topic, 0);
    let mut config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    config.set("isolation.level", "read_committed").unwrap();
    config
        .set("spark.streaming.kafka.allowNonConsecutiveOffsets", "true")
        .unwrap();
    assert_eq!(config.isolation_level, IsolationLevel::ReadCommitted);
    let mut stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::assign([tp.clone()]),
        config.clone(),
    )
    .await
    .unwrap();
    // The markers are written after EndTxn answers: wait for the LSO to reach the open
    // transaction's first offset.
    let batch = batch_until(&mut stream, "a batch up to the LSO", |b| {
        b.offset_ranges().iter().map(|r| r.until_offset).max() == Some(9)
    })
    .await;
    let ranges = batch.offset_ranges().to_vec();
    assert_eq!(ranges.last().unwrap().until_offset, 9, "{ranges:?}");
    let mut got = values(&batch.collect().await.unwrap());
    // Earlier empty polls may have produced ranges ending before 9; read those too.
    if ranges[0].from_offset > 0 {
        let head = DirectStream::create(
            client.clone(),
            ConsumerStrategy::assign([tp.clone()]).with_offsets(BTreeMap::from([(tp.clone(), 0)])),
            config.clone(),
        )
        .await
        .unwrap()
        .next_batch(0)
        .await
        .unwrap();
        got = values(&head.collect().await.unwrap());
    }
    assert_eq!(
        got,
        vec!["p0", "p1", "committed0", "committed1"],
        "aborted records are not read and the open transaction is not reached"
    );

    // Once the open transaction commits, the next batch takes it.
    producer.commit().await.unwrap();
    let batch = batch_until(&mut stream, "the committed tail", |b| b.count() > 0).await;
    assert_eq!(
        batch.offset_ranges(),
        &[OffsetRange::new(&topic, 0, 9, 12)],
        "through the commit marker at 11"
    );
    assert_eq!(
        values(&batch.collect().await.unwrap()),
        vec!["open0", "open1"]
    );

    // Without allowNonConsecutiveOffsets the aborted records are gaps, as Spark refuses.
    config
        .set("spark.streaming.kafka.allowNonConsecutiveOffsets", "false")
        .unwrap();
    let batch = DirectStream::create(
        client.clone(),
        ConsumerStrategy::assign([tp.clone()]).with_offsets(BTreeMap::from([(tp, 0)])),
        config,
    )
    .await
    .unwrap()
    .next_batch(0)
    .await
    .unwrap();
    match batch.collect().await {
        Err(Error::NonConsecutive { expected: 2, .. }) => {}
        other => panic!("expected a gap at offset 2, got {other:?}"),
    }
}

/// One committed batch read back from the output topic: its ranges and its word counts.
#[derive(Debug, Default)]
struct OutBatch {
    counts: HashMap<String, i64>,
}

/// Parses `topic:partition:from:until,...`.
fn parse_ranges(text: &str) -> Vec<(i32, i64, i64)> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|r| {
            let parts: Vec<&str> = r.rsplitn(4, ':').collect();
            // rsplitn: until, from, partition, topic
            (
                parts[2].parse().unwrap(),
                parts[1].parse().unwrap(),
                parts[0].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn exactly_once_kafka_output_across_kill_9() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start_or_external();
    let client = broker.client().await;
    let input = unique("eos-in");
    let output = unique("eos-out");
    let group = unique("eos-kafka-group");
    let txn_id = unique("eos-kafka-txn");
    let partitions = 3;
    client
        .create_topic(&input, partitions, 1, &[])
        .await
        .unwrap();
    client.create_topic(&output, 2, 1, &[]).await.unwrap();

    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut rounds: Vec<Vec<Vec<String>>> = Vec::new();
    for _ in 0..40 {
        rounds.push(
            (0..partitions)
                .map(|_| {
                    (0..1 + rng.below(30))
                        .map(|_| random_line(&mut rng, &mut expected))
                        .collect()
                })
                .collect(),
        );
    }
    let producer = {
        let client = client.clone();
        let input = input.clone();
        tokio::spawn(async move {
            for round in rounds {
                for (p, lines) in round.iter().enumerate() {
                    produce_lines(&client, &input, i32::try_from(p).unwrap(), lines).await;
                }
                // Spreads the data over time so that kills land while it flows.
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        })
    };

    let out_spec = format!("kafka:{output}");
    let args = [
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        &input,
        "--output",
        &out_spec,
        "--transactional-id",
        &txn_id,
        "--group",
        &group,
        "--batch-interval",
        "100ms",
        "--max-rate-per-partition",
        "1500",
        "--starting",
        "earliest",
    ];
    let keys: Vec<(String, i32)> = (0..partitions).map(|p| (input.clone(), p)).collect();
    let committed = || async {
        client
            .fetch_committed(&group, &keys)
            .await
            .map(|c| c.iter().map(|o| o.offset.unwrap_or(0)).sum::<i64>())
            .unwrap_or(0)
    };
    let mut kills = 0;
    let mut progress = Vec::new();
    while kills < 5 || !producer.is_finished() {
        let mut spark = Spark::wordcount(&args);
        let wait = Duration::from_millis(400 + rng.below(900));
        tokio::time::sleep(wait).await;
        assert!(
            spark.exited().is_none(),
            "sluice-spark exited on its own\n{}",
            spark.stderr()
        );
        spark.kill9();
        kills += 1;
        progress.push(committed().await);
    }
    producer.await.unwrap();
    eprintln!("{kills} kills; offsets committed after each: {progress:?}");
    assert!(
        progress.iter().any(|p| *p > 0),
        "no batch was ever committed before a kill"
    );

    let want = latest(&client, &input, partitions).await;
    let mut spark = Spark::wordcount(&args);
    eventually(
        Duration::from_secs(90),
        "the group's offsets to reach the end",
        || async {
            let c = client.fetch_committed(&group, &keys).await.ok()?;
            let got: Vec<i64> = c.iter().map(|o| o.offset.unwrap_or(-1)).collect();
            (got == want).then_some(())
        },
    )
    .await;
    // The offsets may have been complete before this run; let it run a batch (its signal
    // handlers are installed by then) before stopping it.
    spark.stop_after_a_batch().await;

    // Read the output at read_committed: group its records into batches by their ranges.
    let out_partitions = client.partitions(&output).await.unwrap();
    let mut batches: BTreeMap<String, OutBatch> = BTreeMap::new();
    let mut uncommitted_records = 0usize;
    for p in out_partitions {
        for isolation in [
            IsolationLevel::ReadCommitted,
            IsolationLevel::ReadUncommitted,
        ] {
            let mut offset = 0;
            loop {
                let r = client
                    .fetch_isolated(&output, p, offset, 1 << 20, Duration::ZERO, isolation)
                    .await
                    .unwrap();
                if r.next_offset == offset {
                    break;
                }
                offset = r.next_offset;
                if isolation == IsolationLevel::ReadUncommitted {
                    uncommitted_records += r.records.len();
                    continue;
                }
                for rec in r.records {
                    let ranges = rec
                        .headers
                        .iter()
                        .find(|h| h.key == OFFSET_RANGES_HEADER)
                        .and_then(|h| h.value.clone())
                        .expect("every output record names its ranges");
                    let ranges = String::from_utf8(ranges.to_vec()).unwrap();
                    let word =
                        String::from_utf8(rec.key.clone().unwrap_or_default().to_vec()).unwrap();
                    let count: i64 = String::from_utf8(rec.value.clone().unwrap().to_vec())
                        .unwrap()
                        .parse()
                        .unwrap();
                    let b = batches.entry(ranges).or_default();
                    assert!(
                        b.counts.insert(word.clone(), count).is_none(),
                        "word {word} twice in one batch: a batch was written twice"
                    );
                }
            }
        }
    }
    // The committed batches' ranges tile each input partition exactly: no gap (a lost
    // batch), no overlap (a batch counted twice).
    let mut per_partition: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for ranges in batches.keys() {
        for (p, from, until) in parse_ranges(ranges) {
            if until > from {
                per_partition.entry(p).or_default().push((from, until));
            }
        }
    }
    for (p, want_end) in want.iter().enumerate() {
        let mut rs = per_partition
            .remove(&i32::try_from(p).unwrap())
            .unwrap_or_default();
        rs.sort();
        let mut next = 0;
        for (from, until) in &rs {
            assert_eq!(*from, next, "partition {p}: ranges {rs:?}");
            next = *until;
        }
        assert_eq!(next, *want_end, "partition {p} read to its end: {rs:?}");
    }
    let mut total: HashMap<String, i64> = HashMap::new();
    for b in batches.values() {
        for (w, c) in &b.counts {
            *total.entry(w.clone()).or_insert(0) += c;
        }
    }
    assert_eq!(total, expected, "every word counted exactly once");
    eprintln!(
        "{} committed batches; {uncommitted_records} records at read_uncommitted vs {} committed",
        batches.len(),
        batches.values().map(|b| b.counts.len()).sum::<usize>()
    );
}
