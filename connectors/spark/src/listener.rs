//! Batch events, Spark's `StreamingListener`: [`DirectStream`](crate::DirectStream) tells
//! every registered [`StreamingListener`] about each completed batch with a [`BatchInfo`]
//! (its time, offset ranges, delays and the rate limit it was computed under).
//! [`BatchHistory`] is the listener behind the streaming page and its metrics: the last
//! N batches (Spark's `spark.streaming.ui.retainedBatches`, 1000) plus running totals.
//! Serving them over HTTP lives in `ui`, not here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::range::OffsetRange;
use crate::rate::RateLimits;

/// Spark's `spark.streaming.ui.retainedBatches` default: completed batches kept for the UI.
pub const DEFAULT_RETAINED_BATCHES: usize = 1000;

/// One completed batch, as Spark's `BatchInfo` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInfo {
    /// The batch time in ms since the epoch (Spark's `batchTime`).
    pub batch_time_ms: i64,
    /// One range per partition, as the job saw them (`HasOffsetRanges`).
    pub offset_ranges: Vec<OffsetRange>,
    /// Records the batch covered (Spark's `numRecords`).
    pub records: i64,
    /// How long the batch waited past its due time before it started (`schedulingDelay`).
    pub scheduling_delay: Duration,
    /// How long the job ran (`processingDelay`).
    pub processing_delay: Duration,
    /// When processing ended, in ms since the epoch (`processingEndTime`).
    pub processing_end_ms: i64,
    /// The limits the batch's ranges were clamped by (backpressure estimate,
    /// `maxRatePerPartition`); see [`BatchInfo::rate_limit`].
    pub limits: RateLimits,
}

impl BatchInfo {
    /// Spark's `totalDelay`: scheduling delay plus processing time.
    pub fn total_delay(&self) -> Duration {
        self.scheduling_delay.saturating_add(self.processing_delay)
    }

    /// The limit in force for the whole stream, records/s, or `None` for no limit: the
    /// backpressure estimate (or `initialRate` before there is one) when set, else
    /// `maxRatePerPartition` times the number of partitions, whichever is lower. The clamp
    /// splits the estimate by lag and caps each share, so this is an upper bound.
    pub fn rate_limit(&self) -> Option<f64> {
        let partitions = self.offset_ranges.len() as f64;
        let per_partition_cap = (self.limits.max_rate_per_partition > 0)
            .then_some(self.limits.max_rate_per_partition as f64);
        match self.limits.estimated_rate.filter(|r| *r > 0) {
            Some(rate) => Some(match per_partition_cap {
                Some(cap) => (rate as f64).min(cap * partitions),
                None => rate as f64,
            }),
            None => per_partition_cap.map(|cap| cap * partitions),
        }
    }

    /// Records per second over the batch interval, as Spark's streaming page shows the
    /// input rate.
    pub fn input_rate(&self, batch_interval: Duration) -> f64 {
        let secs = batch_interval.as_secs_f64();
        if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        }
    }
}

/// Receives batch events (Spark's `StreamingListener`). Called on the stream's task right
/// after the job, so it must be quick and must not block.
pub trait StreamingListener: Send + Sync + std::fmt::Debug {
    /// A batch's job finished successfully (`onBatchCompleted`).
    fn on_batch_completed(&self, batch: &BatchInfo);
}

/// The retained batches and totals, as one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySnapshot {
    /// The batch interval.
    pub batch_interval: Duration,
    /// When the history was created, ms since the epoch (the stream's start).
    pub started_ms: i64,
    /// How many batches are retained at most.
    pub retained: usize,
    /// Batches completed since start (Spark's `totalCompletedBatches`).
    pub completed_batches: u64,
    /// Records of every completed batch since start (Spark's `totalProcessedRecords`).
    pub processed_records: i64,
    /// The retained batches, oldest first.
    pub batches: Vec<BatchInfo>,
}

#[derive(Debug)]
struct Inner {
    batches: VecDeque<BatchInfo>,
    completed_batches: u64,
    processed_records: i64,
}

