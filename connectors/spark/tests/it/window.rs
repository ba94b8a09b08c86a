//! `sluice-spark wordcount --window`: event-time windows and the watermark against a
//! running broker and a real `redis-server`. Records carry explicit timestamps, arrive out
//! of order and late; each phase of data is produced only once the previous one is
//! applied, so the watermark in force for every record is known whatever the batching.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sluice_client::{Client, ProduceOptions, ProduceRecord};
use sluice_spark::RedisSink;

use crate::binary::{latest, random_line, Rng, Spark};
use crate::harness::{eventually, unique, Broker, Redis};

/// A window start well after the epoch (a multiple of every window size used here).
pub const BASE: i64 = 28_333_333 * 60_000;

/// Produces `(event time, line)` records to one partition, in one batch.
pub async fn produce_at(client: &Client, topic: &str, partition: i32, recs: &[(i64, String)]) {
    let records: Vec<ProduceRecord> = recs
        .iter()
        .map(|(ts, l)| ProduceRecord {
            timestamp: Some(*ts),
            ..ProduceRecord::new(l.clone().into_bytes())
        })
        .collect();
    client
        .produce(topic, partition, &records, &ProduceOptions::default())
        .await
        .unwrap();
}

/// Waits until `sink` holds the latest offsets of every partition of `topic`.
async fn caught_up(sink: &RedisSink, client: &Client, topic: &str, partitions: i32) {
    let want = latest(client, topic, partitions).await;
    crate::binary::wait_redis_offsets(sink, topic, &want, Duration::from_secs(60)).await;
}

fn counts(v: &[(&str, i64)]) -> HashMap<String, i64> {
    v.iter().map(|(w, c)| ((*w).to_owned(), *c)).collect()
}

