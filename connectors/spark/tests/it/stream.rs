//! The library against a real broker: ranges are contiguous and read exactly, starting
//! positions follow Spark's order, the rate cap and backpressure hold, commits go out
//! with the next batch, and new partitions and pattern-matched topics are picked up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_client::CommitOffset;
use sluice_spark::{
    AutoOffsetReset, Batch, ConsumerStrategy, DirectStream, Error, OffsetRange, StreamConfig,
    TopicPartition,
};
use tokio::sync::watch;

use crate::harness::{create_partitions, eventually, produce_lines, unique, Broker};

/// What a job saw of one batch: its ranges, and per range the records' offsets and values.
#[derive(Debug, Clone)]
struct Seen {
    ranges: Vec<OffsetRange>,
    records: Vec<Vec<(i64, String)>>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// What a commit callback was told: the offsets, and whether the commit succeeded.
type Heard = (BTreeMap<TopicPartition, i64>, bool);

/// Reads every record of `batch` and appends what it saw to `log`.
async fn record(batch: &Batch, log: &Log) -> Result<(), sluice_spark::BoxError> {
    let records = batch
        .map_partitions(|p| {
            p.map(|r| {
                let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
                (r.offset, v)
            })
            .collect::<Vec<_>>()
        })
        .await?;
    log.lock().unwrap().push(Seen {
        ranges: batch.offset_ranges().to_vec(),
        records,
    });
    Ok(())
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} line {i}")).collect()
}

/// Per partition, the ranges in batch order.
fn by_partition(log: &[Seen]) -> BTreeMap<TopicPartition, Vec<OffsetRange>> {
    let mut out: BTreeMap<TopicPartition, Vec<OffsetRange>> = BTreeMap::new();
    for s in log {
        for r in &s.ranges {
            out.entry(r.topic_partition()).or_default().push(r.clone());
        }
    }
    out
}

fn assert_contiguous(log: &[Seen]) {
    for (tp, ranges) in by_partition(log) {
        for w in ranges.windows(2) {
            assert_eq!(
                w[0].until_offset, w[1].from_offset,
                "{tp}: ranges {} then {} are not contiguous",
                w[0], w[1]
            );
        }
    }
}

/// Runs `stream` in a task until the returned sender is set to true; returns the task.
fn run_stream(
    mut stream: DirectStream,
    log: Log,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<(DirectStream, sluice_spark::Result<()>)>,
) {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        let result = stream
            .for_each_batch(shutdown, |batch| {
                let log = log.clone();
                async move { record(&batch, &log).await }
            })
            .await;
        (stream, result)
    });
    (stop_tx, task)
}

fn total_read(log: &Log) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .flat_map(|s| s.records.iter())
        .map(Vec::len)
        .sum()
}

