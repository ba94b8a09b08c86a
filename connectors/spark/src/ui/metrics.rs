//! `/metrics`: the stream's metrics in Prometheus's text format (0.0.4), named after Spark's
//! `StreamingSource` gauges (`<app>.StreamingMetrics.streaming.*`):
//!
//! | Prometheus | Spark |
//! |---|---|
//! | `spark_streaming_completed_batches_total` | `totalCompletedBatches` |
//! | `spark_streaming_processed_records_total` | `totalProcessedRecords` |
//! | `spark_streaming_last_completed_batch_records` | `lastReceivedBatch_records` |
//! | `spark_streaming_last_completed_batch_input_rate_records_per_second` | the page's input rate |
//! | `spark_streaming_last_completed_batch_scheduling_delay_ms` | `lastCompletedBatch_schedulingDelay` |
//! | `spark_streaming_last_completed_batch_processing_delay_ms` | `lastCompletedBatch_processingDelay` |
//! | `spark_streaming_last_completed_batch_total_delay_ms` | `lastCompletedBatch_totalDelay` |
//! | `spark_streaming_last_completed_batch_time_ms` | the batch time |
//! | `spark_streaming_last_completed_batch_processing_end_time_ms` | `lastCompletedBatch_processingEndTime` |
//! | `spark_streaming_rate_limit_records_per_second` | the backpressure rate (`+Inf`: none) |
//! | `spark_streaming_batch_interval_ms` | the batch duration |
//!
//! Spark reports -1 for a `lastCompletedBatch_*` gauge before the first batch; here those
//! families have no sample until then, which Prometheus reads as "no data".

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::api::ms;
use crate::listener::{BatchHistory, HistorySnapshot};

/// The text format's `Content-Type`, as Prometheus's client libraries send it.
pub(super) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(super) async fn metrics(State(history): State<BatchHistory>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        render(&history.snapshot()),
    )
}

/// The snapshot as Prometheus text.
pub(super) fn render(s: &HistorySnapshot) -> String {
    let mut out = String::new();
    let last = s.batches.last();
    family(
        &mut out,
        "spark_streaming_completed_batches_total",
        "counter",
        "Batches completed since start (Spark's totalCompletedBatches).",
        Some(s.completed_batches as f64),
    );
    family(
        &mut out,
        "spark_streaming_processed_records_total",
        "counter",
        "Records of every completed batch since start (Spark's totalProcessedRecords).",
        Some(s.processed_records as f64),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_records",
        "gauge",
        "Records in the last completed batch (Spark's lastReceivedBatch_records).",
        last.map(|b| b.records as f64),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_input_rate_records_per_second",
        "gauge",
        "Records of the last completed batch per second of batch interval.",
        last.map(|b| b.input_rate(s.batch_interval)),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_scheduling_delay_ms",
        "gauge",
        "How long the last completed batch waited to start (Spark's lastCompletedBatch_schedulingDelay).",
        last.map(|b| ms(b.scheduling_delay)),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_processing_delay_ms",
        "gauge",
        "How long the last completed batch's job ran (Spark's lastCompletedBatch_processingDelay).",
        last.map(|b| ms(b.processing_delay)),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_total_delay_ms",
        "gauge",
        "Scheduling delay plus processing time of the last completed batch (Spark's lastCompletedBatch_totalDelay).",
        last.map(|b| ms(b.total_delay())),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_time_ms",
        "gauge",
        "The last completed batch's time, ms since the epoch.",
        last.map(|b| b.batch_time_ms as f64),
    );
    family(
        &mut out,
        "spark_streaming_last_completed_batch_processing_end_time_ms",
        "gauge",
        "When the last completed batch's job ended, ms since the epoch (Spark's lastCompletedBatch_processingEndTime).",
        last.map(|b| b.processing_end_ms as f64),
    );
    family(
        &mut out,
        "spark_streaming_rate_limit_records_per_second",
        "gauge",
        "Records/s the last completed batch was limited to: the backpressure estimate, else maxRatePerPartition times partitions; +Inf when unlimited.",
        last.map(|b| b.rate_limit().unwrap_or(f64::INFINITY)),
    );
    family(
        &mut out,
        "spark_streaming_batch_interval_ms",
        "gauge",
        "The batch interval.",
        Some(ms(s.batch_interval)),
    );
    out
}

fn family(out: &mut String, name: &str, ty: &str, help: &str, value: Option<f64>) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {ty}");
    if let Some(v) = value {
        let _ = writeln!(out, "{name} {}", number(v));
    }
}

/// A sample value: `+Inf`, `-Inf`, `NaN` as the text format spells them, else Rust's
/// shortest round-trip form (`7`, `2.5`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::listener::{BatchInfo, StreamingListener};
    use crate::{OffsetRange, RateLimits};

    #[test]
    fn totals_and_last_batch() {
        let h = BatchHistory::new(Duration::from_secs(1), 10);
        let text = render(&h.snapshot());
        assert!(
            text.contains("spark_streaming_completed_batches_total 0\n"),
            "{text}"
        );
        // No sample before the first batch: only the HELP and TYPE lines.
        assert!(!text
            .lines()
            .any(|l| l.starts_with("spark_streaming_last_completed_batch_records ")));
        h.on_batch_completed(&BatchInfo {
            batch_time_ms: 1000,
            offset_ranges: vec![OffsetRange::new("t", 0, 0, 7)],
            records: 7,
            scheduling_delay: Duration::from_millis(2),
            processing_delay: Duration::from_millis(3),
            processing_end_ms: 1005,
            limits: RateLimits {
                estimated_rate: None,
                max_rate_per_partition: 0,
                min_rate_per_partition: 1,
                batch_seconds: 1.0,
            },
        });
        let text = render(&h.snapshot());
        assert!(text.contains("spark_streaming_processed_records_total 7\n"));
        assert!(text.contains("spark_streaming_last_completed_batch_total_delay_ms 5\n"));
        assert!(text.contains("spark_streaming_rate_limit_records_per_second +Inf\n"));
        assert!(text.contains("# TYPE spark_streaming_completed_batches_total counter\n"));
    }
}