/// A [`StreamingListener`] that keeps the last `retained` batches and running totals
/// (Spark's `StreamingJobProgressListener`). Cloning shares the same history.
#[derive(Debug, Clone)]
pub struct BatchHistory {
    inner: Arc<Mutex<Inner>>,
    retained: usize,
    batch_interval: Duration,
    started_ms: i64,
}

impl BatchHistory {
    /// An empty history for a stream of `batch_interval` that keeps `retained` batches
    /// (at least one).
    pub fn new(batch_interval: Duration, retained: usize) -> Self {
        let retained = retained.max(1);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                // Grows as batches come; never sized up front from a setting.
                batches: VecDeque::new(),
                completed_batches: 0,
                processed_records: 0,
            })),
            retained,
            batch_interval,
            started_ms: crate::clock::now_ms(),
        }
    }

    /// The batch interval the input rate is computed over.
    pub fn batch_interval(&self) -> Duration {
        self.batch_interval
    }

    /// A copy of the history now.
    pub fn snapshot(&self) -> HistorySnapshot {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        HistorySnapshot {
            batch_interval: self.batch_interval,
            started_ms: self.started_ms,
            retained: self.retained,
            completed_batches: inner.completed_batches,
            processed_records: inner.processed_records,
            batches: inner.batches.iter().cloned().collect(),
        }
    }
}

impl StreamingListener for BatchHistory {
    fn on_batch_completed(&self, batch: &BatchInfo) {
        // A panic elsewhere while the lock was held leaves plain data behind: keep going.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.completed_batches = inner.completed_batches.saturating_add(1);
        inner.processed_records = inner.processed_records.saturating_add(batch.records);
        while inner.batches.len() >= self.retained {
            inner.batches.pop_front();
        }
        inner.batches.push_back(batch.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(time: i64, records: i64, limits: RateLimits) -> BatchInfo {
        BatchInfo {
            batch_time_ms: time,
            offset_ranges: vec![
                OffsetRange::new("t", 0, 0, records / 2),
                OffsetRange::new("t", 1, 0, records - records / 2),
            ],
            records,
            scheduling_delay: Duration::from_millis(5),
            processing_delay: Duration::from_millis(20),
            processing_end_ms: time + 25,
            limits,
        }
    }

    const NO_LIMIT: RateLimits = RateLimits {
        estimated_rate: None,
        max_rate_per_partition: 0,
        min_rate_per_partition: 1,
        batch_seconds: 1.0,
    };

    #[test]
    fn history_keeps_the_last_n_and_counts_all() {
        let h = BatchHistory::new(Duration::from_secs(2), 3);
        for t in 0..5 {
            h.on_batch_completed(&info(t, 10, NO_LIMIT));
        }
        let s = h.snapshot();
        assert_eq!(s.completed_batches, 5);
        assert_eq!(s.processed_records, 50);
        let times: Vec<i64> = s.batches.iter().map(|b| b.batch_time_ms).collect();
        assert_eq!(times, [2, 3, 4]);
        assert_eq!(s.batches[0].total_delay(), Duration::from_millis(25));
        assert_eq!(s.batches[0].input_rate(s.batch_interval), 5.0);
    }

    #[test]
    fn rate_limit_is_the_estimate_capped_by_max_rate() {
        assert_eq!(info(0, 10, NO_LIMIT).rate_limit(), None);
        let capped = RateLimits {
            max_rate_per_partition: 100,
            ..NO_LIMIT
        };
        assert_eq!(info(0, 10, capped).rate_limit(), Some(200.0));
        let estimated = RateLimits {
            estimated_rate: Some(150),
            ..capped
        };
        assert_eq!(info(0, 10, estimated).rate_limit(), Some(150.0));
        let over = RateLimits {
            estimated_rate: Some(500),
            ..capped
        };
        assert_eq!(info(0, 10, over).rate_limit(), Some(200.0));
    }
}