#[tokio::test]
async fn ranges_are_contiguous_exact_and_complete() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("exact");
    client.create_topic(&topic, 3, 1, &[]).await.unwrap();
    let mut produced: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for p in 0..3 {
        let l = lines(&format!("p{p} early"), 20);
        produce_lines(&client, &topic, p, &l).await;
        produced.entry(p).or_default().extend(l);
    }
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let log: Log = Arc::default();
    let (stop, task) = run_stream(stream, log.clone());
    // More data while the stream runs, in several produce calls.
    for round in 0..10 {
        for p in 0..3 {
            let l = lines(&format!("p{p} round {round}"), 7);
            produce_lines(&client, &topic, p, &l).await;
            produced.entry(p).or_default().extend(l);
        }
    }
    let total: usize = produced.values().map(Vec::len).sum();
    eventually(Duration::from_secs(30), "every record read", || async {
        (total_read(&log) >= total).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    let (_, result) = task.await.unwrap();
    result.unwrap();

    let log = log.lock().unwrap().clone();
    assert_contiguous(&log);
    let mut read: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for s in &log {
        for (range, recs) in s.ranges.iter().zip(&s.records) {
            let offsets: Vec<i64> = recs.iter().map(|(o, _)| *o).collect();
            let expect: Vec<i64> = (range.from_offset..range.until_offset).collect();
            assert_eq!(offsets, expect, "range {range} read exactly [from, until)");
            read.entry(range.partition)
                .or_default()
                .extend(recs.iter().cloned());
        }
    }
    for (p, want) in &produced {
        let got: Vec<String> = read
            .get(p)
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(&got, want, "partition {p}: every record once, in order");
        let first = by_partition(&log)
            .get(&TopicPartition::new(topic.clone(), *p))
            .unwrap()[0]
            .from_offset;
        assert_eq!(first, 0, "earliest");
    }
}

#[tokio::test]
async fn max_rate_per_partition_caps_every_batch() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("capped");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    for p in 0..2 {
        produce_lines(&client, &topic, p, &lines("x", 150)).await;
    }
    // 200 records/s × 0.1 s = 20 records per partition per batch.
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_max_rate_per_partition(200);
    let stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let log: Log = Arc::default();
    let (stop, task) = run_stream(stream, log.clone());
    eventually(Duration::from_secs(30), "all 300 records read", || async {
        (total_read(&log) >= 300).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().1.unwrap();
    let log = log.lock().unwrap().clone();
    assert_contiguous(&log);
    let mut full = 0;
    for r in log.iter().flat_map(|s| s.ranges.iter()) {
        assert!(r.count() <= 20, "range {r} exceeds the cap of 20");
        if r.count() == 20 {
            full += 1;
        }
    }
    // 150 records = 7 full batches of 20 and one of 10, per partition.
    assert_eq!(full, 14, "while lagging, each batch takes exactly the cap");
}

#[tokio::test]
async fn backpressure_with_a_slow_job_brings_the_rate_below_the_cap() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("slow");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    produce_lines(&client, &topic, 0, &lines("y", 5000)).await;
    // Cap: 2000 records/s = 400 per 200 ms batch. The job handles about 500 records/s.
    let cap_per_batch = 400;
    let config = StreamConfig::new(Duration::from_millis(200))
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_max_rate_per_partition(2000)
        .with_backpressure(true);
    let mut stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let counts: Arc<Mutex<Vec<i64>>> = Arc::default();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let c = counts.clone();
    stream
        .for_each_batch(
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
            move |batch| {
                let c = c.clone();
                let stop = stop_tx.clone();
                async move {
                    let n = batch.count();
                    let read: usize = batch
                        .map_partitions(Iterator::count)
                        .await?
                        .into_iter()
                        .sum();
                    assert_eq!(i64::try_from(read).unwrap(), n);
                    // The job's work: 2 ms per record (this is the load, not a synchronisation).
                    tokio::time::sleep(Duration::from_millis(2 * n.unsigned_abs())).await;
                    let mut c = c.lock().unwrap();
                    c.push(n);
                    if c.len() >= 8 {
                        let _ = stop.send(true);
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    let counts = counts.lock().unwrap().clone();
    assert!(
        counts.iter().all(|n| *n <= cap_per_batch),
        "cap respected: {counts:?}"
    );
    assert_eq!(counts[0], cap_per_batch, "no estimate yet: the cap applies");
    let rate = stream.rate_limit().expect("the estimator published a rate");
    eprintln!("batch sizes {counts:?}, final rate {rate}/s");
    assert!(
        rate < 2000,
        "estimated rate {rate} is below the cap (counts {counts:?})"
    );
    let tail = &counts[4..];
    assert!(
        tail.iter().all(|n| *n < cap_per_batch),
        "after the estimator kicks in, batches stay below the cap: {counts:?}"
    );
}

#[tokio::test]
async fn starting_offsets_explicit_then_committed_then_reset() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("start");
    let group = unique("g");
    client.create_topic(&topic, 3, 1, &[]).await.unwrap();
    for p in 0..3 {
        produce_lines(&client, &topic, p, &lines("z", 10)).await;
    }
    client
        .commit_offsets(
            &group,
            &sluice_client::Generation::simple(),
            &[
                CommitOffset::new(&topic, 0, 2),
                CommitOffset::new(&topic, 1, 4),
            ],
        )
        .await
        .unwrap();
    let explicit: BTreeMap<TopicPartition, i64> = [(TopicPartition::new(&topic, 0), 7)].into();
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_group(&group)
        .with_auto_offset_reset(AutoOffsetReset::Latest);
    let mut stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]).with_offsets(explicit),
        config.clone(),
    )
    .await
    .unwrap();
    for p in 0..3 {
        produce_lines(&client, &topic, p, &lines("w", 1)).await;
    }
    let batch = stream.next_batch(0).await.unwrap();
    assert_eq!(
        batch.offset_ranges(),
        &[
            OffsetRange::new(&topic, 0, 7, 11), // explicit wins over the commit
            OffsetRange::new(&topic, 1, 4, 11), // committed
            OffsetRange::new(&topic, 2, 10, 11), // latest at start
        ]
    );

    // Assign: only the named partitions, earliest when nothing else says.
    let mut assigned = DirectStream::create(
        client.clone(),
        ConsumerStrategy::assign([TopicPartition::new(&topic, 2)]),
        StreamConfig::new(Duration::from_millis(100))
            .with_auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await
    .unwrap();
    let batch = assigned.next_batch(0).await.unwrap();
    assert_eq!(batch.offset_ranges(), &[OffsetRange::new(&topic, 2, 0, 11)]);
    assert_eq!(batch.collect().await.unwrap()[0].len(), 11);

    // auto.offset.reset=none with nothing committed fails, naming the partition.
    let err = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config.with_auto_offset_reset(AutoOffsetReset::None),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::NoOffset { tp } if tp.partition == 2),
        "{err}"
    );
}

