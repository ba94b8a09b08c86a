//! [`StreamConfig`]: the settings of a direct stream, with Spark's and Kafka's key names and
//! defaults. [`StreamConfig::set`] takes the Spark/Kafka key names, so a job's existing
//! `SparkConf` and `kafkaParams` entries can be carried over as they are.
//!
//! Not here: where the stream starts (that is the [`ConsumerStrategy`](crate::ConsumerStrategy)),
//! and the Kafka client's own connection settings ([`sluice_client::ClientConfig`]).

use std::time::Duration;

use sluice_client::IsolationLevel;

use crate::error::{Error, Result};

/// Spark's `spark.streaming.kafka.minRatePerPartition` default (since 2.4).
pub(crate) const DEFAULT_MIN_RATE_PER_PARTITION: i64 = 1;
/// Spark's `spark.streaming.backpressure.pid.proportional` default.
pub(crate) const DEFAULT_PID_PROPORTIONAL: f64 = 1.0;
/// Spark's `spark.streaming.backpressure.pid.integral` default.
pub(crate) const DEFAULT_PID_INTEGRAL: f64 = 0.2;
/// Spark's `spark.streaming.backpressure.pid.derived` default.
pub(crate) const DEFAULT_PID_DERIVED: f64 = 0.0;
/// Spark's `spark.streaming.backpressure.pid.minRate` default (records/s, whole stream).
pub(crate) const DEFAULT_PID_MIN_RATE: f64 = 100.0;
/// Spark's `spark.streaming.kafka.consumer.poll.ms` default: `spark.network.timeout`, 120 s.
pub(crate) const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(120);
/// Kafka's consumer `max.partition.fetch.bytes` default (1 MiB).
pub(crate) const DEFAULT_MAX_PARTITION_FETCH_BYTES: i32 = 1024 * 1024;

/// Kafka's `auto.offset.reset`: where a partition with no explicit or committed offset
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records written from now on (Kafka's default).
    Latest,
    /// Fail with [`Error::NoOffset`].
    None,
}

impl std::str::FromStr for AutoOffsetReset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            "none" => Ok(Self::None),
            other => Err(Error::Config(format!(
                "auto.offset.reset must be earliest, latest or none, not {other:?}"
            ))),
        }
    }
}

/// Spark's PID rate estimator gains (`spark.streaming.backpressure.pid.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidConfig {
    /// `pid.proportional`: weight of the current error.
    pub proportional: f64,
    /// `pid.integral`: weight of the accumulated error (the scheduling delay).
    pub integral: f64,
    /// `pid.derived`: weight of the error's rate of change.
    pub derived: f64,
    /// `pid.minRate`: the estimate never goes below this (records/s, whole stream).
    pub min_rate: f64,
}

impl Default for PidConfig {
    fn default() -> Self {
        Self {
            proportional: DEFAULT_PID_PROPORTIONAL,
            integral: DEFAULT_PID_INTEGRAL,
            derived: DEFAULT_PID_DERIVED,
            min_rate: DEFAULT_PID_MIN_RATE,
        }
    }
}

/// Everything a [`DirectStream`](crate::DirectStream) needs besides its client and strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// The batch interval (`StreamingContext(conf, Seconds(n))`).
    pub batch_interval: Duration,
    /// Kafka's `group.id`: whose committed offsets are read at start and where
    /// [`commit_async`](crate::CommitQueue::commit_async) commits. `None`: no group.
    pub group_id: Option<String>,
    /// Kafka's `auto.offset.reset` (default `latest`).
    pub auto_offset_reset: AutoOffsetReset,
    /// `spark.streaming.kafka.maxRatePerPartition`: records/s per partition, 0 = no limit.
    pub max_rate_per_partition: i64,
    /// `spark.streaming.kafka.minRatePerPartition`: the least records per partition per
    /// batch while the rate is limited (a per-batch floor, not multiplied by the interval).
    pub min_rate_per_partition: i64,
    /// `spark.streaming.backpressure.enabled`.
    pub backpressure: bool,
    /// `spark.streaming.backpressure.initialRate`: the rate before the estimator has one;
    /// the direct stream reads it with default 0 (no limit).
    pub initial_rate: i64,
    /// `spark.streaming.backpressure.pid.*`.
    pub pid: PidConfig,
    /// `spark.streaming.kafka.consumer.poll.ms`: how long a reader waits for records it
    /// knows exist before the batch fails.
    pub poll_timeout: Duration,
    /// `spark.streaming.kafka.allowNonConsecutiveOffsets`: accept gaps in a range
    /// (compaction, transaction markers); Spark's default refuses them.
    pub allow_non_consecutive_offsets: bool,
    /// Kafka's `max.partition.fetch.bytes`: bytes asked for per partition per fetch.
    pub max_partition_fetch_bytes: i32,
    /// Kafka's `isolation.level` (default `read_uncommitted`). At `read_committed` a
    /// batch's ranges end at most at the last stable offset (the `latest` offset Kafka
    /// reports at that level), the ranges' aborted records are never read, and committed
    /// offsets are read with `require_stable`. Markers and aborted records leave gaps, so
    /// Spark's `allowNonConsecutiveOffsets` is needed, as with Spark.
    pub isolation_level: IsolationLevel,
}

