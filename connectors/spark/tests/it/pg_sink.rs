//! [`PgSink`] against a real PostgreSQL server of the test's own (see `harness::Postgres`):
//! every aggregate merges with what is stored, a replay changes nothing, an overlap or a gap
//! is refused naming the partition, a batch caught by a database crash in the middle of its
//! transaction is retried until the server is back; and `sluice-spark wordcount --postgres`
//! keeps exact counts across `kill -9` of itself and across an immediate stop of the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use sluice_spark::{
    Applied, Cell, Error, OffsetRange, Partial, PgSink, ResultSink, RetryPolicy, TopicPartition,
    Updates, WatermarkState,
};

use crate::binary::{latest, random_line, Rng, Spark};
use crate::harness::{eventually, produce_lines, unique, Broker, Postgres};

/// Retries for tests: quick pauses, and a bound well inside the tests' deadlines.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        give_up_after: Duration::from_secs(90),
        attempt_timeout: Duration::from_secs(30),
    }
}

fn cell(window_start: Option<i64>, key: &str) -> Cell {
    Cell {
        window_start,
        key: key.to_owned(),
    }
}

fn updates(cells: Vec<(Cell, Partial)>) -> Updates {
    let mut u = Updates::default();
    for (c, p) in cells {
        u.add(c, p);
    }
    u
}

fn distinct(values: &[&str]) -> Partial {
    Partial::Distinct(
        values
            .iter()
            .map(|v| (*v).to_owned())
            .collect::<BTreeSet<_>>(),
    )
}

fn word_counts(results: &BTreeMap<Cell, f64>) -> HashMap<String, i64> {
    results
        .iter()
        .map(|(c, v)| {
            assert_eq!(c.window_start, None, "{c:?}");
            assert_eq!(v.fract(), 0.0, "{c:?} = {v}");
            (c.key.clone(), *v as i64)
        })
        .collect()
}