#[tokio::test]
async fn commit_async_is_sent_with_the_next_batch() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("commit");
    let group = unique("g");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    for p in 0..2 {
        produce_lines(&client, &topic, p, &lines("c", 5)).await;
    }
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_group(&group)
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let mut stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let keys = vec![(topic.clone(), 0), (topic.clone(), 1)];
    let committed = || async {
        client
            .fetch_committed(&group, &keys)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.offset)
            .collect::<Vec<_>>()
    };
    let b1 = stream.next_batch(0).await.unwrap();
    stream.commit_async(b1.offset_ranges());
    assert_eq!(committed().await, vec![None, None], "queued, not sent");

    produce_lines(&client, &topic, 0, &lines("c", 3)).await;
    let b2 = stream.next_batch(1).await.unwrap();
    assert_eq!(b2.offset_ranges()[0], OffsetRange::new(&topic, 0, 5, 8));
    eventually(
        Duration::from_secs(10),
        "batch 1's ranges committed",
        || async { (committed().await == vec![Some(5), Some(5)]).then_some(()) },
    )
    .await;

    // Several queued commits of a partition: the largest untilOffset wins. The callback
    // hears about the commit and its outcome.
    let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
    let h = heard.clone();
    let callback: sluice_spark::CommitCallback = Arc::new(move |offsets, result| {
        h.lock().unwrap().push((offsets.clone(), result.is_ok()));
    });
    stream
        .commit_queue()
        .commit_async_with_callback(b2.offset_ranges(), callback);
    stream.commit_async(b1.offset_ranges());
    stream.flush_commits().await;
    assert_eq!(committed().await, vec![Some(8), Some(5)]);
    let heard = heard.lock().unwrap().clone();
    let want: BTreeMap<TopicPartition, i64> = [
        (TopicPartition::new(&topic, 0), 8),
        (TopicPartition::new(&topic, 1), 5),
    ]
    .into();
    assert_eq!(heard, vec![(want, true)]);

    // A stream of the same group resumes from there.
    let mut resumed = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        StreamConfig::new(Duration::from_millis(100)).with_group(&group),
    )
    .await
    .unwrap();
    let offsets: Vec<i64> = resumed.current_offsets().values().copied().collect();
    assert_eq!(offsets, vec![8, 5]);
    let b = resumed.next_batch(0).await.unwrap();
    assert_eq!(b.count(), 0);
}

