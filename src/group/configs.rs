//! Group configs (Kafka's config resource type GROUP, KIP-848 / KIP-932 / KIP-1071):
//! per-group overrides of the broker's `group.consumer.*` and `group.share.*` defaults, their
//! validation against the broker's bounds (as Kafka's `GroupConfig.validate`), their
//! persistence in the data directory, and the effective values the consumer-group and
//! share-group coordinators use.
//!
//! Kafka keeps group configs in its metadata log; Sluice keeps them in
//! `sluice-group-configs.properties`, rewritten atomically on every change, one
//! `GROUP KEY=VALUE` line per override with the group id and value percent-encoded. The
//! DescribeConfigs and AlterConfigs handlers (`api::topics`) call in here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::config::kafka_keys::{self, KafkaKey};
use crate::config::GroupSettings;

/// The file in the data directory that holds every group's overrides.
pub const GROUP_CONFIGS_FILE: &str = "sluice-group-configs.properties";

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

/// Group keys and the broker keys that default them, as Kafka names them in synonyms.
const BROKER_DEFAULTS: &[(&str, &str)] = &[
    (
        "consumer.assignment.interval.ms",
        "group.consumer.assignment.interval.ms",
    ),
    (
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
    ),
    (
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
    ),
    (
        "share.assignment.interval.ms",
        "group.share.assignment.interval.ms",
    ),
    ("share.auto.offset.reset", "share.auto.offset.reset"),
    (
        "share.delivery.count.limit",
        "group.share.delivery.count.limit",
    ),
    (
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
    ),
    ("share.isolation.level", "share.isolation.level"),
    (
        "share.partition.max.record.locks",
        "group.share.partition.max.record.locks",
    ),
    (
        "share.record.lock.duration.ms",
        "group.share.record.lock.duration.ms",
    ),
    (
        "share.renew.acknowledge.enable",
        "share.renew.acknowledge.enable",
    ),
    ("share.session.timeout.ms", "group.share.session.timeout.ms"),
    (
        "streams.assignment.interval.ms",
        "group.streams.assignment.interval.ms",
    ),
    (
        "streams.heartbeat.interval.ms",
        "group.streams.heartbeat.interval.ms",
    ),
    (
        "streams.initial.rebalance.delay.ms",
        "group.streams.initial.rebalance.delay.ms",
    ),
    (
        "streams.num.standby.replicas",
        "group.streams.num.standby.replicas",
    ),
    (
        "streams.session.timeout.ms",
        "group.streams.session.timeout.ms",
    ),
];

/// The broker key behind a group key (its DescribeConfigs synonym).
pub fn broker_key(group_key: &str) -> Option<&'static str> {
    BROKER_DEFAULTS
        .iter()
        .find(|(g, _)| *g == group_key)
        .map(|(_, b)| *b)
}

/// The smallest value Kafka's `GroupConfig` definition lets a key take.
fn floor(group_key: &str) -> i64 {
    match group_key {
        "share.record.lock.duration.ms" => 1000,
        "streams.num.standby.replicas"
        | "consumer.assignment.interval.ms"
        | "share.assignment.interval.ms"
        | "streams.assignment.interval.ms"
        | "streams.initial.rebalance.delay.ms" => 0,
        _ => 1,
    }
}

/// The broker keys bounding a group key: `group.F.NAME` is bounded by `group.F.min.NAME`
/// and `group.F.max.NAME`; the standby replica count by `group.streams.max.standby.replicas`.
fn bound_keys(group_key: &str) -> (Option<String>, Option<String>) {
    if group_key == "streams.num.standby.replicas" {
        return (None, Some("group.streams.max.standby.replicas".into()));
    }
    let Some(b) = broker_key(group_key) else {
        return (None, None);
    };
    let Some((family, name)) = b.strip_prefix("group.").and_then(|r| r.split_once('.')) else {
        return (None, None);
    };
    (
        Some(format!("group.{family}.min.{name}")),
        Some(format!("group.{family}.max.{name}")),
    )
}

/// Why a group config change was refused or not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterError {
    /// A key or value Kafka refuses (INVALID_CONFIG), with Kafka's message.
    Invalid(String),
    /// The file could not be written.
    Storage(String),
}

/// One group key as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Kafka's name.
    pub key: &'static str,
    /// The value in force.
    pub value: String,
    /// Kafka's config type.
    pub ty: i8,
    /// Set on the group itself (source DYNAMIC_GROUP_CONFIG).
    pub overridden: bool,
    /// The broker key behind it, its value, and whether that value was configured (source
    /// STATIC_BROKER_CONFIG) rather than Kafka's default.
    pub broker: Option<(&'static str, String, bool)>,
}