/// A table prefix, three batches of one aggregate, and what the table must then hold.
type Case = (&'static str, [Updates; 3], Vec<(Cell, f64)>);

#[tokio::test]
async fn every_aggregate_merges_and_replays_change_nothing() {
    let pg = Postgres::start();
    let w0 = Some(0);
    let w1 = Some(60_000);
    // Per aggregate: three batches, then what the table must hold.
    let cases: Vec<Case> = vec![
        (
            "cnt",
            [
                updates(vec![
                    (cell(None, "a"), Partial::Count(2)),
                    (cell(None, ""), Partial::Count(1)),
                ]),
                updates(vec![
                    (cell(None, "a"), Partial::Count(3)),
                    (cell(None, "c"), Partial::Count(1)),
                ]),
                updates(vec![(cell(None, "a\0"), Partial::Count(1))]),
            ],
            vec![
                (cell(None, ""), 1.0),
                (cell(None, "a"), 5.0),
                (cell(None, "a\u{FFFD}"), 1.0),
                (cell(None, "c"), 1.0),
            ],
        ),
        (
            "total",
            [
                updates(vec![
                    (cell(w0, "x"), Partial::Sum(1.5)),
                    (cell(w1, "x"), Partial::Sum(2.0)),
                ]),
                updates(vec![(cell(w0, "x"), Partial::Sum(0.25))]),
                updates(vec![(cell(w1, "x"), Partial::Sum(-4.0))]),
            ],
            vec![(cell(w0, "x"), 1.75), (cell(w1, "x"), -2.0)],
        ),
        (
            "lowest",
            [
                updates(vec![(cell(w0, "k"), Partial::Min(5.0))]),
                updates(vec![
                    (cell(w0, "k"), Partial::Min(7.0)),
                    (cell(w0, "j"), Partial::Min(-1.0)),
                ]),
                updates(vec![(cell(w0, "k"), Partial::Min(3.0))]),
            ],
            vec![(cell(w0, "j"), -1.0), (cell(w0, "k"), 3.0)],
        ),
        (
            "highest",
            [
                updates(vec![(cell(None, "k"), Partial::Max(5.0))]),
                updates(vec![(cell(None, "k"), Partial::Max(7.0))]),
                updates(vec![(cell(None, "k"), Partial::Max(6.0))]),
            ],
            vec![(cell(None, "k"), 7.0)],
        ),
        (
            "uniq",
            [
                updates(vec![
                    (cell(w0, "k"), distinct(&["a", "b"])),
                    (cell(w1, "k"), distinct(&["a"])),
                ]),
                updates(vec![(cell(w0, "k"), distinct(&["b", "c"]))]),
                updates(vec![
                    (cell(w0, "k"), distinct(&["a"])),
                    (cell(w1, "k"), distinct(&["z", "y"])),
                ]),
            ],
            vec![(cell(w0, "k"), 3.0), (cell(w1, "k"), 3.0)],
        ),
    ];

    for (prefix, batches, want) in cases {
        let mut sink = PgSink::connect_with(&pg.url(), prefix, 2, quick_retry())
            .await
            .unwrap();
        assert_eq!(sink.results_table(), format!("{prefix}_results"));
        let start = sink.restore().await.unwrap();
        assert!(start.offsets.is_empty(), "{prefix}");
        assert_eq!(start.watermark, WatermarkState::default());

        let ranges = [
            [
                OffsetRange::new("t", 0, 0, 10),
                OffsetRange::new("t", 1, 0, 5),
            ],
            [
                OffsetRange::new("t", 0, 10, 12),
                OffsetRange::new("t", 1, 5, 5),
            ],
            [
                OffsetRange::new("t", 0, 12, 13),
                OffsetRange::new("u", 0, 40, 41),
            ],
        ];
        let marks = [
            WatermarkState {
                max_event_ms: Some(1_000),
                late_total: 0,
            },
            WatermarkState {
                max_event_ms: Some(2_000),
                late_total: 3,
            },
            WatermarkState {
                max_event_ms: Some(2_500),
                late_total: 4,
            },
        ];
        for i in 0..3 {
            assert_eq!(
                sink.apply(&ranges[i], &batches[i], marks[i]).await.unwrap(),
                Applied::Applied,
                "{prefix} batch {i}"
            );
            // Each batch again at once: what a retry after an unknown COMMIT outcome meets.
            assert_eq!(
                sink.apply(&ranges[i], &batches[i], marks[i]).await.unwrap(),
                Applied::AlreadyApplied,
                "{prefix} batch {i} replayed"
            );
        }
        let want: BTreeMap<Cell, f64> = want.into_iter().collect();
        assert_eq!(sink.results().await.unwrap(), want, "{prefix}");

        // An older batch after newer ones is no replay of the last one: refused, as Redis does.
        let replay = sink.apply(&ranges[1], &batches[1], marks[0]).await;
        assert!(
            matches!(replay, Err(Error::StoredOffsetMismatch { .. })),
            "{prefix}: batch 1's range t-0 [10, 12) meets stored 13: {replay:?}"
        );
        // Overlapping what was applied, and leaving a gap: refused, naming the partition.
        for (bad, partition) in [
            (vec![OffsetRange::new("t", 0, 5, 15)], "t-0"),
            (
                vec![
                    OffsetRange::new("t", 0, 13, 20),
                    OffsetRange::new("u", 0, 42, 50),
                ],
                "u-0",
            ),
        ] {
            let err = sink.apply(&bad, &batches[0], marks[0]).await.unwrap_err();
            assert!(
                matches!(err, Error::StoredOffsetMismatch { .. }),
                "{prefix}: {err}"
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("partition {partition} ")),
                "{prefix}: {text}"
            );
            assert!(text.contains(&format!("{prefix}_offsets")), "{text}");
        }
        assert_eq!(sink.results().await.unwrap(), want, "{prefix} unchanged");

        // A new process (a new sink) resumes from what the last batch stored.
        let mut again = PgSink::connect_with(&pg.url(), prefix, 1, quick_retry())
            .await
            .unwrap();
        let resumed = again.restore().await.unwrap();
        let offsets: Vec<(TopicPartition, i64)> = resumed.offsets.into_iter().collect();
        assert_eq!(
            offsets,
            vec![
                (TopicPartition::new("t", 0), 13),
                (TopicPartition::new("t", 1), 5),
                (TopicPartition::new("u", 0), 41),
            ],
            "{prefix}"
        );
        assert_eq!(resumed.watermark, marks[2], "{prefix}");
    }
}