#[tokio::test]
async fn windows_count_out_of_order_records_and_report_late_ones() {
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("events");
    let late_topic = unique("late");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    client.create_topic(&late_topic, 1, 1, &[]).await.unwrap();
    let url = redis.url(1);
    let mut spark = Spark::wordcount(&[
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        &topic,
        "--redis",
        &url,
        "--batch-interval",
        "100ms",
        "--starting",
        "earliest",
        "--window",
        "1m",
        "--watermark",
        "30s",
        "--late",
        &format!("kafka:{late_topic}"),
        "--top",
        "100",
    ]);
    let sink = RedisSink::connect(&url, "wc").await.unwrap();
    let s = |secs: i64| BASE + secs * 1000;

    // Out of order; the max, 130 s, moves the watermark to 100 s after the batch:
    // window [0, 60) is final.
    let phase1 = [
        (s(10), "a b".to_owned()),
        (s(70), "a".to_owned()),
        (s(5), "b".to_owned()),
        (s(130), "c".to_owned()),
    ];
    produce_at(&client, &topic, 0, &phase1).await;
    caught_up(&sink, &client, &topic, 1).await;
    assert_eq!(sink.final_windows().await.unwrap(), vec![BASE]);
    // 20 s: its window is final, late. 95 s: below the watermark (100 s) but its window
    // [60, 120) is not final: counted, as Spark does. 200 s moves the watermark to 170 s.
    let phase2 = [
        (s(20), "a late".to_owned()),
        (s(95), "a".to_owned()),
        (s(200), "d".to_owned()),
    ];
    produce_at(&client, &topic, 0, &phase2).await;
    caught_up(&sink, &client, &topic, 1).await;
    // 100 s: window [60, 120) is final now, late. 150 s: window [120, 180) still open.
    let phase3 = [(s(100), "e".to_owned()), (s(150), "c".to_owned())];
    produce_at(&client, &topic, 0, &phase3).await;
    caught_up(&sink, &client, &topic, 1).await;

    assert_eq!(
        sink.windows().await.unwrap(),
        vec![BASE, s(60), s(120), s(180)]
    );
    assert_eq!(
        sink.window_counts(BASE).await.unwrap(),
        counts(&[("a", 1), ("b", 2)])
    );
    assert_eq!(
        sink.window_counts(s(60)).await.unwrap(),
        counts(&[("a", 2)])
    );
    assert_eq!(
        sink.window_counts(s(120)).await.unwrap(),
        counts(&[("c", 2)])
    );
    assert_eq!(
        sink.window_counts(s(180)).await.unwrap(),
        counts(&[("d", 1)])
    );
    assert_eq!(sink.final_windows().await.unwrap(), vec![BASE, s(60)]);
    let wm = sink.watermark_state().await.unwrap();
    assert_eq!(wm.max_event_ms, Some(s(200)));
    assert_eq!(wm.late_total, 2);
    assert!(
        sink.counts().await.unwrap().is_empty(),
        "no unwindowed counts"
    );

    // What the batches printed: the late records in their batch lines, the final windows.
    let out = eventually(
        Duration::from_secs(30),
        "the third phase printed",
        || async {
            let out = spark.stdout.snapshot();
            out.iter()
                .any(|l| l.starts_with("watermark ") && l.ends_with("late_total 2"))
                .then_some(out)
        },
    )
    .await;
    let lates: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("watermark ") && !l.contains(" late 0 "))
        .collect();
    assert_eq!(
        lates,
        vec![
            &format!("watermark {} late 1 late_total 1", s(170)),
            &format!("watermark {} late 1 late_total 2", s(170)),
        ],
        "{out:#?}"
    );
    let want_final = [
        format!("window {BASE} {} final (b,2) (a,1)", s(60)),
        format!("window {} {} final (a,2)", s(60), s(120)),
    ];
    for w in &want_final {
        assert!(out.contains(w), "{w} missing from {out:#?}");
    }
    assert!(
        out.contains(&format!("window {} {} updated (c,2)", s(120), s(180))),
        "{out:#?}"
    );

    // The side output holds the two late records, unchanged.
    let got = eventually(Duration::from_secs(30), "two late records", || async {
        let f = client
            .fetch(&late_topic, 0, 0, 1 << 20, Duration::from_millis(100))
            .await
            .unwrap();
        (f.records.len() >= 2).then_some(f.records)
    })
    .await;
    let got: Vec<(i64, String)> = got
        .iter()
        .map(|r| {
            (
                r.timestamp,
                String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(s(20), "a late".to_owned()), (s(100), "e".to_owned())]
    );
    let status = spark.interrupt(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}\n{}", spark.stderr());
}

/// Phase k of the kill test: per partition, records in [k*20 s, k*20 s + 20 s) in random
/// order (one at the phase's last ms so the max is known), plus late ones in
/// [k*20 s - 40 s, k*20 s - 30 s), whose 10 s window ends at or below the watermark left by
/// phase k - 1 (its max is at least k*20 s - 1 ms, minus 25 s).
pub fn phase(
    rng: &mut Rng,
    k: i64,
    partitions: i32,
    expected: &mut BTreeMap<i64, HashMap<String, i64>>,
    late: &mut u64,
) -> Vec<Vec<(i64, String)>> {
    let start = BASE + k * 20_000;
    (0..partitions)
        .map(|p| {
            let mut recs = Vec::new();
            for i in 0..20 + rng.below(20) {
                let t = if i == 0 && p == 0 {
                    start + 19_999
                } else {
                    start + i64::try_from(rng.below(20_000)).unwrap()
                };
                let w = t - t.rem_euclid(10_000);
                recs.push((t, random_line(rng, expected.entry(w).or_default())));
            }
            if k > 0 {
                for _ in 0..rng.below(4) {
                    let t = start - 40_000 + i64::try_from(rng.below(10_000)).unwrap();
                    recs.push((t, random_line(rng, &mut HashMap::new())));
                    *late += 1;
                }
            }
            // Out of order within the phase.
            for i in (1..recs.len()).rev() {
                let j = usize::try_from(rng.below(u64::try_from(i + 1).unwrap())).unwrap();
                recs.swap(i, j);
            }
            recs
        })
        .collect()
}

