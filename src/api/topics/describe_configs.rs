//! DescribeConfigs for topics (every topic-level key with its value and source) and for the
//! broker (its Kafka-named properties). Tools and UIs break on empty answers, so every key is
//! always listed. Broker-logger resources get an empty list.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::config::Config;

/// `ConfigSource.DYNAMIC_TOPIC_CONFIG`.
pub const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;
/// `ConfigSource.DYNAMIC_BROKER_CONFIG`.
pub const CONFIG_SOURCE_DYNAMIC_BROKER: i8 = 2;
/// `ConfigSource.STATIC_BROKER_CONFIG`.
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// `ConfigSource.DEFAULT_CONFIG`.
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

// ConfigType values (DescribeConfigs v3+).
const T_BOOLEAN: i8 = 1;
const T_STRING: i8 = 2;
const T_INT: i8 = 3;
const T_LONG: i8 = 5;
const T_DOUBLE: i8 = 6;
const T_LIST: i8 = 7;

/// Type and one-line documentation of a config key.
fn describe(key: &str) -> (i8, &'static str) {
    match key {
        "cleanup.policy" | "log.cleanup.policy" => (T_LIST, "The retention policy for old log segments: delete or compact."),
        "compression.type" => (T_STRING, "Final compression type of the topic; 'producer' keeps what the producer sent."),
        "flush.messages" | "log.flush.interval.messages" => {
            (T_LONG, "Messages accumulated before the log is fsynced; 1 fsyncs before every acknowledgement.")
        }
        "flush.ms" | "log.flush.interval.ms" => (T_LONG, "Maximum time a message stays in memory before being fsynced."),
        "max.message.bytes" | "message.max.bytes" => (T_INT, "Largest record batch size allowed."),
        "message.timestamp.type" | "log.message.timestamp.type" => (T_STRING, "CreateTime or LogAppendTime."),
        "min.cleanable.dirty.ratio" => (T_DOUBLE, "Dirty ratio above which the log is compacted."),
        "preallocate" | "unclean.leader.election.enable" | "auto.create.topics.enable" => (T_BOOLEAN, ""),
        "retention.ms" | "log.retention.ms" => (T_LONG, "How long a log segment is kept before it is deleted."),
        "retention.bytes" | "log.retention.bytes" => (T_LONG, "Maximum size a partition can grow to before old segments are deleted."),
        "segment.bytes" | "log.segment.bytes" => (T_INT, "Segment file size."),
        "segment.ms" | "log.roll.ms" => (T_LONG, "Time after which a new segment is rolled even if not full."),
        "listeners" | "advertised.listeners" | "log.dirs" | "log.dir" => (T_STRING, ""),
        "min.insync.replicas" | "num.partitions" | "node.id" | "broker.id" | "index.interval.bytes"
        | "segment.index.bytes" | "default.replication.factor" | "socket.request.max.bytes"
        | "log.index.interval.bytes" | "log.index.size.max.bytes" | "group.initial.rebalance.delay.ms"
        | "offsets.topic.replication.factor" | "transaction.state.log.replication.factor" | "max.connections" => (T_INT, ""),
        _ => (T_LONG, ""),
    }
}

/// The broker property that sets a topic config's default, as Kafka names it.
pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
    crate::log::config::broker_key(topic_key)
}