/// Per-group overrides, by group id then Kafka key, with the broker's defaults and bounds.
#[derive(Debug, Default)]
pub struct GroupConfigs {
    overrides: Mutex<HashMap<String, BTreeMap<String, String>>>,
    settings: RwLock<GroupSettings>,
    /// Where overrides are kept; None keeps them in memory only (unit tests).
    path: Option<PathBuf>,
    /// Serialises file rewrites, so the file always holds the last change.
    write: Mutex<()>,
}

impl GroupConfigs {
    /// Load the overrides kept in `dir`. An unreadable line is skipped with a warning; an
    /// unreadable file is an error, so overrides are never silently lost.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(GROUP_CONFIGS_FILE);
        let mut map: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    if line.trim().is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let parsed = line.split_once(' ').and_then(|(g, kv)| {
                        let (k, v) = kv.split_once('=')?;
                        Some((unescape(g)?, k.to_string(), unescape(v)?))
                    });
                    match parsed {
                        Some((g, k, v)) => {
                            map.entry(g).or_default().insert(k, v);
                        }
                        None => {
                            tracing::warn!(path = %path.display(), line, "skipping an unreadable group config line")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(GroupConfigs {
            overrides: Mutex::new(map),
            settings: RwLock::new(GroupSettings::default()),
            path: Some(path),
            write: Mutex::new(()),
        })
    }

    /// Use the broker's `group.*` settings for defaults and bounds.
    pub fn set_settings(&self, settings: GroupSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// The broker's `group.*` settings in force.
    pub fn settings(&self) -> GroupSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The overrides of `group` (key → value), as set.
    pub fn overrides(&self, group: &str) -> BTreeMap<String, String> {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// The broker-level value of a broker key: the configured one Sluice knows, else
    /// Kafka's default. The flag says whether it was configured away from Kafka's default.
    fn broker_value(&self, settings: &GroupSettings, broker_key: &str) -> Option<(String, bool)> {
        let kafka = kafka_keys::find(kafka_keys::BROKER_KEYS, broker_key)
            .and_then(|k| k.default)
            .map(str::to_string);
        match settings.int_keys().iter().find(|(k, _)| *k == broker_key) {
            Some((_, v)) => {
                let v = v.to_string();
                let configured = kafka.as_deref() != Some(v.as_str());
                Some((v, configured))
            }
            None => kafka.map(|v| (v, false)),
        }
    }

    /// The value of `key` for `group` from its overrides, else the broker default.
    fn effective(
        &self,
        settings: &GroupSettings,
        key: &KafkaKey,
        ov: &BTreeMap<String, String>,
    ) -> String {
        if let Some(v) = ov.get(key.name) {
            return v.clone();
        }
        broker_key(key.name)
            .and_then(|b| self.broker_value(settings, b))
            .map(|(v, _)| v)
            .or_else(|| key.default.map(str::to_string))
            .unwrap_or_default()
    }

    /// Every group key of `group` with its value in force, for DescribeConfigs.
    pub fn describe(&self, group: &str) -> Vec<GroupEntry> {
        let settings = self.settings();
        let ov = self.overrides(group);
        kafka_keys::GROUP_KEYS
            .iter()
            .map(|k| GroupEntry {
                key: k.name,
                value: self.effective(&settings, k, &ov),
                ty: k.ty,
                overridden: ov.contains_key(k.name),
                broker: broker_key(k.name).and_then(|b| {
                    self.broker_value(&settings, b)
                        .map(|(v, configured)| (b, v, configured))
                }),
            })
            .collect()
    }

    /// Check a whole override set as Kafka's `GroupConfig.validate` does: known keys, typed
    /// values, the broker's min/max bounds, and session timeouts above heartbeat intervals.
    /// The message is Kafka's.
    pub fn validate(&self, ov: &BTreeMap<String, String>) -> Result<(), String> {
        let settings = self.settings();
        for (k, v) in ov {
            let Some(key) = kafka_keys::find(kafka_keys::GROUP_KEYS, k) else {
                return Err(format!("Unknown group config name: {k}"));
            };
            check_type(key, v)?;
            if key.ty != kafka_keys::TYPE_INT {
                continue;
            }
            let n: i64 = v.trim().parse().map_err(|_| not_a_number(k, v, "INT"))?;
            if n < floor(k) {
                return Err(format!(
                    "Invalid value {v} for configuration {k}: Value must be at least {}",
                    floor(k)
                ));
            }
            let (min_key, max_key) = bound_keys(k);
            let bound = |b: &Option<String>| {
                b.as_ref().and_then(|b| {
                    let (v, _) = self.broker_value(&settings, b)?;
                    Some((b.clone(), v.parse::<i64>().ok()?))
                })
            };
            if let Some((mk, min)) = bound(&min_key) {
                if n < min {
                    return Err(format!("{k} must be greater than or equal to {mk}"));
                }
            }
            if let Some((mk, max)) = bound(&max_key) {
                if n > max {
                    return Err(format!("{k} must be less than or equal to {mk}"));
                }
            }
        }
        for family in ["consumer", "share", "streams"] {
            let session = format!("{family}.session.timeout.ms");
            let heartbeat = format!("{family}.heartbeat.interval.ms");
            let value = |name: &str| {
                kafka_keys::find(kafka_keys::GROUP_KEYS, name)
                    .and_then(|k| self.effective(&settings, k, ov).parse::<i64>().ok())
            };
            if let (Some(s), Some(h)) = (value(&session), value(&heartbeat)) {
                if s <= h && (ov.contains_key(&session) || ov.contains_key(&heartbeat)) {
                    return Err(format!("{session} must be greater than {heartbeat}"));
                }
            }
        }
        Ok(())
    }

    /// Change the overrides of `group`: `change` edits the current set, the result is
    /// validated, written to the data directory and put in force. With `validate_only`
    /// nothing changes.
    pub fn alter(
        &self,
        group: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), String>,
        validate_only: bool,
    ) -> Result<(), AlterError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut ov = self.overrides(group);
        change(&mut ov).map_err(AlterError::Invalid)?;
        self.validate(&ov).map_err(AlterError::Invalid)?;
        if validate_only {
            return Ok(());
        }
        let mut all = self
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if ov.is_empty() {
            all.remove(group);
        } else {
            all.insert(group.to_string(), ov.clone());
        }
        if let Some(path) = &self.path {
            let mut groups: Vec<_> = all.iter().collect();
            groups.sort_by(|a, b| a.0.cmp(b.0));
            let mut text =
                String::from("# group configs (resource type GROUP), written by sluice\n");
            for (g, kv) in groups {
                for (k, v) in kv {
                    text.push_str(&format!("{} {k}={}\n", escape(g), escape(v)));
                }
            }
            crate::log::write_atomic(path, &text)
                .map_err(|e| AlterError::Storage(e.to_string()))?;
        }
        self.set_overrides(group, ov);
        Ok(())
    }

    /// Effective share-group settings of `group`.
    pub fn share(&self, group: &str) -> ShareGroupConfig {
        let o = self.overrides(group);
        let s = self.settings();
        let mut c = ShareGroupConfig {
            session_timeout_ms: s.share_session_timeout_ms,
            heartbeat_interval_ms: s.share_heartbeat_interval_ms,
            record_lock_duration_ms: s.share_record_lock_duration_ms,
            delivery_count_limit: s.share_delivery_count_limit,
            ..ShareGroupConfig::default()
        };
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
        if let Some(r) = o
            .get("share.auto.offset.reset")
            .and_then(|v| parse_auto_offset_reset(v))
        {
            c.auto_offset_reset = r;
        }
        if let Some(v) = o.get("share.isolation.level") {
            c.read_committed = v == "read_committed";
        }
        c
    }

    /// Effective consumer-group settings of `group`.
    pub fn consumer(&self, group: &str) -> ConsumerGroupConfig {
        let o = self.overrides(group);
        let s = self.settings();
        let mut c = ConsumerGroupConfig {
            session_timeout_ms: s.consumer_session_timeout_ms,
            heartbeat_interval_ms: s.consumer_heartbeat_interval_ms,
        };
        let num = |k: &str| o.get(k).and_then(|v| v.parse::<i32>().ok());
        if let Some(v) = num("consumer.session.timeout.ms") {
            c.session_timeout_ms = v;
        }
        if let Some(v) = num("consumer.heartbeat.interval.ms") {
            c.heartbeat_interval_ms = v;
        }
        c
    }

    /// Replace the overrides of `group` in memory (an empty map removes them), unchecked
    /// and not written down; [`Self::alter`] is the checked, durable way.
    pub fn set_overrides(&self, group: &str, values: BTreeMap<String, String>) {
        let mut map = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        if values.is_empty() {
            map.remove(group);
        } else {
            map.insert(group.to_string(), values);
        }
    }
}

fn not_a_number(k: &str, v: &str, ty: &str) -> String {
    format!("Invalid value {v} for configuration {k}: Not a number of type {ty}")
}

/// The type check of Kafka's `ConfigDef.parseType`, plus the value sets of the string keys.
fn check_type(key: &KafkaKey, v: &str) -> Result<(), String> {
    let k = key.name;
    match key.ty {
        kafka_keys::TYPE_INT => {
            v.trim()
                .parse::<i32>()
                .map_err(|_| not_a_number(k, v, "INT"))?;
        }
        kafka_keys::TYPE_BOOLEAN
            if !v.trim().eq_ignore_ascii_case("true")
                && !v.trim().eq_ignore_ascii_case("false") =>
        {
            return Err(format!(
                "Invalid value {v} for configuration {k}: Expected value to be either true or false"
            ));
        }
        _ => {}
    }
    match k {
        "share.auto.offset.reset" if parse_auto_offset_reset(v).is_none() => Err(format!(
            "Invalid value {v} for configuration {k}: Invalid value `{v}` for configuration {k}. \
             The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
        )),
        "share.isolation.level" if !matches!(v, "read_committed" | "read_uncommitted") => Err(format!(
            "Invalid value {v} for configuration {k}: String must be one of: read_committed, read_uncommitted"
        )),
        _ => Ok(()),
    }
}

/// `share.auto.offset.reset`: earliest, latest or `by_duration:<ISO-8601 duration>`.
fn parse_auto_offset_reset(v: &str) -> Option<ShareAutoOffsetReset> {
    match v {
        "earliest" => Some(ShareAutoOffsetReset::Earliest),
        "latest" => Some(ShareAutoOffsetReset::Latest),
        _ => v
            .strip_prefix("by_duration:")
            .and_then(parse_iso_duration_ms)
            .map(ShareAutoOffsetReset::ByDuration),
    }
}

/// Percent-encode every byte outside `[A-Za-z0-9._:-]`, so group ids and values with
/// spaces, `=` or newlines fit on one line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undo [`escape`]; None on a malformed escape or bytes that are not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
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

