//! `/api/batches`: the retained batches, newest first (as Spark's batch table lists them),
//! with the totals and the limit in force, as JSON for the page and for scripts.
//!
//! ```json
//! {"batch_interval_ms": 2000, "started_ms": 1732406400000, "retained": 1000,
//!  "completed_batches": 3, "processed_records": 120, "rate_limit_per_second": null,
//!  "batches": [{"batch_time_ms": 1732406406000, "records": 40, "input_rate": 20.0,
//!    "scheduling_delay_ms": 1.2, "processing_delay_ms": 8.5, "total_delay_ms": 9.7,
//!    "processing_end_ms": 1732406406010, "rate_limit_per_second": null,
//!    "offset_ranges": [{"topic": "t", "partition": 0, "from_offset": 80,
//!      "until_offset": 120, "count": 40}]}]}
//! ```
//!
//! A `null` limit means no limit (neither backpressure nor `maxRatePerPartition`).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::listener::{BatchHistory, BatchInfo, HistorySnapshot};

/// `GET /api/batches`.
pub(super) async fn batches(State(history): State<BatchHistory>) -> impl IntoResponse {
    let body = to_json(&history.snapshot()).to_string();
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The snapshot as the document above.
pub(super) fn to_json(s: &HistorySnapshot) -> Value {
    let batches: Vec<Value> = s.batches.iter().rev().map(|b| batch_json(b, s)).collect();
    json!({
        "batch_interval_ms": ms(s.batch_interval),
        "started_ms": s.started_ms,
        "retained": s.retained,
        "completed_batches": s.completed_batches,
        "processed_records": s.processed_records,
        "rate_limit_per_second": s.batches.last().and_then(BatchInfo::rate_limit),
        "batches": batches,
    })
}

fn batch_json(b: &BatchInfo, s: &HistorySnapshot) -> Value {
    let ranges: Vec<Value> = b
        .offset_ranges
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "from_offset": r.from_offset,
                "until_offset": r.until_offset,
                "count": r.count(),
            })
        })
        .collect();
    json!({
        "batch_time_ms": b.batch_time_ms,
        "records": b.records,
        "input_rate": b.input_rate(s.batch_interval),
        "scheduling_delay_ms": ms(b.scheduling_delay),
        "processing_delay_ms": ms(b.processing_delay),
        "total_delay_ms": ms(b.total_delay()),
        "processing_end_ms": b.processing_end_ms,
        "rate_limit_per_second": b.rate_limit(),
        "offset_ranges": ranges,
    })
}

/// Milliseconds with the sub-millisecond part kept: local batches often take under 1 ms.
pub(super) fn ms(d: std::time::Duration) -> f64 {
    // From nanoseconds, so whole milliseconds come out exact (5 ms is 5, not 5.000000001).
    d.as_nanos() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::listener::StreamingListener;
    use crate::{OffsetRange, RateLimits};

    #[test]
    fn newest_batch_first_with_its_ranges() {
        let h = BatchHistory::new(Duration::from_secs(2), 10);
        for (t, until) in [(1000, 10), (3000, 30)] {
            h.on_batch_completed(&BatchInfo {
                batch_time_ms: t,
                offset_ranges: vec![OffsetRange::new("t", 0, until - 10, until)],
                records: 10,
                scheduling_delay: Duration::from_millis(1),
                processing_delay: Duration::from_millis(4),
                processing_end_ms: t + 5,
                limits: RateLimits {
                    estimated_rate: Some(100),
                    max_rate_per_partition: 0,
                    min_rate_per_partition: 1,
                    batch_seconds: 2.0,
                },
            });
        }
        let v = to_json(&h.snapshot());
        assert_eq!(v["completed_batches"], 2);
        assert_eq!(v["processed_records"], 20);
        assert_eq!(v["rate_limit_per_second"], 100.0);
        assert_eq!(v["batches"][0]["batch_time_ms"], 3000);
        assert_eq!(v["batches"][0]["input_rate"], 5.0);
        assert_eq!(v["batches"][0]["total_delay_ms"], 5.0);
        let r = &v["batches"][0]["offset_ranges"][0];
        assert_eq!(
            (&r["from_offset"], &r["until_offset"], &r["count"]),
            (&json!(20), &json!(30), &json!(10))
        );
    }
}
