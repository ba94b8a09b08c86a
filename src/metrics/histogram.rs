//! A histogram with fixed bucket bounds and atomic counts: observing is a short scan of the
//! bounds and three relaxed atomic adds, with no lock and no allocation. Scrapes read a
//! [`Snapshot`], from which the renderer writes cumulative `_bucket` lines or Kafka-style
//! quantiles (Kafka's JMX `TotalTimeMs` and `LogFlushRateAndTimeMs` report 50th..999th
//! percentiles, and the JMX exporter turns them into `quantile` labels).

use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket upper bounds in microseconds for latencies: 50 µs to 30 s, roughly 1-2.5-5 per
/// decade. A request slower than the last bound lands in `+Inf`.
pub const LATENCY_BOUNDS_US: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// The number of buckets: one per bound plus `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A latency histogram over [`LATENCY_BOUNDS_US`].
#[derive(Debug)]
pub struct Histogram {
    /// Per-bucket counts, not cumulative (the renderer sums them).
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram; `const` so a process-wide one can be a `static`.
    pub const fn new() -> Self {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation of `us` microseconds.
    pub fn observe_us(&self, us: u64) {
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Records the time elapsed since `start`.
    pub fn observe_since(&self, start: std::time::Instant) {
        self.observe_us(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
    }

    /// The counts as they are now. Concurrent observations may be half-seen (a bucket
    /// without its sum); Prometheus tolerates that, as every client library's does.
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = [0u64; BUCKETS];
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
        }
        Snapshot {
            counts,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    counts: [u64; BUCKETS],
    /// Sum of all observations, µs.
    pub sum_us: u64,
}

impl Snapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound in µs, cumulative count)` per finite bucket, ascending; the `+Inf`
    /// bucket's cumulative count is [`Snapshot::count`].
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        LATENCY_BOUNDS_US
            .iter()
            .zip(self.counts.iter())
            .scan(0u64, |acc, (&b, &c)| {
                *acc += c;
                Some((b, *acc))
            })
    }

    /// The `q` quantile (0..=1) in µs, interpolated linearly inside its bucket as
    /// Prometheus' `histogram_quantile` does; 0 when empty. One past the last bound reports
    /// that bound.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        let mut lower = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            let Some(&upper) = LATENCY_BOUNDS_US.get(i) else {
                // The +Inf bucket: no upper bound to interpolate towards.
                return lower as f64;
            };
            if c > 0 && (below + c) as f64 >= rank {
                let into = (rank - below as f64) / c as f64;
                return lower as f64 + (upper - lower) as f64 * into;
            }
            below += c;
            lower = upper;
        }
        lower as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new();
        h.observe_us(50);
        h.observe_us(51);
        h.observe_us(40_000_000);
        let s = h.snapshot();
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 40_000_101);
        let cum: Vec<_> = s.cumulative().take(2).collect();
        assert_eq!(cum, [(50, 1), (100, 2)]);
        assert_eq!(s.cumulative().last(), Some((30_000_000, 2)));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let h = Histogram::new();
        for _ in 0..100 {
            h.observe_us(900); // bucket (500, 1000]
        }
        let s = h.snapshot();
        assert_eq!(s.quantile_us(0.5), 750.0);
        assert_eq!(s.quantile_us(1.0), 1000.0);
        assert_eq!(Histogram::new().snapshot().quantile_us(0.99), 0.0);
    }
}
