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