/// The broker's properties under Kafka's names, with whether each is at its default.
pub fn broker_entries(
    c: &Config,
    effective: &crate::log::LogConfig,
    dynamic: &std::collections::BTreeMap<String, String>,
) -> Vec<BrokerEntry> {
    let d = Config::default();
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
    let v = vec![
        ("node.id", c.node_id.to_string(), c.node_id == d.node_id),
        ("broker.id", c.node_id.to_string(), c.node_id == d.node_id),
        (
            "listeners",
            joined(&c.listeners),
            c.listeners == d.listeners,
        ),
        (
            "advertised.listeners",
            joined(&c.advertised_listeners),
            c.advertised_listeners.is_empty(),
        ),
        (
            "log.dirs",
            c.data_dir.display().to_string(),
            c.data_dir == d.data_dir,
        ),
        (
            "num.partitions",
            c.num_partitions.to_string(),
            c.num_partitions == d.num_partitions,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            c.auto_create_topics == d.auto_create_topics,
        ),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
            c.default_replication_factor == d.default_replication_factor,
        ),
        ("offsets.topic.replication.factor", "1".into(), true),
        ("transaction.state.log.replication.factor", "1".into(), true),
        ("min.insync.replicas", "1".into(), true),
        (
            "socket.request.max.bytes",
            c.request_max_bytes.to_string(),
            c.request_max_bytes == d.request_max_bytes,
        ),
        (
            "max.connections",
            c.max_connections.to_string(),
            c.max_connections == d.max_connections,
        ),
        (
            "group.initial.rebalance.delay.ms",
            c.group_initial_rebalance_delay_ms.to_string(),
            c.group_initial_rebalance_delay_ms == d.group_initial_rebalance_delay_ms,
        ),
        (
            "log.flush.offset.checkpoint.interval.ms",
            c.checkpoint_interval_ms.to_string(),
            c.checkpoint_interval_ms == d.checkpoint_interval_ms,
        ),
    ];
    let mut out: Vec<BrokerEntry> = v
        .into_iter()
        .map(|(k, val, is_default)| BrokerEntry {
            key: k,
            value: val,
            source: if is_default {
                CONFIG_SOURCE_DEFAULT
            } else {
                CONFIG_SOURCE_STATIC_BROKER
            },
            read_only: true,
        })
        .collect();
    // Topic-level defaults under their broker names; these may change at run time.
    let defaults = d.log.entries();
    let statics = c.log.entries();
    for (k, val) in effective.entries() {
        let Some(broker_key) = broker_synonym(k) else {
            continue;
        };
        let source = if dynamic.contains_key(broker_key) {
            CONFIG_SOURCE_DYNAMIC_BROKER
        } else if statics
            .iter()
            .any(|(sk, sv)| *sk == k && defaults.iter().any(|(dk, dv)| dk == sk && dv == sv))
        {
            CONFIG_SOURCE_DEFAULT
        } else {
            CONFIG_SOURCE_STATIC_BROKER
        };
        out.push(BrokerEntry {
            key: broker_key,
            value: val,
            source,
            read_only: false,
        });
    }
    out
}

/// One broker property as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub struct BrokerEntry {
    /// Kafka's name.
    pub key: &'static str,
    /// Value in force.
    pub value: String,
    /// ConfigSource.
    pub source: i8,
    /// Whether it can only change with a restart.
    pub read_only: bool,
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
    let entry = |k: &str, v: String, source: i8, read_only: bool| {
        let (ty, text) = describe(k);
        DescribeConfigsResourceResult::default()
            .with_name(sb(k))
            .with_value(Some(sb(v)))
            .with_read_only(read_only)
            .with_config_source(source)
            .with_config_type(ty)
            .with_documentation(doc.then(|| sb(text)))
    };
    let broker_cfg = broker_entries(
        &b.config,
        &b.logs.defaults(),
        &b.logs.dynamic_broker_configs(),
    );
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = b.logs.topic(r.resource_name.as_str()) else {
                        return base
                            .with_error_code(Code::UnknownTopicOrPartition.code())
                            .with_error_message(Some(sb(format!(
                                "topic '{}' does not exist",
                                r.resource_name
                            ))));
                    };
                    let configs = topic
                        .config
                        .entries()
                        .into_iter()
                        .filter(|(k, _)| wanted(&r.configuration_keys, k))
                        .map(|(k, v)| {
                            let dynamic = topic.overrides.contains_key(k);
                            let source = if dynamic {
                                CONFIG_SOURCE_DYNAMIC_TOPIC
                            } else {
                                CONFIG_SOURCE_DEFAULT
                            };
                            let mut e = entry(k, v.clone(), source, false);
                            if req.include_synonyms {
                                let mut syn = Vec::new();
                                if dynamic {
                                    syn.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(sb(k))
                                            .with_value(Some(sb(v)))
                                            .with_source(CONFIG_SOURCE_DYNAMIC_TOPIC),
                                    );
                                }
                                if let Some(be) = broker_cfg
                                    .iter()
                                    .find(|be| Some(be.key) == broker_synonym(k))
                                {
                                    syn.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(sb(be.key))
                                            .with_value(Some(sb(be.value.clone())))
                                            .with_source(be.source),
                                    );
                                }
                                e = e.with_synonyms(syn);
                            }
                            e
                        })
                        .collect();
                    base.with_configs(configs)
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
                    let configs = broker_cfg
                        .iter()
                        .filter(|be| wanted(&r.configuration_keys, be.key))
                        .map(|be| entry(be.key, be.value.clone(), be.source, be.read_only))
                        .collect();
                    base.with_configs(configs)
                }
                RESOURCE_BROKER_LOGGER => base,
                other => base
                    .with_error_code(Code::InvalidRequest.code())
                    .with_error_message(Some(sb(format!("unsupported resource type {other}")))),
            }
        })
        .collect();
    Ok(DescribeConfigsResponse::default().with_results(results))
}
