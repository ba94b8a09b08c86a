//! DescribeConfigs for topics, the broker and groups: every key Kafka 4.3.1 lists for the
//! resource (`config::kafka_keys`), with the value in force and where it comes from. Tools and
//! UIs break on empty answers, so every key is always listed. Broker-logger resources get an
//! empty list.
//!
//! Sources follow Kafka's order: a topic's or group's own value, then this broker's run-time
//! value (DYNAMIC_BROKER_CONFIG), the cluster-wide run-time default
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), the broker's config file or environment
//! (STATIC_BROKER_CONFIG), and Kafka's default (DEFAULT_CONFIG).

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use std::collections::BTreeMap;

use crate::api::{sb, ApiError, Code, Ctx};
use crate::config::{kafka_keys, Config};
use crate::log::DynamicLevel;

/// `ConfigSource.DYNAMIC_TOPIC_CONFIG`.
pub const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;
/// `ConfigSource.DYNAMIC_BROKER_CONFIG`.
pub const CONFIG_SOURCE_DYNAMIC_BROKER: i8 = 2;
/// `ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG`.
pub const CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
/// `ConfigSource.STATIC_BROKER_CONFIG`.
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// `ConfigSource.DEFAULT_CONFIG`.
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;
/// `ConfigSource.GROUP_CONFIG` (DYNAMIC_GROUP_CONFIG in the Admin client).
pub const CONFIG_SOURCE_DYNAMIC_GROUP: i8 = 8;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_GROUP: i8 = 32;

/// One-line documentation of the keys Sluice acts on (`include_documentation`).
fn documentation(key: &str) -> &'static str {
    match key {
        "cleanup.policy" | "log.cleanup.policy" => {
            "The retention policy for old log segments: delete or compact."
        }
        "compression.type" => {
            "Final compression type of the topic; 'producer' keeps what the producer sent."
        }
        "flush.messages" | "log.flush.interval.messages" => {
            "Messages accumulated before the log is fsynced; 1 fsyncs before every acknowledgement."
        }
        "flush.ms" | "log.flush.interval.ms" => {
            "Maximum time a message stays in memory before being fsynced."
        }
        "max.message.bytes" | "message.max.bytes" => "Largest record batch size allowed.",
        "message.timestamp.type" | "log.message.timestamp.type" => "CreateTime or LogAppendTime.",
        "min.cleanable.dirty.ratio" => "Dirty ratio above which the log is compacted.",
        "retention.ms" | "log.retention.ms" => {
            "How long a log segment is kept before it is deleted."
        }
        "retention.bytes" | "log.retention.bytes" => {
            "Maximum size a partition can grow to before old segments are deleted."
        }
        "segment.bytes" | "log.segment.bytes" => "Segment file size.",
        "segment.ms" | "log.roll.ms" => {
            "Time after which a new segment is rolled even if not full."
        }
        "consumer.session.timeout.ms" | "group.consumer.session.timeout.ms" => {
            "Time after which a KIP-848 consumer group member that sent no heartbeat is removed."
        }
        "consumer.heartbeat.interval.ms" | "group.consumer.heartbeat.interval.ms" => {
            "How often KIP-848 consumer group members heartbeat."
        }
        _ => "",
    }
}

/// The broker property that sets a topic config's default, as Kafka names it.
pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
    crate::log::config::broker_key(topic_key)
}