#[tokio::test]
async fn windows_exact_across_kill_9_and_equal_to_an_uninterrupted_run() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start();
    let redis = Redis::start();
    let client = broker.client().await;
    let topic = unique("ev-kill");
    let partitions = 2;
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();
    let url = redis.url(2);
    let args = |prefix: &'static str| {
        vec![
            "--bootstrap-server".to_owned(),
            broker.addr().to_owned(),
            "--topics".to_owned(),
            topic.clone(),
            "--redis".to_owned(),
            url.clone(),
            "--redis-prefix".to_owned(),
            prefix.to_owned(),
            "--batch-interval".to_owned(),
            "100ms".to_owned(),
            "--max-rate-per-partition".to_owned(),
            "100".to_owned(),
            "--starting".to_owned(),
            "earliest".to_owned(),
            "--window".to_owned(),
            "10s".to_owned(),
            "--watermark".to_owned(),
            "25s".to_owned(),
        ]
    };
    let killed_args = args("killed");
    let steady_args = args("steady");
    let start = |a: &[String]| Spark::wordcount(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let killed = RedisSink::connect(&url, "killed").await.unwrap();
    let steady = RedisSink::connect(&url, "steady").await.unwrap();

    let mut expected: BTreeMap<i64, HashMap<String, i64>> = BTreeMap::new();
    let mut late = 0u64;
    let phases: Vec<_> = (0..8)
        .map(|k| phase(&mut rng, k, partitions, &mut expected, &mut late))
        .collect();
    let mut steady_run = start(&steady_args);
    let producer = {
        let (client, topic) = (client.clone(), topic.clone());
        let (killed, steady) = (killed.clone(), steady.clone());
        tokio::spawn(async move {
            for ph in phases {
                for (p, recs) in ph.iter().enumerate() {
                    produce_at(&client, &topic, i32::try_from(p).unwrap(), recs).await;
                }
                // The next phase only once both runs hold this one (watermark included).
                caught_up(&killed, &client, &topic, partitions).await;
                caught_up(&steady, &client, &topic, partitions).await;
            }
        })
    };
    let mut kills = 0;
    let mut progress = Vec::new();
    while kills < 5 || !producer.is_finished() {
        let mut spark = start(&killed_args);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
        assert!(
            spark.exited().is_none(),
            "sluice-spark exited on its own\n{}",
            spark.stderr()
        );
        spark.kill9();
        kills += 1;
        progress.push(killed.stored_offsets().await.unwrap().values().sum::<i64>());
    }
    producer.await.unwrap();
    eprintln!("{kills} kills; records in redis after each: {progress:?}");
    assert!(
        progress.iter().any(|p| *p > 0),
        "no batch was ever applied before a kill"
    );
    let mut last = start(&killed_args);
    caught_up(&killed, &client, &topic, partitions).await;
    caught_up(&steady, &client, &topic, partitions).await;
    // A batch first: a SIGINT that lands before the process has installed its handler
    // would end it by the signal rather than by a clean stop.
    for run in [&mut last, &mut steady_run] {
        run.stop_after_a_batch().await;
    }

    let starts: Vec<i64> = expected.keys().copied().collect();
    for sink in [&killed, &steady] {
        assert_eq!(sink.windows().await.unwrap(), starts);
        for (s, want) in &expected {
            assert_eq!(&sink.window_counts(*s).await.unwrap(), want, "window {s}");
        }
        let wm = sink.watermark_state().await.unwrap();
        assert_eq!(wm.late_total, late, "late records counted exactly once");
        assert_eq!(wm.max_event_ms, Some(BASE + 7 * 20_000 + 19_999));
    }
    // The final max 159.999 s minus 25 s: windows ending at or before 134.999 s are final.
    let finals: Vec<i64> = starts
        .iter()
        .copied()
        .filter(|s| s + 10_000 <= BASE + 7 * 20_000 + 19_999 - 25_000)
        .collect();
    assert_eq!(killed.final_windows().await.unwrap(), finals);
    assert_eq!(steady.final_windows().await.unwrap(), finals);
}
