//! Group configs (Kafka's config resource type GROUP, KIP-848 / KIP-932): per-group
//! overrides of the broker's `group.consumer.*` and `group.share.*` defaults, and the
//! effective values the consumer-group and share-group coordinators use.
//!
//! This first version holds the defaults only; overrides, their bounds, persistence and the
//! DescribeConfigs / IncrementalAlterConfigs side are added on top of the same API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Where a share group starts reading a partition it has no state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareAutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Kafka's default).
    Latest,
    /// The first offset whose timestamp is at least now minus this many ms.
    ByDuration(i64),
}

/// The effective settings of one share group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareGroupConfig {
    /// `share.session.timeout.ms` (broker default `group.share.session.timeout.ms`, 45 s).
    pub session_timeout_ms: i32,
    /// `share.heartbeat.interval.ms` (broker default `group.share.heartbeat.interval.ms`, 5 s).
    pub heartbeat_interval_ms: i32,
    /// `share.record.lock.duration.ms` (broker default
    /// `group.share.record.lock.duration.ms`, 30 s).
    pub record_lock_duration_ms: i32,
    /// `share.delivery.count.limit` (broker default `group.share.delivery.count.limit`, 5):
    /// deliveries after which a record is archived.
    pub delivery_count_limit: i32,
    /// `share.auto.offset.reset` (default latest).
    pub auto_offset_reset: ShareAutoOffsetReset,
    /// `share.isolation.level` is `read_committed` (default read_uncommitted).
    pub read_committed: bool,
}

impl Default for ShareGroupConfig {
    fn default() -> Self {
        // Kafka 4.3's defaults.
        ShareGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            auto_offset_reset: ShareAutoOffsetReset::Latest,
            read_committed: false,
        }
    }
}

/// The effective settings of one KIP-848 consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `consumer.session.timeout.ms` (broker default `group.consumer.session.timeout.ms`).
    pub session_timeout_ms: i32,
    /// `consumer.heartbeat.interval.ms` (broker default
    /// `group.consumer.heartbeat.interval.ms`).
    pub heartbeat_interval_ms: i32,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
        }
    }
}

/// Per-group overrides, by group id then Kafka key.
#[derive(Debug, Default)]
pub struct GroupConfigs {
    overrides: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl GroupConfigs {
    /// The overrides of `group` (key → value), as set.
    pub fn overrides(&self, group: &str) -> BTreeMap<String, String> {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Effective share-group settings of `group`.
    pub fn share(&self, group: &str) -> ShareGroupConfig {
        let o = self.overrides(group);
        let mut c = ShareGroupConfig::default();
        let num = |k: &str| o.get(k).and_then(|v| v.parse::<i32>().ok());
        if let Some(v) = num("share.session.timeout.ms") {
            c.session_timeout_ms = v;
        }
        if let Some(v) = num("share.heartbeat.interval.ms") {
            c.heartbeat_interval_ms = v;
        }
        if let Some(v) = num("share.record.lock.duration.ms") {
            c.record_lock_duration_ms = v;
        }
        if let Some(v) = num("share.delivery.count.limit") {
            c.delivery_count_limit = v;
        }
        match o.get("share.auto.offset.reset").map(String::as_str) {
            Some("earliest") => c.auto_offset_reset = ShareAutoOffsetReset::Earliest,
            Some("latest") => c.auto_offset_reset = ShareAutoOffsetReset::Latest,
            Some(v) => {
                if let Some(d) = v
                    .strip_prefix("by_duration:")
                    .and_then(parse_iso_duration_ms)
                {
                    c.auto_offset_reset = ShareAutoOffsetReset::ByDuration(d);
                }
            }
            None => {}
        }
        if let Some(v) = o.get("share.isolation.level") {
            c.read_committed = v == "read_committed";
        }
        c
    }

    /// Effective consumer-group settings of `group`.
    pub fn consumer(&self, group: &str) -> ConsumerGroupConfig {
        let o = self.overrides(group);
        let mut c = ConsumerGroupConfig::default();
        let num = |k: &str| o.get(k).and_then(|v| v.parse::<i32>().ok());
        if let Some(v) = num("consumer.session.timeout.ms") {
            c.session_timeout_ms = v;
        }
        if let Some(v) = num("consumer.heartbeat.interval.ms") {
            c.heartbeat_interval_ms = v;
        }
        c
    }

    /// Replace the overrides of `group` (an empty map removes them).
    pub fn set_overrides(&self, group: &str, values: BTreeMap<String, String>) {
        let mut map = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        if values.is_empty() {
            map.remove(group);
        } else {
            map.insert(group.to_string(), values);
        }
    }
}

/// An ISO-8601 duration of days, hours, minutes and seconds (`P1DT2H`, `PT30M`), in ms, as
/// Kafka's `by_duration:` reset takes it.
pub fn parse_iso_duration_ms(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut ms: i64 = 0;
    if !days.is_empty() {
        let d: i64 = days.strip_suffix('D')?.parse().ok()?;
        ms = ms.checked_add(d.checked_mul(86_400_000)?)?;
    }
    let mut num = String::new();
    for ch in time.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                let unit = match ch {
                    'H' => 3_600_000.0,
                    'M' => 60_000.0,
                    _ => 1_000.0,
                };
                ms = ms.checked_add((v * unit) as i64)?;
            }
            _ => return None,
        }
    }
    (num.is_empty() && ms >= 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_change_the_effective_values() {
        let c = GroupConfigs::default();
        assert_eq!(c.share("g"), ShareGroupConfig::default());
        c.set_overrides(
            "g",
            [
                (
                    "share.auto.offset.reset".to_string(),
                    "earliest".to_string(),
                ),
                (
                    "share.record.lock.duration.ms".to_string(),
                    "15000".to_string(),
                ),
            ]
            .into(),
        );
        let s = c.share("g");
        assert_eq!(s.auto_offset_reset, ShareAutoOffsetReset::Earliest);
        assert_eq!(s.record_lock_duration_ms, 15_000);
        assert_eq!(parse_iso_duration_ms("P1DT1H30M"), Some(91_800_000));
        assert_eq!(parse_iso_duration_ms("PT0.5S"), Some(500));
        assert_eq!(parse_iso_duration_ms("1D"), None);
    }
}