    fn ov(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_change_the_effective_values() {
        let c = GroupConfigs::default();
        assert_eq!(c.share("g"), ShareGroupConfig::default());
        c.set_overrides(
            "g",
            ov(&[
                ("share.auto.offset.reset", "earliest"),
                ("share.record.lock.duration.ms", "15000"),
            ]),
        );
        let s = c.share("g");
        assert_eq!(s.auto_offset_reset, ShareAutoOffsetReset::Earliest);
        assert_eq!(s.record_lock_duration_ms, 15_000);
        assert_eq!(parse_iso_duration_ms("P1DT1H30M"), Some(91_800_000));
        assert_eq!(parse_iso_duration_ms("PT0.5S"), Some(500));
        assert_eq!(parse_iso_duration_ms("1D"), None);
    }

    #[test]
    fn validation_answers_as_kafka() {
        let c = GroupConfigs::default();
        assert!(c
            .validate(&ov(&[("consumer.session.timeout.ms", "50000")]))
            .is_ok());
        let e = |kv: &[(&str, &str)]| c.validate(&ov(kv)).unwrap_err();
        assert_eq!(
            e(&[("consumer.session.timeout.ms", "1000")]),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            e(&[("consumer.session.timeout.ms", "abc")]),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(e(&[("foo", "1")]), "Unknown group config name: foo");
        assert_eq!(
            e(&[("share.record.lock.duration.ms", "10000")]),
            "share.record.lock.duration.ms must be greater than or equal to group.share.min.record.lock.duration.ms"
        );
        assert_eq!(
            e(&[("share.delivery.count.limit", "100")]),
            "share.delivery.count.limit must be less than or equal to group.share.max.delivery.count.limit"
        );
        assert!(e(&[("share.auto.offset.reset", "bogus")]).contains("by_duration"));
        assert!(c
            .validate(&ov(&[("share.auto.offset.reset", "by_duration:PT1H")]))
            .is_ok());
        // The broker's bounds come from its settings.
        c.set_settings(GroupSettings {
            consumer_min_session_timeout_ms: 1000,
            consumer_min_heartbeat_interval_ms: 100,
            ..GroupSettings::default()
        });
        assert!(c
            .validate(&ov(&[("consumer.session.timeout.ms", "6000")]))
            .is_ok());
        assert_eq!(
            c.validate(&ov(&[
                ("consumer.session.timeout.ms", "1000"),
                ("consumer.heartbeat.interval.ms", "2000")
            ]))
            .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn overrides_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = GroupConfigs::open(dir.path()).unwrap();
        c.alter(
            "odd group=1\n",
            |o| {
                o.insert("consumer.session.timeout.ms".into(), "50000".into());
                Ok(())
            },
            false,
        )
        .unwrap();
        let refused = c.alter(
            "g",
            |o| {
                o.insert("nope".into(), "1".into());
                Ok(())
            },
            false,
        );
        assert!(matches!(refused, Err(AlterError::Invalid(_))));
        let c = GroupConfigs::open(dir.path()).unwrap();
        assert_eq!(c.consumer("odd group=1\n").session_timeout_ms, 50_000);
        assert_eq!(c.consumer("g").session_timeout_ms, 45_000);
        let d = c.describe("odd group=1\n");
        assert_eq!(d.len(), kafka_keys::GROUP_KEYS.len());
        let e = d
            .iter()
            .find(|e| e.key == "consumer.session.timeout.ms")
            .unwrap();
        assert!(e.overridden && e.value == "50000");
    }
}