/// The values the broker's config file and environment give the broker keys Sluice knows,
/// under Kafka's names. Keys Sluice doesn't act on are absent (Kafka's default applies).
fn static_values(c: &Config) -> Vec<(&'static str, String)> {
    let joined = |v: &[String]| {
        v.iter()
            .map(|l| {
                if l.contains("://") {
                    l.clone()
                } else {
                    format!("PLAINTEXT://{l}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut v: Vec<(&'static str, String)> = vec![
        ("node.id", c.node_id.to_string()),
        ("broker.id", c.node_id.to_string()),
        ("process.roles", "broker,controller".into()),
        ("listeners", joined(&c.listeners)),
        ("advertised.listeners", joined(&c.advertised_listeners)),
        ("log.dirs", c.data_dir.display().to_string()),
        ("log.dir", c.data_dir.display().to_string()),
        ("num.partitions", c.num_partitions.to_string()),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
        ),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
        ),
        // One node: every internal topic has one replica.
        ("offsets.topic.replication.factor", "1".into()),
        ("offsets.topic.num.partitions", "1".into()),
        ("transaction.state.log.replication.factor", "1".into()),
        ("transaction.state.log.min.isr", "1".into()),
        ("transaction.state.log.num.partitions", "1".into()),
        (
            "share.coordinator.state.topic.replication.factor",
            "1".into(),
        ),
        ("share.coordinator.state.topic.min.isr", "1".into()),
        ("socket.request.max.bytes", c.request_max_bytes.to_string()),
        ("max.connections", c.max_connections.to_string()),
        (
            "group.initial.rebalance.delay.ms",
            c.group_initial_rebalance_delay_ms.to_string(),
        ),
        (
            "log.flush.offset.checkpoint.interval.ms",
            c.checkpoint_interval_ms.to_string(),
        ),
        (
            "log.retention.check.interval.ms",
            c.retention_check_interval_ms.to_string(),
        ),
        ("log.cleaner.backoff.ms", c.cleaner_backoff_ms.to_string()),
        (
            "offsets.retention.minutes",
            (c.offsets_retention_ms / 60_000).to_string(),
        ),
        (
            "transaction.max.timeout.ms",
            c.txn.max_timeout_ms.to_string(),
        ),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            c.txn.abort_interval_ms.to_string(),
        ),
        (
            "transactional.id.expiration.ms",
            c.txn.id_expiration_ms.to_string(),
        ),
    ];
    for (k, val) in c.group.int_keys() {
        v.push((k, val.to_string()));
    }
    let unmodelled = crate::log::config::ACCEPTED_NO_EFFECT;
    for (k, val) in c.log.entries() {
        if unmodelled.contains(&k) {
            continue;
        }
        if let Some(b) = broker_synonym(k) {
            v.push((b, val));
        }
    }
    v
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Kafka's name.
    pub key: String,
    /// Value in force (None: sensitive or unset).
    pub value: Option<String>,
    /// ConfigSource.
    pub source: i8,
    /// Whether it can only change with a restart.
    pub read_only: bool,
    /// Whether the value is hidden.
    pub sensitive: bool,
    /// ConfigType.
    pub ty: i8,
    /// Every level that sets it, highest first: (name, value, source).
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

/// The broker-level layers of one broker key, highest first: this broker's run-time value,
/// the cluster default, the config file, and the default.
struct BrokerLayers {
    per_broker: BTreeMap<String, String>,
    cluster: BTreeMap<String, String>,
    statics: Vec<(&'static str, String)>,
    defaults: Vec<(&'static str, String)>,
}

impl BrokerLayers {
    fn new(b: &crate::api::Broker) -> Self {
        BrokerLayers {
            per_broker: b.logs.dynamic_configs(DynamicLevel::Broker),
            cluster: b.logs.dynamic_configs(DynamicLevel::ClusterDefault),
            statics: static_values(&b.config),
            defaults: static_values(&Config::default()),
        }
    }

    /// (value, source) of every level that sets `key`, highest first; the last is the
    /// default, which is always there when Sluice or Kafka knows one.
    fn synonyms(&self, key: &str) -> Vec<(Option<String>, i8)> {
        let mut out = Vec::new();
        if let Some(v) = self.per_broker.get(key) {
            out.push((Some(v.clone()), CONFIG_SOURCE_DYNAMIC_BROKER));
        }
        if let Some(v) = self.cluster.get(key) {
            out.push((Some(v.clone()), CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER));
        }
        let default = self
            .defaults
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                kafka_keys::find(kafka_keys::BROKER_KEYS, key)
                    .and_then(|k| k.default)
                    .map(str::to_string)
            });
        if let Some((_, v)) = self.statics.iter().find(|(k, _)| *k == key) {
            if Some(v) != default.as_ref() {
                out.push((Some(v.clone()), CONFIG_SOURCE_STATIC_BROKER));
            }
        }
        if default.is_some() || kafka_keys::find(kafka_keys::BROKER_KEYS, key).is_some() {
            out.push((default, CONFIG_SOURCE_DEFAULT));
        }
        out
    }
}

/// Every broker key of broker `name` ("" is the cluster default: only what was set there,
/// as Kafka answers).
fn broker_view(b: &crate::api::Broker, name: &str) -> Vec<Entry> {
    let layers = BrokerLayers::new(b);
    if name.is_empty() {
        return layers
            .cluster
            .iter()
            .map(|(k, v)| {
                let info = kafka_keys::find(kafka_keys::BROKER_KEYS, k);
                let sensitive = info.is_none_or(|i| i.sensitive);
                Entry {
                    key: k.clone(),
                    value: (!sensitive).then(|| v.clone()),
                    source: CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER,
                    read_only: info.is_none_or(|i| !i.dynamic),
                    sensitive,
                    ty: info.map_or(0, |i| i.ty),
                    synonyms: vec![(
                        k.clone(),
                        (!sensitive).then(|| v.clone()),
                        CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER,
                    )],
                }
            })
            .collect();
    }
    let mut out: Vec<Entry> = kafka_keys::BROKER_KEYS
        .iter()
        .map(|info| {
            let syn = layers.synonyms(info.name);
            let (value, source) = syn
                .first()
                .cloned()
                .unwrap_or((None, CONFIG_SOURCE_DEFAULT));
            let hide = |v: Option<String>| if info.sensitive { None } else { v };
            Entry {
                key: info.name.to_string(),
                value: hide(value),
                source,
                read_only: !info.dynamic,
                sensitive: info.sensitive,
                ty: info.ty,
                synonyms: syn
                    .into_iter()
                    .map(|(v, s)| (info.name.to_string(), hide(v), s))
                    .collect(),
            }
        })
        .collect();
    // Keys Kafka doesn't know, stored as given: reported as Kafka reports them (hidden,
    // read-only, type UNKNOWN).
    for k in layers.per_broker.keys() {
        if kafka_keys::find(kafka_keys::BROKER_KEYS, k).is_none() {
            out.push(Entry {
                key: k.clone(),
                value: None,
                source: CONFIG_SOURCE_DYNAMIC_BROKER,
                read_only: true,
                sensitive: true,
                ty: 0,
                synonyms: vec![(k.clone(), None, CONFIG_SOURCE_DYNAMIC_BROKER)],
            });
        }
    }
    out
}

/// Every topic key of `topic`.
fn topic_view(b: &crate::api::Broker, topic: &crate::log::Topic) -> Vec<Entry> {
    let layers = BrokerLayers::new(b);
    let effective = topic.config.entries();
    let unmodelled = crate::log::config::ACCEPTED_NO_EFFECT;
    kafka_keys::TOPIC_KEYS
        .iter()
        .map(|info| {
            let k = info.name;
            let mut synonyms: Vec<(String, Option<String>, i8)> = Vec::new();
            if let Some(v) = topic.overrides.get(k) {
                synonyms.push((k.to_string(), Some(v.clone()), CONFIG_SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(bk) = broker_synonym(k) {
                for (v, s) in layers.synonyms(bk) {
                    synonyms.push((bk.to_string(), v, s));
                }
            }
            let source = synonyms.first().map_or(CONFIG_SOURCE_DEFAULT, |s| s.2);
            // The value in force: Sluice's effective config for the keys it acts on (it
            // already holds overrides and run-time broker defaults), else the first level
            // that sets it, else Kafka's default.
            let value = effective
                .iter()
                .find(|(ek, _)| *ek == k && !unmodelled.contains(&k))
                .map(|(_, v)| v.clone())
                .or_else(|| synonyms.first().and_then(|s| s.1.clone()))
                .or_else(|| info.default.map(str::to_string));
            Entry {
                key: k.to_string(),
                value,
                source,
                read_only: false,
                sensitive: false,
                ty: info.ty,
                synonyms,
            }
        })
        .collect()
}

/// Every group key of `group`.
fn group_view(b: &crate::api::Broker, group: &str) -> Vec<Entry> {
    b.groups
        .configs
        .describe(group)
        .into_iter()
        .map(|e| {
            let mut synonyms = Vec::new();
            if e.overridden {
                synonyms.push((
                    e.key.to_string(),
                    Some(e.value.clone()),
                    CONFIG_SOURCE_DYNAMIC_GROUP,
                ));
            }
            if let Some((bk, bv, configured)) = e.broker {
                let s = if configured {
                    CONFIG_SOURCE_STATIC_BROKER
                } else {
                    CONFIG_SOURCE_DEFAULT
                };
                synonyms.push((bk.to_string(), Some(bv), s));
            }
            Entry {
                key: e.key.to_string(),
                value: Some(e.value),
                source: synonyms.first().map_or(CONFIG_SOURCE_DEFAULT, |s| s.2),
                read_only: false,
                sensitive: false,
                ty: e.ty,
                synonyms,
            }
        })
        .collect()
}

fn wanted(keys: &Option<Vec<kafka_protocol::protocol::StrBytes>>, k: &str) -> bool {
    keys.as_ref()
        .is_none_or(|ks| ks.iter().any(|x| x.as_str() == k))
}

/// Handle DescribeConfigs.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, ApiError> {
    let b = ctx.broker;
    let doc = req.include_documentation;
    let synonyms = req.include_synonyms;
    let to_wire = |e: Entry| {
        let mut r = DescribeConfigsResourceResult::default()
            .with_documentation(doc.then(|| sb(documentation(&e.key))))
            .with_name(sb(e.key))
            .with_value(e.value.map(sb))
            .with_read_only(e.read_only)
            .with_is_sensitive(e.sensitive)
            .with_config_source(e.source)
            .with_config_type(e.ty);
        if synonyms {
            r = r.with_synonyms(
                e.synonyms
                    .into_iter()
                    .map(|(n, v, s)| {
                        DescribeConfigsSynonym::default()
                            .with_name(sb(n))
                            .with_value(v.map(sb))
                            .with_source(s)
                    })
                    .collect(),
            );
        }
        r
    };
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            if let Some(code) = super::config_denied(
                ctx,
                r.resource_type,
                r.resource_name.as_str(),
                crate::security::acl::Operation::DescribeConfigs,
            ) {
                return base.with_error_code(code.code());
            }
            let entries = match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = b.logs.topic(r.resource_name.as_str()) else {
                        return base
                            .with_error_code(Code::UnknownTopicOrPartition.code())
                            .with_error_message(Some(sb(format!(
                                "topic '{}' does not exist",
                                r.resource_name
                            ))));
                    };
                    topic_view(b, &topic)
                }
                RESOURCE_BROKER => {
                    let name = r.resource_name.as_str();
                    if !name.is_empty() && name != b.config.node_id.to_string() {
                        return base
                            .with_error_code(Code::InvalidRequest.code())
                            .with_error_message(Some(sb(format!(
                                "unexpected broker id, expected {}",
                                b.config.node_id
                            ))));
                    }
                    broker_view(b, name)
                }
                RESOURCE_GROUP => group_view(b, r.resource_name.as_str()),
                RESOURCE_BROKER_LOGGER => return base,
                other => {
                    return base
                        .with_error_code(Code::InvalidRequest.code())
                        .with_error_message(Some(sb(format!("unsupported resource type {other}"))))
                }
            };
            let configs = entries
                .into_iter()
                .filter(|e| wanted(&r.configuration_keys, &e.key))
                .map(&to_wire)
                .collect();
            base.with_configs(configs)
        })
        .collect();
    Ok(DescribeConfigsResponse::default().with_results(results))
}
