//! [`RedisSink`] against a real `redis-server`: a batch is applied atomically, a replay is
//! ignored, an overlap or a gap is refused without changing anything.

use std::collections::HashMap;

use sluice_spark::{Applied, Error, OffsetRange, RedisSink, TopicPartition};

use crate::harness::Redis;

fn counts(v: &[(&str, i64)]) -> HashMap<String, i64> {
    v.iter().map(|(w, c)| ((*w).to_owned(), *c)).collect()
}

#[tokio::test]
async fn replay_is_ignored_and_overlap_or_gap_refused() {
    let redis = Redis::start();
    let sink = RedisSink::connect(&redis.url(0), "wc").await.unwrap();
    assert_eq!(sink.counts_key(), "wc:counts");
    assert_eq!(sink.offsets_key(), "wc:offsets");
    assert!(sink.stored_offsets().await.unwrap().is_empty());

    let b1 = [
        OffsetRange::new("t", 0, 0, 10),
        OffsetRange::new("t", 1, 3, 5),
    ];
    let c1 = counts(&[("a", 2), ("", 1), ("b", 7)]);
    assert_eq!(sink.apply(&b1, &c1).await.unwrap(), Applied::Applied);
    assert_eq!(sink.counts().await.unwrap(), c1);

    // The same batch again: a replay, nothing added. The server forgot the script in
    // between, so this goes through EVALSHA's fallback to EVAL.
    let mut conn = redis::Client::open(redis.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(sink.apply(&b1, &c1).await.unwrap(), Applied::AlreadyApplied);
    assert_eq!(sink.counts().await.unwrap(), c1);

    // Overlapping the applied range, and leaving a gap: refused, nothing changes.
    for bad in [
        vec![OffsetRange::new("t", 0, 5, 15)],
        vec![
            OffsetRange::new("t", 0, 10, 20),
            OffsetRange::new("t", 1, 6, 9),
        ],
    ] {
        let err = sink.apply(&bad, &counts(&[("a", 100)])).await.unwrap_err();
        assert!(matches!(err, Error::OffsetMismatch { .. }), "{err}");
        assert!(err.to_string().contains("wc:offsets"), "{err}");
    }
    assert_eq!(sink.counts().await.unwrap(), c1);

    // The next batch, with a partition seen for the first time.
    let b2 = [
        OffsetRange::new("t", 0, 10, 12),
        OffsetRange::new("t", 1, 5, 5),
        OffsetRange::new("u", 0, 40, 41),
    ];
    assert_eq!(
        sink.apply(&b2, &counts(&[("a", 1), ("c", 1)]))
            .await
            .unwrap(),
        Applied::Applied
    );
    assert_eq!(
        sink.counts().await.unwrap(),
        counts(&[("a", 3), ("", 1), ("b", 7), ("c", 1)])
    );
    let stored = sink.stored_offsets().await.unwrap();
    assert_eq!(stored.get(&TopicPartition::new("t", 0)), Some(&12));
    assert_eq!(stored.get(&TopicPartition::new("t", 1)), Some(&5));
    assert_eq!(stored.get(&TopicPartition::new("u", 0)), Some(&41));

    // Another prefix in the same database is independent.
    let other = RedisSink::connect(&redis.url(0), "other").await.unwrap();
    assert!(other.stored_offsets().await.unwrap().is_empty());
}

/// As a `ResultSink`: sums add, min and max compare, distinct counts keep a set per cell,
/// across batches; the watermark state rides with the offsets; a replay changes nothing.
#[tokio::test]
async fn result_sink_merges_every_aggregate_with_the_watermark() {
    use std::collections::BTreeSet;

    use sluice_spark::{Aggregate, Cell, Partial, ResultSink, Updates, WatermarkState, Windows};

    let redis = Redis::start();
    let url = redis.url(4);
    let windows = Windows::tumbling(std::time::Duration::from_secs(10)).unwrap();
    let mut sink = RedisSink::connect(&url, "agg")
        .await
        .unwrap()
        .with_windows(windows, std::time::Duration::from_secs(5));
    let cp = sink.restore().await.unwrap();
    assert!(cp.offsets.is_empty());
    assert_eq!(cp.watermark, WatermarkState::default());

    let set =
        |v: &[&str]| Partial::Distinct(v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>());
    let batches: [(Partial, Partial, Partial, Partial); 2] = [
        (
            Partial::Sum(1.5),
            Partial::Min(3.0),
            Partial::Max(3.0),
            set(&["x", "y"]),
        ),
        (
            Partial::Sum(2.0),
            Partial::Min(-1.0),
            Partial::Max(2.0),
            set(&["y", "z"]),
        ),
    ];
    let mut from = 0;
    for (i, (sum, min, max, distinct)) in batches.into_iter().enumerate() {
        let ranges = [OffsetRange::new("t", 0, from, from + 5)];
        from += 5;
        let wm = WatermarkState {
            max_event_ms: Some(16_000 + 10_000 * i64::try_from(i).unwrap()),
            late_total: u64::try_from(i).unwrap(),
        };
        for (agg, partial) in [
            (Aggregate::Sum, sum),
            (Aggregate::Min, min),
            (Aggregate::Max, max),
            (Aggregate::DistinctCount, distinct),
        ] {
            let mut u = Updates::default();
            u.add(Cell::windowed(0, agg.name()), partial.clone());
            // Another prefix per aggregate keeps each batch's offsets apart.
            let mut s = RedisSink::connect(&url, &format!("agg-{agg}"))
                .await
                .unwrap()
                .with_windows(windows, std::time::Duration::from_secs(5));
            assert_eq!(
                ResultSink::apply(&mut s, &ranges, &u, wm).await.unwrap(),
                Applied::Applied
            );
            assert_eq!(
                ResultSink::apply(&mut s, &ranges, &u, wm).await.unwrap(),
                Applied::AlreadyApplied,
                "a replay"
            );
            let mut unwindowed = Updates::default();
            unwindowed.add(Cell::unwindowed("k"), partial);
            assert_eq!(
                ResultSink::apply(&mut sink, &ranges_of(i, agg), &unwindowed, wm)
                    .await
                    .unwrap(),
                Applied::Applied
            );
        }
    }
    let value = |prefix: &str, key: &str| {
        let url = url.clone();
        let (prefix, key) = (prefix.to_owned(), key.to_owned());
        async move {
            let s = RedisSink::connect(&url, &prefix).await.unwrap();
            s.window_values(0)
                .await
                .unwrap()
                .get(&key)
                .cloned()
                .unwrap()
        }
    };
    assert_eq!(value("agg-sum", "sum").await, "3.5");
    assert_eq!(value("agg-min", "min").await, "-1");
    assert_eq!(value("agg-max", "max").await, "3");
    assert_eq!(value("agg-distinct_count", "distinct_count").await, "3");
    let s = RedisSink::connect(&url, "agg-max").await.unwrap();
    let wm = s.watermark_state().await.unwrap();
    assert_eq!(wm.max_event_ms, Some(26_000));
    assert_eq!(wm.late_total, 1);
    let s = s.with_windows(windows, std::time::Duration::from_secs(5));
    // Watermark 21 s after the second batch: window [0, 10) is final.
    assert_eq!(s.final_windows().await.unwrap(), vec![0]);

    // Unwindowed results go to `<prefix>:<aggregate>` (`<prefix>:counts` for counts).
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let get = |key: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("HGET")
                .arg(key)
                .arg("k")
                .query_async::<String>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(get("agg:sum").await, "3.5");
    assert_eq!(get("agg:min").await, "-1");
    assert_eq!(get("agg:max").await, "3");
    assert_eq!(get("agg:distinct_count").await, "3");
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("agg:distinct_count:distinct:k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members.len(), 3);
    let cp = sink.restore().await.unwrap();
    assert_eq!(cp.watermark.late_total, 1);
    assert_eq!(cp.offsets.len(), 4);
}

/// One partition per aggregate, so the unwindowed sink's batches line up.
fn ranges_of(batch: usize, agg: sluice_spark::Aggregate) -> [OffsetRange; 1] {
    let from = i64::try_from(batch).unwrap() * 5;
    [OffsetRange::new(agg.name(), 0, from, from + 5)]
}