#[tokio::test]
async fn a_batch_caught_by_a_database_crash_is_retried_until_it_is_back() {
    let mut pg = Postgres::start();
    let mut sink = PgSink::connect_with(&pg.url(), "crash", 2, quick_retry())
        .await
        .unwrap();
    let count = |w: &str, c: i64| updates(vec![(cell(None, w), Partial::Count(c))]);
    let b1 = [OffsetRange::new("t", 0, 0, 4)];
    assert_eq!(
        sink.apply(&b1, &count("a", 4), WatermarkState::default())
            .await
            .unwrap(),
        Applied::Applied
    );

    // Another session holds the watermark row, so the next batch stops inside its
    // transaction, at the row lock, until the database goes down under it.
    let (holder, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    holder
        .batch_execute("BEGIN; SELECT 1 FROM crash_watermark WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let b2 = [OffsetRange::new("t", 0, 4, 9)];
    let batch = tokio::spawn(async move {
        let applied = sink
            .apply(&b2, &count("a", 5), WatermarkState::default())
            .await;
        (sink, applied)
    });
    eventually(
        Duration::from_secs(30),
        "the batch to wait on the row lock",
        || async {
            let rows = holder
                .query(
                    "SELECT 1 FROM pg_stat_activity \
                     WHERE application_name = 'sluice-spark' AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap();
            (!rows.is_empty()).then_some(())
        },
    )
    .await;
    pg.stop_immediate();
    drop(holder);
    let _ = conn.await;
    assert!(
        !batch.is_finished(),
        "the batch must still be retrying while the database is down"
    );
    pg.start_again();
    let (mut sink, applied) = batch.await.unwrap();
    assert_eq!(applied.unwrap(), Applied::Applied);
    // Exactly once: the first attempt's transaction died with the server.
    assert_eq!(
        word_counts(&sink.results().await.unwrap()),
        HashMap::from([("a".to_owned(), 9)])
    );
    let resumed = sink.restore().await.unwrap();
    assert_eq!(resumed.offsets.get(&TopicPartition::new("t", 0)), Some(&9));
}

/// Waits until the sink holds `want[p]` as partition p's offset.
async fn wait_pg_offsets(sink: &PgSink, topic: &str, want: &[i64], deadline: Duration) {
    eventually(
        deadline,
        "postgres offsets to reach the latest offsets",
        || async {
            let stored = sink.stored_offsets().await.unwrap();
            let got: Vec<i64> = (0..want.len())
                .map(|p| {
                    stored
                        .get(&TopicPartition::new(topic, i32::try_from(p).unwrap()))
                        .copied()
                        .unwrap_or(-1)
                })
                .collect();
            (got == want).then_some(())
        },
    )
    .await;
}

/// Pre-generated rounds of lines per partition, and their word counts.
fn load(
    rng: &mut Rng,
    rounds: usize,
    partitions: i32,
) -> (Vec<Vec<Vec<String>>>, HashMap<String, i64>) {
    let mut expected = HashMap::new();
    let data = (0..rounds)
        .map(|_| {
            (0..partitions)
                .map(|_| {
                    (0..1 + rng.below(40))
                        .map(|_| random_line(rng, &mut expected))
                        .collect()
                })
                .collect()
        })
        .collect();
    (data, expected)
}

fn wordcount_args<'a>(broker: &'a Broker, topic: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "--bootstrap-server",
        broker.addr(),
        "--topics",
        topic,
        "--postgres",
        url,
        "--postgres-pool-size",
        "2",
        "--batch-interval",
        "100ms",
        "--max-rate-per-partition",
        "2000",
        "--starting",
        "earliest",
    ]
}

#[tokio::test]
async fn wordcount_exactly_once_in_postgres_across_kill_9() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start();
    let pg = Postgres::start();
    let client = broker.client().await;
    let topic = unique("pg-eos");
    let partitions = 3;
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();
    let (rounds, expected) = load(&mut rng, 40, partitions);
    let producer = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for round in rounds {
                for (p, lines) in round.iter().enumerate() {
                    produce_lines(&client, &topic, i32::try_from(p).unwrap(), lines).await;
                }
                // Spreads the data over time so that kills land while it flows.
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        })
    };

    let url = pg.url();
    let args = wordcount_args(&broker, &topic, &url);
    let mut kills = 0;
    let mut progress = Vec::new();
    let mut sink: Option<PgSink> = None;
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
        // The tables exist once the first run connected.
        if sink.is_none() {
            sink = Some(
                PgSink::connect_with(&url, "wc", 1, quick_retry())
                    .await
                    .unwrap(),
            );
        }
        let stored: i64 = sink
            .as_ref()
            .unwrap()
            .stored_offsets()
            .await
            .unwrap()
            .values()
            .sum();
        progress.push(stored);
    }
    producer.await.unwrap();
    eprintln!("{kills} kills; records in postgres after each: {progress:?}");
    assert!(
        progress.iter().any(|p| *p > 0),
        "no batch was ever applied before a kill"
    );
    let sink = sink.unwrap();

    let want = latest(&client, &topic, partitions).await;
    let mut spark = Spark::wordcount(&args);
    wait_pg_offsets(&sink, &topic, &want, Duration::from_secs(60)).await;
    spark.stop_after_a_batch().await;
    assert!(
        spark
            .stderr()
            .contains("starting from the offsets stored in postgres"),
        "{}",
        spark.stderr()
    );

    let got = word_counts(&sink.results().await.unwrap());
    let total: i64 = expected.values().sum();
    assert_eq!(got.values().sum::<i64>(), total, "total words");
    assert_eq!(got, expected, "every word counted exactly once");
}