impl StreamConfig {
    /// Settings with Spark's defaults and the given batch interval.
    pub fn new(batch_interval: Duration) -> Self {
        Self {
            batch_interval,
            group_id: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            max_rate_per_partition: 0,
            min_rate_per_partition: DEFAULT_MIN_RATE_PER_PARTITION,
            backpressure: false,
            initial_rate: 0,
            pid: PidConfig::default(),
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            allow_non_consecutive_offsets: false,
            max_partition_fetch_bytes: DEFAULT_MAX_PARTITION_FETCH_BYTES,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }

    /// Sets the group.
    pub fn with_group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets `auto.offset.reset`.
    pub fn with_auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// Sets `maxRatePerPartition`.
    pub fn with_max_rate_per_partition(mut self, rate: i64) -> Self {
        self.max_rate_per_partition = rate;
        self
    }

    /// Turns backpressure on or off.
    pub fn with_backpressure(mut self, enabled: bool) -> Self {
        self.backpressure = enabled;
        self
    }

    /// Sets one setting by its Spark or Kafka name:
    /// `group.id`, `auto.offset.reset`, `max.partition.fetch.bytes`, `isolation.level`,
    /// `spark.streaming.kafka.maxRatePerPartition`, `spark.streaming.kafka.minRatePerPartition`,
    /// `spark.streaming.backpressure.enabled`, `spark.streaming.backpressure.initialRate`,
    /// `spark.streaming.backpressure.pid.{proportional,integral,derived,minRate}`,
    /// `spark.streaming.backpressure.rateEstimator` (only `pid`),
    /// `spark.streaming.kafka.consumer.poll.ms`, `spark.streaming.kafka.allowNonConsecutiveOffsets`.
    /// `enable.auto.commit` is accepted only as `false` (the stream commits nothing on its own).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match key {
            "group.id" => self.group_id = Some(v.to_owned()).filter(|g| !g.is_empty()),
            "auto.offset.reset" => self.auto_offset_reset = v.parse()?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = parse(key, v)?,
            "isolation.level" => {
                self.isolation_level = v
                    .parse()
                    .map_err(|e: String| Error::Config(format!("isolation.level: {e}")))?;
            }
            "enable.auto.commit" => {
                if v != "false" {
                    return Err(Error::Config(format!(
                        "enable.auto.commit={v}: the direct stream tracks offsets itself; \
                         use commit_async (Spark's docs ask for false too)"
                    )));
                }
            }
            "spark.streaming.kafka.maxRatePerPartition" => {
                self.max_rate_per_partition = parse(key, v)?;
            }
            "spark.streaming.kafka.minRatePerPartition" => {
                self.min_rate_per_partition = parse(key, v)?;
            }
            "spark.streaming.backpressure.enabled" => self.backpressure = parse(key, v)?,
            "spark.streaming.backpressure.initialRate" => self.initial_rate = parse(key, v)?,
            "spark.streaming.backpressure.rateEstimator" => {
                if v != "pid" {
                    return Err(Error::Config(format!(
                        "{key}={v}: only the pid estimator exists (as in Spark)"
                    )));
                }
            }
            "spark.streaming.backpressure.pid.proportional" => {
                self.pid.proportional = parse(key, v)?;
            }
            "spark.streaming.backpressure.pid.integral" => self.pid.integral = parse(key, v)?,
            "spark.streaming.backpressure.pid.derived" => self.pid.derived = parse(key, v)?,
            "spark.streaming.backpressure.pid.minRate" => self.pid.min_rate = parse(key, v)?,
            "spark.streaming.kafka.consumer.poll.ms" => {
                self.poll_timeout = Duration::from_millis(parse(key, v)?);
            }
            "spark.streaming.kafka.allowNonConsecutiveOffsets" => {
                self.allow_non_consecutive_offsets = parse(key, v)?;
            }
            other => return Err(Error::Config(format!("unknown key {other:?}"))),
        }
        Ok(())
    }

    /// Checks the settings as Spark does when it builds the stream and its estimator.
    pub fn validate(&self) -> Result<()> {
        if self.batch_interval.is_zero() {
            return Err(Error::Config(
                "batch interval must be above zero".to_owned(),
            ));
        }
        if self.max_rate_per_partition < 0 {
            return Err(Error::Config(format!(
                "spark.streaming.kafka.maxRatePerPartition must be >= 0, not {}",
                self.max_rate_per_partition
            )));
        }
        if self.min_rate_per_partition <= 0 {
            // Spark: "minRatePerPartition must be >= 1".
            return Err(Error::Config(format!(
                "spark.streaming.kafka.minRatePerPartition must be >= 1, not {}",
                self.min_rate_per_partition
            )));
        }
        // PIDRateEstimator's own requirements.
        let p = &self.pid;
        for (name, v) in [
            ("proportional", p.proportional),
            ("integral", p.integral),
            ("derived", p.derived),
        ] {
            if v.is_nan() || v < 0.0 {
                return Err(Error::Config(format!(
                    "spark.streaming.backpressure.pid.{name} must be >= 0, not {v}"
                )));
            }
        }
        if p.min_rate.is_nan() || p.min_rate <= 0.0 {
            return Err(Error::Config(format!(
                "spark.streaming.backpressure.pid.minRate must be > 0, not {}",
                p.min_rate
            )));
        }
        if self.max_partition_fetch_bytes <= 0 {
            return Err(Error::Config(format!(
                "max.partition.fetch.bytes must be > 0, not {}",
                self.max_partition_fetch_bytes
            )));
        }
        Ok(())
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| Error::Config(format!("{key}={value:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sparks() {
        let c = StreamConfig::new(Duration::from_secs(2));
        assert_eq!(c.max_rate_per_partition, 0);
        assert_eq!(c.min_rate_per_partition, 1);
        assert!(!c.backpressure);
        assert_eq!(c.initial_rate, 0);
        assert_eq!(
            c.pid,
            PidConfig {
                proportional: 1.0,
                integral: 0.2,
                derived: 0.0,
                min_rate: 100.0
            }
        );
        assert_eq!(c.poll_timeout, Duration::from_secs(120));
        assert!(!c.allow_non_consecutive_offsets);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
        c.validate().unwrap();
    }

    #[test]
    fn spark_keys_set_fields_and_bad_values_name_the_key() {
        let mut c = StreamConfig::new(Duration::from_secs(1));
        c.set("spark.streaming.kafka.maxRatePerPartition", "1000")
            .unwrap();
        c.set("spark.streaming.backpressure.enabled", "true")
            .unwrap();
        c.set("spark.streaming.backpressure.pid.minRate", "10")
            .unwrap();
        c.set("auto.offset.reset", "earliest").unwrap();
        c.set("group.id", "g").unwrap();
        c.set("spark.streaming.kafka.consumer.poll.ms", "500")
            .unwrap();
        assert_eq!(c.max_rate_per_partition, 1000);
        assert!(c.backpressure);
        assert_eq!(c.pid.min_rate, 10.0);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.poll_timeout, Duration::from_millis(500));
        let err = c
            .set("spark.streaming.kafka.maxRatePerPartition", "lots")
            .unwrap_err();
        assert!(err.to_string().contains("maxRatePerPartition"), "{err}");
        assert!(c.set("enable.auto.commit", "true").is_err());
        assert!(c.set("no.such.key", "1").is_err());
        c.min_rate_per_partition = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("minRatePerPartition"));
    }
}
