//! The broker's configuration: the TOML file (`config/sluice.toml` documents every key), its
//! validation, and the defaults. Kafka property `a.b.c` maps to section `[a]` key `b_c` for
//! the `log.`, `socket.`, `group.` and `offsets.` families, and to `[broker]` with dots turned into
//! underscores otherwise (`num.partitions` → `[broker] num_partitions`).
//!
//! Command-line flags are applied on top of the file by `main`.

pub mod env;
pub mod kafka_keys;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::log::config::{
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RETENTION_MS, DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_MS,
};
use crate::log::{LogConfig, TimestampType};

/// Kafka's `socket.request.max.bytes` default: 100 MiB.
pub const DEFAULT_REQUEST_MAX_BYTES: usize = 100 * 1024 * 1024;
/// Kafka's `max.connections` is unbounded; Sluice caps at this many by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Kafka's `log.flush.offset.checkpoint.interval.ms` default: 60 s.
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 60_000;
/// Kafka's default listener port.
pub const DEFAULT_PORT: u16 = 9092;
/// Where the HTTP listener (`/metrics`, the web console) binds unless told otherwise:
/// loopback only, since a development broker's console has no authentication.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

/// A config problem: names the file, the dotted key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// Config file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type.
    #[error("{path}: {msg}")]
    Parse {
        /// Config file.
        path: PathBuf,
        /// The parser's message (with line and column).
        msg: String,
    },
    /// A value is out of range.
    #[error("{path}: key `{key}`: {msg}")]
    Invalid {
        /// Config file (or `command line`).
        path: String,
        /// Dotted key.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    broker: RawBroker,
    socket: RawSocket,
    log: RawLog,
    group: GroupSettings,
    offsets: RawOffsets,
    transaction: RawTransaction,
    http: RawHttp,
    /// Kafka's security properties by their Kafka names (`"ssl.keystore.location" = ...`).
    security: std::collections::BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBroker {
    node_id: i32,
    listeners: Vec<String>,
    advertised_listeners: Vec<String>,
    auto_create_topics_enable: bool,
    num_partitions: i32,
    default_replication_factor: i16,
    message_max_bytes: usize,
    max_connections: usize,
    accept_replication_factor_above_one: bool,
    max_incremental_fetch_session_cache_slots: usize,
    min_incremental_fetch_session_eviction_ms: u64,
}

impl Default for RawBroker {
    fn default() -> Self {
        RawBroker {
            node_id: 1,
            // Empty host: every interface, IPv4 and IPv6, like Kafka's `PLAINTEXT://:9092`
            // (clients that resolve `localhost` to ::1 can connect).
            listeners: vec![format!(":{DEFAULT_PORT}")],
            advertised_listeners: Vec::new(),
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            message_max_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            accept_replication_factor_above_one: false,
            max_incremental_fetch_session_cache_slots:
                crate::api::fetch::session::DEFAULT_CACHE_SLOTS,
            min_incremental_fetch_session_eviction_ms:
                crate::api::fetch::session::DEFAULT_EVICTION_MS,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSocket {
    request_max_bytes: usize,
}

impl Default for RawSocket {
    fn default() -> Self {
        RawSocket {
            request_max_bytes: DEFAULT_REQUEST_MAX_BYTES,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    dir: PathBuf,
    segment_bytes: u64,
    roll_ms: i64,
    index_size_max_bytes: usize,
    index_interval_bytes: u64,
    flush_interval_messages: i64,
    flush_interval_ms: i64,
    flush_offset_checkpoint_interval_ms: u64,
    retention_check_interval_ms: u64,
    cleaner_backoff_ms: u64,
    cleaner_delete_retention_ms: i64,
    cleaner_min_cleanable_ratio: f64,
    cleaner_min_compaction_lag_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    cleanup_policy: String,
    message_timestamp_type: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            dir: PathBuf::from("./data"),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            roll_ms: DEFAULT_SEGMENT_MS,
            index_size_max_bytes: crate::log::segment::DEFAULT_INDEX_BYTES,
            index_interval_bytes: crate::log::INDEX_INTERVAL_BYTES as u64,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: i64::MAX,
            flush_offset_checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
            // Kafka's `log.retention.check.interval.ms` default: 5 minutes.
            retention_check_interval_ms: 300_000,
            // Kafka's log.cleaner.* defaults.
            cleaner_backoff_ms: 15_000,
            cleaner_delete_retention_ms: crate::log::config::DEFAULT_DELETE_RETENTION_MS,
            cleaner_min_cleanable_ratio: 0.5,
            cleaner_min_compaction_lag_ms: 0,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: -1,
            cleanup_policy: "delete".into(),
            message_timestamp_type: "CreateTime".into(),
        }
    }
}

/// The `group.*` broker keys: `[group]` in the TOML file. The `consumer_*` and `share_*`
/// ones are the defaults of the group configs (resource type GROUP,
/// `consumer.session.timeout.ms`, `share.record.lock.duration.ms`, ...) and the bounds a
/// group's own value must keep to, as Kafka's `group.consumer.*` and `group.share.*`. Kafka
/// lets none of them change at run time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: u64,
    /// `group.consumer.session.timeout.ms`.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.min.session.timeout.ms`.
    pub consumer_min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms`.
    pub consumer_max_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms`.
    pub consumer_min_heartbeat_interval_ms: i32,
    /// `group.consumer.max.heartbeat.interval.ms`.
    pub consumer_max_heartbeat_interval_ms: i32,
    /// `group.share.session.timeout.ms`.
    pub share_session_timeout_ms: i32,
    /// `group.share.min.session.timeout.ms`.
    pub share_min_session_timeout_ms: i32,
    /// `group.share.max.session.timeout.ms`.
    pub share_max_session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms`.
    pub share_heartbeat_interval_ms: i32,
    /// `group.share.min.heartbeat.interval.ms`.
    pub share_min_heartbeat_interval_ms: i32,
    /// `group.share.max.heartbeat.interval.ms`.
    pub share_max_heartbeat_interval_ms: i32,
    /// `group.share.record.lock.duration.ms`.
    pub share_record_lock_duration_ms: i32,
    /// `group.share.min.record.lock.duration.ms`.
    pub share_min_record_lock_duration_ms: i32,
    /// `group.share.max.record.lock.duration.ms`.
    pub share_max_record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit`.
    pub share_delivery_count_limit: i32,
    /// `group.share.min.delivery.count.limit`.
    pub share_min_delivery_count_limit: i32,
    /// `group.share.max.delivery.count.limit`.
    pub share_max_delivery_count_limit: i32,
    /// `group.share.partition.max.record.locks`.
    pub share_partition_max_record_locks: i32,
    /// `group.share.min.partition.max.record.locks`.
    pub share_min_partition_max_record_locks: i32,
    /// `group.share.max.partition.max.record.locks`.
    pub share_max_partition_max_record_locks: i32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        // Kafka 4.3's defaults.
        GroupSettings {
            initial_rebalance_delay_ms: 3000,
            consumer_session_timeout_ms: 45_000,
            consumer_min_session_timeout_ms: 45_000,
            consumer_max_session_timeout_ms: 60_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_min_heartbeat_interval_ms: 5_000,
            consumer_max_heartbeat_interval_ms: 15_000,
            share_session_timeout_ms: 45_000,
            share_min_session_timeout_ms: 45_000,
            share_max_session_timeout_ms: 60_000,
            share_heartbeat_interval_ms: 5_000,
            share_min_heartbeat_interval_ms: 5_000,
            share_max_heartbeat_interval_ms: 15_000,
            share_record_lock_duration_ms: 30_000,
            share_min_record_lock_duration_ms: 15_000,
            share_max_record_lock_duration_ms: 60_000,
            share_delivery_count_limit: 5,
            share_min_delivery_count_limit: 2,
            share_max_delivery_count_limit: 10,
            share_partition_max_record_locks: 2_000,
            share_min_partition_max_record_locks: 100,
            share_max_partition_max_record_locks: 4_000,
        }
    }
}

impl GroupSettings {
    /// Every `i32` key under its Kafka name, for DescribeConfigs and the environment.
    pub fn int_keys(&self) -> [(&'static str, i32); 21] {
        [
            (
                "group.consumer.session.timeout.ms",
                self.consumer_session_timeout_ms,
            ),
            (
                "group.consumer.min.session.timeout.ms",
                self.consumer_min_session_timeout_ms,
            ),
            (
                "group.consumer.max.session.timeout.ms",
                self.consumer_max_session_timeout_ms,
            ),
            (
                "group.consumer.heartbeat.interval.ms",
                self.consumer_heartbeat_interval_ms,
            ),
            (
                "group.consumer.min.heartbeat.interval.ms",
                self.consumer_min_heartbeat_interval_ms,
            ),
            (
                "group.consumer.max.heartbeat.interval.ms",
                self.consumer_max_heartbeat_interval_ms,
            ),
            (
                "group.share.session.timeout.ms",
                self.share_session_timeout_ms,
            ),
            (
                "group.share.min.session.timeout.ms",
                self.share_min_session_timeout_ms,
            ),
            (
                "group.share.max.session.timeout.ms",
                self.share_max_session_timeout_ms,
            ),
            (
                "group.share.heartbeat.interval.ms",
                self.share_heartbeat_interval_ms,
            ),
            (
                "group.share.min.heartbeat.interval.ms",
                self.share_min_heartbeat_interval_ms,
            ),
            (
                "group.share.max.heartbeat.interval.ms",
                self.share_max_heartbeat_interval_ms,
            ),
            (
                "group.share.record.lock.duration.ms",
                self.share_record_lock_duration_ms,
            ),
            (
                "group.share.min.record.lock.duration.ms",
                self.share_min_record_lock_duration_ms,
            ),
            (
                "group.share.max.record.lock.duration.ms",
                self.share_max_record_lock_duration_ms,
            ),
            (
                "group.share.delivery.count.limit",
                self.share_delivery_count_limit,
            ),
            (
                "group.share.min.delivery.count.limit",
                self.share_min_delivery_count_limit,
            ),
            (
                "group.share.max.delivery.count.limit",
                self.share_max_delivery_count_limit,
            ),
            (
                "group.share.partition.max.record.locks",
                self.share_partition_max_record_locks,
            ),
            (
                "group.share.min.partition.max.record.locks",
                self.share_min_partition_max_record_locks,
            ),
            (
                "group.share.max.partition.max.record.locks",
                self.share_max_partition_max_record_locks,
            ),
        ]
    }

    /// The field behind a Kafka key of [`Self::int_keys`].
    pub fn int_mut(&mut self, kafka_key: &str) -> Option<&mut i32> {
        Some(match kafka_key {
            "group.consumer.session.timeout.ms" => &mut self.consumer_session_timeout_ms,
            "group.consumer.min.session.timeout.ms" => &mut self.consumer_min_session_timeout_ms,
            "group.consumer.max.session.timeout.ms" => &mut self.consumer_max_session_timeout_ms,
            "group.consumer.heartbeat.interval.ms" => &mut self.consumer_heartbeat_interval_ms,
            "group.consumer.min.heartbeat.interval.ms" => {
                &mut self.consumer_min_heartbeat_interval_ms
            }
            "group.consumer.max.heartbeat.interval.ms" => {
                &mut self.consumer_max_heartbeat_interval_ms
            }
            "group.share.session.timeout.ms" => &mut self.share_session_timeout_ms,
            "group.share.min.session.timeout.ms" => &mut self.share_min_session_timeout_ms,
            "group.share.max.session.timeout.ms" => &mut self.share_max_session_timeout_ms,
            "group.share.heartbeat.interval.ms" => &mut self.share_heartbeat_interval_ms,
            "group.share.min.heartbeat.interval.ms" => &mut self.share_min_heartbeat_interval_ms,
            "group.share.max.heartbeat.interval.ms" => &mut self.share_max_heartbeat_interval_ms,
            "group.share.record.lock.duration.ms" => &mut self.share_record_lock_duration_ms,
            "group.share.min.record.lock.duration.ms" => {
                &mut self.share_min_record_lock_duration_ms
            }
            "group.share.max.record.lock.duration.ms" => {
                &mut self.share_max_record_lock_duration_ms
            }
            "group.share.delivery.count.limit" => &mut self.share_delivery_count_limit,
            "group.share.min.delivery.count.limit" => &mut self.share_min_delivery_count_limit,
            "group.share.max.delivery.count.limit" => &mut self.share_max_delivery_count_limit,
            "group.share.partition.max.record.locks" => &mut self.share_partition_max_record_locks,
            "group.share.min.partition.max.record.locks" => {
                &mut self.share_min_partition_max_record_locks
            }
            "group.share.max.partition.max.record.locks" => {
                &mut self.share_max_partition_max_record_locks
            }
            _ => return None,
        })
    }

    /// Every value at least 1 and every min no larger than its max. A default outside its
    /// own bounds is let through, unlike Kafka, so development configs can heartbeat faster
    /// than Kafka's 5 s floor; the bounds still apply to each group's own values.
    pub fn check(&self) -> Result<(), (String, String)> {
        let keys = self.int_keys();
        for (k, v) in keys {
            if v < 1 {
                return Err((k.to_string(), format!("must be at least 1, got {v}")));
            }
        }
        for (k, v) in keys {
            let Some(rest) = k.strip_prefix("group.") else {
                continue;
            };
            let Some((family, name)) = rest.split_once(".min.") else {
                continue;
            };
            let max_key = format!("group.{family}.max.{name}");
            if let Some((_, max)) = keys.iter().find(|(mk, _)| *mk == max_key) {
                if v > *max {
                    return Err((
                        k.to_string(),
                        format!("must not be above {max_key} ({max})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
    console_anonymous: bool,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: DEFAULT_HTTP_LISTEN.into(),
            console_anonymous: false,
        }
    }
}

/// The HTTP listener's setting (`http.listen`, `--http`, `SLUICE_HTTP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpListen {
    /// `off`: no HTTP listener.
    Off,
    /// Bind `HOST:PORT`; an empty host binds every interface, port 0 picks a free port.
    At {
        /// Host or IP address; empty for every interface.
        host: String,
        /// Port; 0 picks a free one.
        port: u16,
    },
}

impl HttpListen {
    /// Parses `off` or `HOST:PORT` (IPv6 hosts in brackets).
    pub fn parse(s: &str) -> Result<HttpListen, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(HttpListen::Off);
        }
        let (host, port) = parse_host_port(s)?;
        Ok(HttpListen::At { host, port })
    }

    /// Whether this is the built-in default address. A busy default port only warns (so a
    /// second broker on one machine, or a test broker, still starts); any other address
    /// that can't be bound stops start-up, as a Kafka listener does.
    pub fn is_default(&self) -> bool {
        Ok(self) == HttpListen::parse(DEFAULT_HTTP_LISTEN).as_ref()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOffsets {
    retention_minutes: i64,
}

impl Default for RawOffsets {
    fn default() -> Self {
        // Kafka's `offsets.retention.minutes` default: 7 days.
        RawOffsets {
            retention_minutes: 7 * 24 * 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTransaction {
    max_timeout_ms: i32,
    abort_timed_out_transaction_cleanup_interval_ms: u64,
    id_expiration_ms: i64,
}

impl Default for RawTransaction {
    fn default() -> Self {
        RawTransaction {
            // Kafka's `transaction.max.timeout.ms`: 15 minutes.
            max_timeout_ms: 900_000,
            // Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms`: 10 s.
            abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            // Kafka's `transactional.id.expiration.ms`: 7 days.
            id_expiration_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// The transaction coordinator's settings (Kafka's `transaction.*` broker keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often open
    /// transactions past their timeout are looked for and aborted.
    pub abort_interval_ms: u64,
    /// `transactional.id.expiration.ms`: a transactional id idle (no transaction open) this
    /// long is forgotten.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        let r = RawTransaction::default();
        TxnConfig {
            max_timeout_ms: r.max_timeout_ms,
            abort_interval_ms: r.abort_timed_out_transaction_cleanup_interval_ms,
            id_expiration_ms: r.id_expiration_ms,
        }
    }
}

/// The validated configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `node.id`.
    pub node_id: i32,
    /// Addresses to bind, `HOST:PORT`.
    pub listeners: Vec<String>,
    /// Addresses to advertise, one per listener; empty means "the address the client
    /// connected to".
    pub advertised_listeners: Vec<String>,
    /// `log.dir`.
    pub data_dir: PathBuf,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// Treat a replication factor above 1 as 1 instead of INVALID_REPLICATION_FACTOR.
    pub accept_replication_factor_above_one: bool,
    /// `max.connections`.
    pub max_connections: usize,
    /// `socket.request.max.bytes`.
    pub request_max_bytes: usize,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: u64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`: pause between compaction passes.
    pub cleaner_backoff_ms: u64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups); the same as
    /// `group.consumer_heartbeat_interval_ms`.
    pub consumer_heartbeat_interval_ms: i32,
    /// The `group.*` keys: group config defaults and bounds.
    pub group: GroupSettings,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `transaction.*` keys.
    pub txn: TxnConfig,
    /// Kafka's security properties (`[security]` table and `KAFKA_*` variables).
    pub security: crate::security::Props,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions kept at once; 0 turns
    /// incremental fetch sessions off.
    pub fetch_session_cache_slots: usize,
    /// `min.incremental.fetch.session.eviction.ms`: a fetch session unused this long may be
    /// evicted.
    pub fetch_session_eviction_ms: u64,
    /// Broker-wide defaults of the topic-level log configs.
    pub log: LogConfig,
    /// `http.listen`: the HTTP listener for `/metrics` and the web console.
    pub http: HttpListen,
    /// `http.console_anonymous`: serve the web console without authentication even when
    /// the HTTP listener is bound beyond loopback and the broker has no SASL users (unsafe;
    /// see `crate::http::console::auth`).
    pub http_console_anonymous: bool,
}

impl Default for Config {
    fn default() -> Self {
        // The defaults are valid by construction.
        match RawConfig::default().validate("defaults") {
            Ok(c) => c,
            Err(e) => unreachable!("default config is invalid: {e}"),
        }
    }
}

impl RawConfig {
    fn validate(self, path: &str) -> Result<Config, Error> {
        let invalid = |key: &str, msg: String| Error::Invalid {
            path: path.to_string(),
            key: key.to_string(),
            msg,
        };
        let b = self.broker;
        if b.num_partitions < 1 {
            return Err(invalid(
                "broker.num_partitions",
                format!("must be at least 1, got {}", b.num_partitions),
            ));
        }
        if b.default_replication_factor < 1 {
            return Err(invalid(
                "broker.default_replication_factor",
                format!("must be at least 1, got {}", b.default_replication_factor),
            ));
        }
        if b.node_id < 0 {
            return Err(invalid(
                "broker.node_id",
                format!("must not be negative, got {}", b.node_id),
            ));
        }
        if b.max_connections == 0 {
            return Err(invalid(
                "broker.max_connections",
                "must be at least 1".into(),
            ));
        }
        if b.message_max_bytes < crate::log::batch::HEADER_LEN {
            return Err(invalid(
                "broker.message_max_bytes",
                format!("must be at least {}", crate::log::batch::HEADER_LEN),
            ));
        }
        if b.listeners.is_empty() {
            return Err(invalid(
                "broker.listeners",
                "at least one listener is needed".into(),
            ));
        }
        for l in &b.listeners {
            parse_listener(l).map_err(|m| invalid("broker.listeners", m))?;
        }
        for l in &b.advertised_listeners {
            parse_listener(l).map_err(|m| invalid("broker.advertised_listeners", m))?;
        }
        if !b.advertised_listeners.is_empty() && b.advertised_listeners.len() != b.listeners.len() {
            return Err(invalid(
                "broker.advertised_listeners",
                format!(
                    "has {} entries but there are {} listeners; give one per listener",
                    b.advertised_listeners.len(),
                    b.listeners.len()
                ),
            ));
        }
        if let Err((key, msg)) = self.group.check() {
            let key = key.strip_prefix("group.").unwrap_or(&key).replace('.', "_");
            return Err(invalid(&format!("group.{key}"), msg));
        }
        if self.offsets.retention_minutes < 1 {
            return Err(invalid(
                "offsets.retention_minutes",
                "must be at least 1".into(),
            ));
        }
        let s = self.socket;
        if s.request_max_bytes < 1024 {
            return Err(invalid(
                "socket.request_max_bytes",
                "must be at least 1024".into(),
            ));
        }
        let l = self.log;
        if l.segment_bytes < 14 {
            return Err(invalid(
                "log.segment_bytes",
                format!("must be at least 14, got {}", l.segment_bytes),
            ));
        }
        if l.roll_ms < 1 {
            return Err(invalid("log.roll_ms", "must be at least 1".into()));
        }
        if l.index_size_max_bytes < 8 {
            return Err(invalid(
                "log.index_size_max_bytes",
                "must be at least 8".into(),
            ));
        }
        if l.flush_interval_messages < 1 {
            return Err(invalid(
                "log.flush_interval_messages",
                format!("must be at least 1, got {}", l.flush_interval_messages),
            ));
        }
        if !(0.0..=1.0).contains(&l.cleaner_min_cleanable_ratio) {
            return Err(invalid(
                "log.cleaner_min_cleanable_ratio",
                "must be between 0 and 1".into(),
            ));
        }
        if l.cleaner_backoff_ms == 0 {
            return Err(invalid(
                "log.cleaner_backoff_ms",
                "must be at least 1".into(),
            ));
        }
        if l.retention_check_interval_ms == 0 {
            return Err(invalid(
                "log.retention_check_interval_ms",
                "must be at least 1".into(),
            ));
        }
        if l.flush_offset_checkpoint_interval_ms == 0 {
            return Err(invalid(
                "log.flush_offset_checkpoint_interval_ms",
                "must be at least 1".into(),
            ));
        }
        let timestamp_type = match l.message_timestamp_type.as_str() {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => {
                return Err(invalid(
                    "log.message_timestamp_type",
                    format!("must be CreateTime or LogAppendTime, got '{other}'"),
                ))
            }
        };
        for p in l.cleanup_policy.split(',') {
            if !matches!(p.trim(), "delete" | "compact") {
                return Err(invalid(
                    "log.cleanup_policy",
                    format!("each policy must be delete or compact, got '{p}'"),
                ));
            }
        }
        let http = HttpListen::parse(&self.http.listen).map_err(|m| invalid("http.listen", m))?;
        let http_console_anonymous = self.http.console_anonymous;
        let mut security = crate::security::Props::default();
        for (k, v) in self.security {
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(invalid(
                        &format!("security.\"{k}\""),
                        format!(
                            "must be a string, number or boolean (Kafka property value), got {}",
                            other.type_str()
                        ),
                    ))
                }
            };
            security.set(k, v);
        }
        for l in &b.listeners {
            let (name, _, _) = parse_listener(l).map_err(|m| invalid("broker.listeners", m))?;
            if security.protocol_of(name.as_deref()).is_none() {
                return Err(invalid(
                    "broker.listeners",
                    format!(
                        "listener {} has no security protocol: name it PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, or map it in security.\"listener.security.protocol.map\"",
                        name.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(Config {
            node_id: b.node_id,
            listeners: b.listeners,
            advertised_listeners: b.advertised_listeners,
            data_dir: l.dir,
            auto_create_topics: b.auto_create_topics_enable,
            num_partitions: b.num_partitions,
            default_replication_factor: b.default_replication_factor,
            accept_replication_factor_above_one: b.accept_replication_factor_above_one,
            max_connections: b.max_connections,
            request_max_bytes: s.request_max_bytes,
            checkpoint_interval_ms: l.flush_offset_checkpoint_interval_ms,
            retention_check_interval_ms: l.retention_check_interval_ms,
            group_initial_rebalance_delay_ms: self.group.initial_rebalance_delay_ms,
            consumer_heartbeat_interval_ms: self.group.consumer_heartbeat_interval_ms,
            group: self.group.clone(),
            offsets_retention_ms: self.offsets.retention_minutes.saturating_mul(60_000),
            fetch_session_cache_slots: b.max_incremental_fetch_session_cache_slots,
            fetch_session_eviction_ms: b.min_incremental_fetch_session_eviction_ms,
            txn: {
                let t = self.transaction;
                if t.max_timeout_ms < 1 {
                    return Err(invalid(
                        "transaction.max_timeout_ms",
                        format!("must be at least 1, got {}", t.max_timeout_ms),
                    ));
                }
                TxnConfig {
                    max_timeout_ms: t.max_timeout_ms,
                    abort_interval_ms: t.abort_timed_out_transaction_cleanup_interval_ms.max(1),
                    id_expiration_ms: t.id_expiration_ms,
                }
            },
            log: LogConfig {
                segment_bytes: l.segment_bytes,
                segment_ms: l.roll_ms,
                segment_index_bytes: l.index_size_max_bytes,
                index_interval_bytes: l.index_interval_bytes,
                flush_messages: l.flush_interval_messages,
                flush_ms: l.flush_interval_ms,
                max_message_bytes: b.message_max_bytes,
                timestamp_type,
                // Broker-wide through `log.message.timestamp.*.max.ms` at run time and
                // per topic; the TOML file has no key for them yet.
                timestamp_before_max_ms: crate::log::config::DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
                timestamp_after_max_ms: crate::log::config::DEFAULT_TIMESTAMP_AFTER_MAX_MS,
                retention_ms: l.retention_ms,
                retention_bytes: l.retention_bytes,
                cleanup_policy: l.cleanup_policy,
                delete_retention_ms: l.cleaner_delete_retention_ms,
                min_cleanable_dirty_ratio: l.cleaner_min_cleanable_ratio,
                min_compaction_lag_ms: l.cleaner_min_compaction_lag_ms,
            },
            cleaner_backoff_ms: l.cleaner_backoff_ms,
            security,
            http,
            http_console_anonymous,
        })
    }
}

impl Config {
    /// Read and validate a TOML config file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate TOML text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            msg: e.to_string().trim_end().to_string(),
        })?;
        raw.validate(&path.display().to_string())
    }
}

/// Split a listener `[NAME://]HOST:PORT` into its parts; an empty host means all
/// interfaces (IPv4 and IPv6), as in Kafka's `listeners`.
pub fn parse_listener(s: &str) -> Result<(Option<String>, String, u16), String> {
    let (name, rest) = match s.split_once("://") {
        Some((n, r)) if !n.is_empty() => (Some(n.to_string()), r),
        Some((_, r)) => (None, r),
        None => (None, s),
    };
    let (host, port) = parse_host_port(rest)?;
    Ok((name, host, port))
}

/// Split `HOST:PORT` (IPv6 hosts in brackets), checking the port.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{s}': port '{port}' is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kafka() {
        let c = Config::default();
        assert_eq!(c.listeners, vec![":9092".to_string()]);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.auto_create_topics);
        assert_eq!(c.log.segment_bytes, 1 << 30);
        assert_eq!(c.log.flush_messages, i64::MAX);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert!(c.http.is_default());
    }

    #[test]
    fn http_listen_is_off_or_host_port() {
        assert_eq!(HttpListen::parse("off"), Ok(HttpListen::Off));
        assert_eq!(
            HttpListen::parse("[::1]:0"),
            Ok(HttpListen::At {
                host: "::1".into(),
                port: 0
            })
        );
        assert!(!HttpListen::parse("127.0.0.1:9090").unwrap().is_default());
        let e = Config::parse("[http]\nlisten = \"nope\"\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("http.listen"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let e = Config::parse("[log]\nsegment_byts = 5\n", Path::new("x.toml")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("x.toml") && m.contains("segment_byts"), "{m}");
    }

    #[test]
    fn bad_value_names_the_dotted_key() {
        let e =
            Config::parse("[log]\nflush_interval_messages = 0\n", Path::new("c.toml")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("c.toml") && m.contains("log.flush_interval_messages"),
            "{m}"
        );
        let e =
            Config::parse("[broker]\nlisteners = [\"nohost\"]\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("broker.listeners"));
    }

    #[test]
    fn example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.num_partitions, 1);
    }
}
