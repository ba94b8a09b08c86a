//! Rate control: Spark's PID rate estimator ([`PidRateEstimator`]) and the per-partition
//! clamp that turns a rate into each batch's `untilOffset` ([`clamp`]). Both are plain
//! arithmetic, tested here; the stream feeds them offsets and batch timings.

use std::collections::BTreeMap;

use crate::config::PidConfig;
use crate::range::TopicPartition;

/// Spark's `PIDRateEstimator`: after each completed batch it estimates how many records
/// per second the job can take, from the batch's size, processing time and scheduling
/// delay. The first valid batch only seeds it.
#[derive(Debug, Clone)]
pub struct PidRateEstimator {
    batch_interval_ms: f64,
    pid: PidConfig,
    first_run: bool,
    latest_time: i64,
    latest_rate: f64,
    latest_error: f64,
}

impl PidRateEstimator {
    /// An estimator for batches of `batch_interval_ms`.
    pub fn new(batch_interval_ms: i64, pid: PidConfig) -> Self {
        Self {
            batch_interval_ms: batch_interval_ms as f64,
            pid,
            first_run: true,
            latest_time: -1,
            latest_rate: -1.0,
            latest_error: -1.0,
        }
    }

    /// Feeds one completed batch: `time_ms` when it finished, `elements` records,
    /// `processing_delay_ms` spent running it, `scheduling_delay_ms` it waited for its
    /// turn. Returns the new rate (records/s), or `None` when the batch does not count
    /// (not newer than the last, empty, or instant) or only seeded the estimator.
    pub fn compute(
        &mut self,
        time_ms: i64,
        elements: i64,
        processing_delay_ms: i64,
        scheduling_delay_ms: i64,
    ) -> Option<f64> {
        if time_ms <= self.latest_time || elements <= 0 || processing_delay_ms <= 0 {
            return None;
        }
        let delay_since_update = (time_ms - self.latest_time) as f64 / 1000.0;
        let processing_rate = elements as f64 / processing_delay_ms as f64 * 1000.0;
        // Positive when the last rate was too high.
        let error = self.latest_rate - processing_rate;
        // The scheduling delay, converted to records, is the backlog the job has to catch
        // up on: the integral term.
        let historical_error =
            scheduling_delay_ms as f64 * processing_rate / self.batch_interval_ms;
        let d_error = (error - self.latest_error) / delay_since_update;
        let new_rate = (self.latest_rate
            - self.pid.proportional * error
            - self.pid.integral * historical_error
            - self.pid.derived * d_error)
            .max(self.pid.min_rate);
        self.latest_time = time_ms;
        if self.first_run {
            self.latest_rate = processing_rate;
            self.latest_error = 0.0;
            self.first_run = false;
            None
        } else {
            self.latest_rate = new_rate;
            self.latest_error = error;
            Some(new_rate)
        }
    }
}

/// Rate-limit settings for [`clamp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// The estimated rate for the whole stream (records/s): the backpressure estimate, or
    /// `initialRate` before there is one. `None` or <= 0 when there is no estimate.
    pub estimated_rate: Option<i64>,
    /// `maxRatePerPartition`, 0 = none.
    pub max_rate_per_partition: i64,
    /// `minRatePerPartition`.
    pub min_rate_per_partition: i64,
    /// The batch interval in seconds.
    pub batch_seconds: f64,
}

/// The most records each partition may take this batch, or `None` for no limit:
/// Spark's `maxMessagesPerPartition`. With an estimated rate it is split across
/// partitions in proportion to their lag (and capped by `maxRatePerPartition`);
/// otherwise `maxRatePerPartition` applies to each. A limited partition gets at least
/// `minRatePerPartition` records per batch.
pub fn max_messages_per_partition(
    current: &BTreeMap<TopicPartition, i64>,
    latest: &BTreeMap<TopicPartition, i64>,
    limits: &RateLimits,
) -> Option<BTreeMap<TopicPartition, i64>> {
    let per_partition: BTreeMap<&TopicPartition, f64> =
        match limits.estimated_rate.filter(|r| *r > 0) {
            Some(rate) => {
                let lag: BTreeMap<&TopicPartition, i64> = latest
                    .iter()
                    .map(|(tp, l)| (tp, (l - current.get(tp).copied().unwrap_or(*l)).max(0)))
                    .collect();
                let total: i64 = lag.values().sum();
                if total == 0 {
                    // Spark divides by zero here and gets NaN, which sums to "no limit"; with
                    // no lag there is nothing to limit either way.
                    return None;
                }
                lag.into_iter()
                    .map(|(tp, l)| {
                        let share = l as f64 / total as f64 * rate as f64;
                        let limit = if limits.max_rate_per_partition > 0 {
                            share.min(limits.max_rate_per_partition as f64)
                        } else {
                            share
                        };
                        (tp, limit)
                    })
                    .collect()
            }
            None => latest
                .keys()
                .map(|tp| (tp, limits.max_rate_per_partition as f64))
                .collect(),
        };
    if per_partition.values().sum::<f64>() > 0.0 {
        Some(
            per_partition
                .into_iter()
                .map(|(tp, limit)| {
                    // Scala's Double.toLong truncates toward zero, as `as` does.
                    let msgs = (limits.batch_seconds * limit) as i64;
                    (tp.clone(), msgs.max(limits.min_rate_per_partition))
                })
                .collect(),
        )
    } else {
        None
    }
}