#[tokio::test]
async fn wordcount_exactly_once_across_a_postgres_restart() {
    let (mut rng, seed) = Rng::seeded();
    eprintln!("seed {seed} (set SLUICE_SPARK_IT_SEED to replay)");
    let broker = Broker::start();
    let mut pg = Postgres::start();
    let client = broker.client().await;
    let topic = unique("pg-restart");
    let partitions = 2;
    client
        .create_topic(&topic, partitions, 1, &[])
        .await
        .unwrap();
    let (mut rounds, expected) = load(&mut rng, 30, partitions);
    let url = pg.url();
    let sink = PgSink::connect_with(&url, "wc", 1, quick_retry())
        .await
        .unwrap();
    let args = wordcount_args(&broker, &topic, &url);
    let mut spark = Spark::wordcount(&args);

    let produce = |rounds: Vec<Vec<Vec<String>>>| {
        let client = client.clone();
        let topic = topic.clone();
        async move {
            for round in rounds {
                for (p, lines) in round.iter().enumerate() {
                    produce_lines(&client, &topic, i32::try_from(p).unwrap(), lines).await;
                }
            }
        }
    };
    // A third of the load, applied; then the database crashes.
    let rest = rounds.split_off(10);
    let (second, third) = {
        let mut rest = rest;
        let third = rest.split_off(10);
        (rest, third)
    };
    produce(rounds).await;
    wait_pg_offsets(
        &sink,
        &topic,
        &latest(&client, &topic, partitions).await,
        Duration::from_secs(60),
    )
    .await;
    pg.stop_immediate();
    // The next third arrives while it is down: sluice-spark's batch fails and retries.
    produce(second).await;
    eventually(
        Duration::from_secs(30),
        "sluice-spark to retry a batch against the stopped database",
        || async {
            spark
                .stderr()
                .contains("postgres unavailable; retrying")
                .then_some(())
        },
    )
    .await;
    assert!(spark.exited().is_none(), "{}", spark.stderr());
    pg.start_again();
    // The rest flows while the server is recovering, and after: a second crash in the
    // middle of it, without waiting for a failed batch this time.
    let producer = tokio::spawn(produce(third));
    eventually(
        Duration::from_secs(30),
        "a batch after the restart",
        || async {
            spark
                .stderr()
                .contains("postgres answered again")
                .then_some(())
        },
    )
    .await;
    pg.stop_immediate();
    pg.start_again();
    producer.await.unwrap();

    let want = latest(&client, &topic, partitions).await;
    wait_pg_offsets(&sink, &topic, &want, Duration::from_secs(90)).await;
    let status = spark.interrupt(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}\n{}", spark.stderr());
    let got = word_counts(&sink.results().await.unwrap());
    assert_eq!(
        got.values().sum::<i64>(),
        expected.values().sum::<i64>(),
        "total words"
    );
    assert_eq!(got, expected, "nothing doubled or lost across the restarts");
}