#[tokio::test]
async fn new_partitions_are_picked_up() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("grow");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    produce_lines(&client, &topic, 0, &lines("a", 4)).await;
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let log: Log = Arc::default();
    let (stop, task) = run_stream(stream, log.clone());
    eventually(Duration::from_secs(20), "partition 0 read", || async {
        (total_read(&log) >= 4).then_some(())
    })
    .await;
    create_partitions(broker.addr(), &topic, 3).await;
    client.refresh_metadata(&[&topic]).await.unwrap();
    for p in 1..3 {
        produce_lines(&client, &topic, p, &lines("new", 6)).await;
    }
    eventually(Duration::from_secs(20), "new partitions read", || async {
        (total_read(&log) >= 16).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().1.unwrap();
    let log = log.lock().unwrap().clone();
    assert_contiguous(&log);
    let parts = by_partition(&log);
    for p in 1..3 {
        let ranges = parts
            .get(&TopicPartition::new(&topic, p))
            .unwrap_or_else(|| panic!("partition {p} never in a batch"));
        assert_eq!(
            ranges[0].from_offset, 0,
            "a new partition starts at its beginning"
        );
        assert_eq!(ranges.last().unwrap().until_offset, 6);
    }
}

#[tokio::test]
async fn pattern_picks_up_new_topics() {
    let broker = Broker::start();
    let client = broker.client().await;
    let prefix = unique("pat");
    let first = format!("{prefix}-a");
    client.create_topic(&first, 1, 1, &[]).await.unwrap();
    let other = format!("x{prefix}-c"); // matches only if the pattern were not anchored
    client.create_topic(&other, 1, 1, &[]).await.unwrap();
    produce_lines(&client, &first, 0, &lines("a", 3)).await;
    produce_lines(&client, &other, 0, &lines("c", 3)).await;
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_auto_offset_reset(AutoOffsetReset::Earliest);
    let strategy = ConsumerStrategy::subscribe_pattern(&format!("{prefix}-.*")).unwrap();
    let stream = DirectStream::create(client.clone(), strategy, config)
        .await
        .unwrap();
    let log: Log = Arc::default();
    let (stop, task) = run_stream(stream, log.clone());
    eventually(Duration::from_secs(20), "first topic read", || async {
        (total_read(&log) >= 3).then_some(())
    })
    .await;
    let second = format!("{prefix}-b");
    client.create_topic(&second, 2, 1, &[]).await.unwrap();
    produce_lines(&client, &second, 1, &lines("b", 5)).await;
    eventually(Duration::from_secs(20), "second topic read", || async {
        (total_read(&log) >= 8).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().1.unwrap();
    let log = log.lock().unwrap().clone();
    let parts = by_partition(&log);
    assert!(parts.contains_key(&TopicPartition::new(&second, 0)));
    assert_eq!(
        parts[&TopicPartition::new(&second, 1)]
            .last()
            .unwrap()
            .until_offset,
        5
    );
    assert!(
        parts.keys().all(|tp| tp.topic != other),
        "{other} does not match the whole pattern"
    );
    assert_eq!(total_read(&Arc::new(Mutex::new(log))), 8);
}

#[tokio::test]
async fn a_failed_job_stops_the_stream_after_sending_earlier_commits() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("fail");
    let group = unique("g");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    produce_lines(&client, &topic, 0, &lines("f", 10)).await;
    let config = StreamConfig::new(Duration::from_millis(100))
        .with_group(&group)
        .with_auto_offset_reset(AutoOffsetReset::Earliest)
        .with_max_rate_per_partition(40); // 4 per batch
    let mut stream = DirectStream::create(
        client.clone(),
        ConsumerStrategy::subscribe([topic.clone()]),
        config,
    )
    .await
    .unwrap();
    let commits = stream.commit_queue();
    let mut n = 0;
    let err = stream
        .for_each_batch(std::future::pending(), |batch| {
            n += 1;
            let fail = n == 2;
            let commits = commits.clone();
            async move {
                if fail {
                    return Err("boom".into());
                }
                commits.commit_async(batch.offset_ranges());
                Ok(())
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Job { .. }), "{err}");
    assert!(err.to_string().contains("boom"), "{err}");
    let committed = client
        .fetch_committed(&group, &[(topic.clone(), 0)])
        .await
        .unwrap();
    assert_eq!(
        committed[0].offset,
        Some(4),
        "batch 1 committed, batch 2 not"
    );
}