/// Each partition's `untilOffset` for this batch: the latest offset, or less when the
/// rate limits say so (Spark's `clamp`).
pub fn clamp(
    current: &BTreeMap<TopicPartition, i64>,
    latest: &BTreeMap<TopicPartition, i64>,
    limits: &RateLimits,
) -> BTreeMap<TopicPartition, i64> {
    match max_messages_per_partition(current, latest, limits) {
        None => latest.clone(),
        Some(max) => latest
            .iter()
            .map(|(tp, l)| {
                let from = current.get(tp).copied().unwrap_or(*l);
                let msgs = max.get(tp).copied().unwrap_or(0);
                (tp.clone(), from.saturating_add(msgs).min(*l))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn map(v: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        v.iter().map(|(p, o)| (tp(*p), *o)).collect()
    }

    fn limits(est: Option<i64>, max: i64) -> RateLimits {
        RateLimits {
            estimated_rate: est,
            max_rate_per_partition: max,
            min_rate_per_partition: 1,
            batch_seconds: 2.0,
        }
    }

    #[test]
    fn first_valid_batch_only_seeds() {
        let mut e = PidRateEstimator::new(1000, PidConfig::default());
        assert_eq!(e.compute(1000, 0, 100, 0), None, "empty batch ignored");
        assert_eq!(
            e.compute(1000, 100, 0, 0),
            None,
            "zero processing delay ignored"
        );
        assert_eq!(e.compute(1000, 1000, 500, 0), None, "seeds at 2000 rec/s");
        assert_eq!(
            e.compute(1000, 1000, 500, 0),
            None,
            "not newer than the last"
        );
        // Same speed, no delay: the rate stays at the processing rate.
        assert_eq!(e.compute(2000, 1000, 500, 0), Some(2000.0));
    }

    #[test]
    fn slow_processing_and_delay_pull_the_rate_down_to_the_floor() {
        let mut e = PidRateEstimator::new(1000, PidConfig::default());
        e.compute(1000, 2000, 1000, 0); // seeds 2000 rec/s
                                        // Now only 1000 rec/s and 500 ms of scheduling delay:
                                        // error = 2000 - 1000 = 1000; hist = 500 * 1000 / 1000 = 500;
                                        // new = 2000 - 1000 - 0.2 * 500 = 900.
        assert_eq!(e.compute(2000, 1000, 1000, 500), Some(900.0));
        // Hopelessly behind: clamped to minRate.
        assert_eq!(e.compute(3000, 10, 1000, 100_000), Some(100.0));
    }

    #[test]
    fn max_rate_caps_each_partition_and_min_rate_is_a_per_batch_floor() {
        let current = map(&[(0, 0), (1, 100)]);
        let latest = map(&[(0, 10_000), (1, 101)]);
        let until = clamp(&current, &latest, &limits(None, 100));
        // 2 s × 100/s = 200, but partition 1 has only one record.
        assert_eq!(until, map(&[(0, 200), (1, 101)]));
        // No limit at all: latest.
        assert_eq!(clamp(&current, &latest, &limits(None, 0)), latest);
        // A tiny rate: floor(2 × 0.1) = 0 → minRatePerPartition 1.
        let mut tiny = limits(Some(1), 0);
        tiny.batch_seconds = 0.1;
        assert_eq!(
            max_messages_per_partition(&current, &latest, &tiny),
            Some(map(&[(0, 1), (1, 1)]))
        );
    }

    #[test]
    fn estimated_rate_is_split_by_lag_and_capped() {
        let current = map(&[(0, 0), (1, 0), (2, 50)]);
        let latest = map(&[(0, 3000), (1, 1000), (2, 50)]);
        // 400 rec/s over lags 3000:1000:0 → 300, 100, 0 rec/s → ×2 s → 600, 200, max(0,1).
        let max = max_messages_per_partition(&current, &latest, &limits(Some(400), 0)).unwrap();
        assert_eq!(max, map(&[(0, 600), (1, 200), (2, 1)]));
        // The per-partition cap still applies.
        let max = max_messages_per_partition(&current, &latest, &limits(Some(400), 150)).unwrap();
        assert_eq!(max, map(&[(0, 300), (1, 200), (2, 1)]));
        // No lag anywhere: no limit.
        assert_eq!(
            max_messages_per_partition(&latest, &latest, &limits(Some(400), 0)),
            None
        );
    }
}
