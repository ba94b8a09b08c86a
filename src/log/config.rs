//! Per-topic log configuration: Kafka's topic-level keys, their broker-wide defaults, and
//! validation of overrides given at topic creation.

use std::collections::BTreeMap;

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp is kept (Kafka's default).
    CreateTime,
    /// The broker stamps the append time.
    LogAppendTime,
}

/// Kafka's `segment.bytes` default: 1 GiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Kafka's `segment.ms` default: 7 days.
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's `retention.ms` default: 7 days.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's `delete.retention.ms` default: 1 day.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// Kafka's `max.message.bytes` / `message.max.bytes` default: 1 MiB plus record overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Kafka's `message.timestamp.before.max.ms` default: no limit on past timestamps.
pub const DEFAULT_TIMESTAMP_BEFORE_MAX_MS: i64 = i64::MAX;
/// Kafka's `message.timestamp.after.max.ms` default since 4.0: one hour into the future.
pub const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 3_600_000;

/// Effective config of one topic's logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: max size of each index file.
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`: log bytes between index entries.
    pub index_interval_bytes: u64,
    /// `flush.messages`: fsync after this many messages (1 = before every ack).
    pub flush_messages: i64,
    /// `flush.ms`: fsync at least this often.
    pub flush_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: CreateTime records older than this are refused.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: CreateTime records further ahead are refused.
    pub timestamp_after_max_ms: i64,
    /// `retention.ms` (enforced by the retention work; reported now).
    pub retention_ms: i64,
    /// `retention.bytes`.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: String,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: dirty share of the log that triggers compaction.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
}

impl LogConfig {
    /// Whether `cleanup.policy` includes `compact`.
    pub fn compacted(&self) -> bool {
        self.cleanup_policy
            .split(',')
            .any(|p| p.trim() == "compact")
    }
    /// Whether `cleanup.policy` includes `delete`.
    pub fn deletes(&self) -> bool {
        self.cleanup_policy.split(',').any(|p| p.trim() == "delete")
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            segment_index_bytes: super::segment::DEFAULT_INDEX_BYTES,
            index_interval_bytes: super::INDEX_INTERVAL_BYTES as u64,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
            timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: -1,
            cleanup_policy: "delete".into(),
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
        }
    }
}

fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("invalid value '{v}' for configuration {key}"))
}

fn at_least<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    v: T,
    min: T,
) -> Result<T, String> {
    if v < min {
        Err(format!(
            "invalid value {v} for configuration {key}: value must be at least {min}"
        ))
    } else {
        Ok(v)
    }
}

/// Topic-level keys Sluice accepts in CreateTopics; keys Kafka knows but a single node has
/// no use for are accepted and reported as they were given.
pub const ACCEPTED_NO_EFFECT: &[&str] = &[
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "compression.type",
    "file.delete.delay.ms",
    "max.compaction.lag.ms",
    "preallocate",
    "message.downconversion.enable",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.ms",
    "local.retention.bytes",
    "remote.storage.enable",
    "segment.jitter.ms",
    "message.timestamp.difference.max.ms",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
];

impl LogConfig {
    /// Apply topic overrides (Kafka names) on top of these defaults. The error names the key
    /// and says what is wrong, as Kafka's INVALID_CONFIG message does.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, String> {
        let mut c = self.clone();
        for (k, v) in overrides {
            let key = k.as_str();
            match key {
                "segment.bytes" => c.segment_bytes = at_least(key, parse(key, v)?, 14u64)?,
                "segment.ms" => c.segment_ms = at_least(key, parse(key, v)?, 1i64)?,
                "segment.index.bytes" => c.segment_index_bytes = at_least(key, parse(key, v)?, 8usize)?,
                "index.interval.bytes" => c.index_interval_bytes = parse(key, v)?,
                "flush.messages" => c.flush_messages = at_least(key, parse(key, v)?, 1i64)?,
                "flush.ms" => c.flush_ms = at_least(key, parse(key, v)?, 0i64)?,
                "max.message.bytes" => c.max_message_bytes = parse(key, v)?,
                "message.timestamp.before.max.ms" => c.timestamp_before_max_ms = at_least(key, parse(key, v)?, 0i64)?,
                "message.timestamp.after.max.ms" => c.timestamp_after_max_ms = at_least(key, parse(key, v)?, 0i64)?,
                "retention.ms" => c.retention_ms = at_least(key, parse(key, v)?, -1i64)?,
                "retention.bytes" => c.retention_bytes = parse(key, v)?,
                "delete.retention.ms" => c.delete_retention_ms = at_least(key, parse(key, v)?, 0i64)?,
                "min.compaction.lag.ms" => c.min_compaction_lag_ms = at_least(key, parse(key, v)?, 0i64)?,
                "min.cleanable.dirty.ratio" => {
                    let r: f64 = parse(key, v)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(format!("invalid value {v} for configuration {key}: value must be between 0 and 1"));
                    }
                    c.min_cleanable_dirty_ratio = r;
                }
                "message.timestamp.type" => {
                    c.timestamp_type = match v.as_str() {
                        "CreateTime" => TimestampType::CreateTime,
                        "LogAppendTime" => TimestampType::LogAppendTime,
                        _ => {
                            return Err(format!(
                                "invalid value '{v}' for configuration {key}: must be CreateTime or LogAppendTime"
                            ))
                        }
                    }
                }
                "cleanup.policy" => {
                    for p in v.split(',') {
                        if !matches!(p.trim(), "delete" | "compact") {
                            return Err(format!(
                                "invalid value '{v}' for configuration {key}: each policy must be delete or compact"
                            ));
                        }
                    }
                    c.cleanup_policy = v.clone();
                }
                _ if ACCEPTED_NO_EFFECT.contains(&key) => {}
                _ => return Err(format!("unknown topic config name: {key}")),
            }
        }
        Ok(c)
    }

    /// Every topic-level key with its effective value, for DescribeConfigs.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let ts = match self.timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        vec![
            ("cleanup.policy", self.cleanup_policy.clone()),
            ("compression.type", "producer".into()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("file.delete.delay.ms", "60000".into()),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.compaction.lag.ms", i64::MAX.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                self.timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.timestamp_before_max_ms.to_string(),
            ),
            ("message.timestamp.type", ts.into()),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            ("min.insync.replicas", "1".into()),
            ("preallocate", "false".into()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.jitter.ms", "0".into()),
            ("segment.ms", self.segment_ms.to_string()),
            ("unclean.leader.election.enable", "false".into()),
        ]
    }
}

/// Topic-level keys and the broker properties that set their defaults, as Kafka names
/// them. These are also the broker properties that may change at run time
/// (kafka-configs --entity-type brokers --alter), as in Kafka.
pub const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("max.message.bytes", "message.max.bytes"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("cleanup.policy", "log.cleanup.policy"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    // Keys a single node doesn't act on; their broker-wide defaults are still kept and
    // reported, as Kafka reports them.
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("preallocate", "log.preallocate"),
    ("local.retention.ms", "log.local.retention.ms"),
    ("local.retention.bytes", "log.local.retention.bytes"),
    ("compression.gzip.level", "compression.gzip.level"),
    ("compression.lz4.level", "compression.lz4.level"),
    ("compression.zstd.level", "compression.zstd.level"),
    ("min.insync.replicas", "min.insync.replicas"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// The broker property behind a topic key.
pub fn broker_key(topic_key: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(t, _)| *t == topic_key)
        .map(|(_, b)| *b)
}

/// The topic key a broker property sets the default of.
pub fn topic_key(broker_key: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(_, b)| *b == broker_key)
        .map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_validate_and_apply() {
        let d = LogConfig::default();
        let ov: BTreeMap<_, _> = [("flush.messages".to_string(), "1".to_string())].into();
        assert_eq!(d.with_overrides(&ov).unwrap().flush_messages, 1);
        let bad: BTreeMap<_, _> = [("segment.bytes".to_string(), "abc".to_string())].into();
        assert!(d
            .with_overrides(&bad)
            .unwrap_err()
            .contains("segment.bytes"));
        let unknown: BTreeMap<_, _> = [("nope".to_string(), "1".to_string())].into();
        assert!(d.with_overrides(&unknown).unwrap_err().contains("nope"));
        assert!(d.entries().iter().any(|(k, _)| *k == "retention.ms"));
    }
}
