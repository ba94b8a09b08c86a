//! AlterConfigs (replace a resource's settings) and IncrementalAlterConfigs (SET, DELETE,
//! APPEND, SUBTRACT per key) for topics, the broker and groups. Values are validated before
//! anything changes, persisted, and applied live.
//!
//! - Topics: the topic's overrides, applied to its partitions.
//! - Broker (resource name = the broker id, or "" for the cluster-wide default): every key
//!   Kafka 4.3 lets change at run time may be set. Those that default topic configs
//!   (`log.retention.ms`, ...) apply to every topic without its own override; the others are
//!   kept and reported, and keys Kafka doesn't know are kept too, as Kafka keeps them. Keys
//!   Kafka refuses at run time (`broker.id`, `log.dirs`, ...) are refused with its message.
//! - Groups (resource type GROUP, 32): `group::configs`.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::config::kafka_keys;
use crate::group::configs::{AlterError, GroupConfigs};
use crate::log::{CreateError, DynamicLevel, LogManager};
use crate::security::acl::Operation;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;
/// Broker keys Kafka lets change at run time only per broker, never as the cluster default
/// (its `DynamicBrokerConfig.PerBrokerConfigs`: listener and security settings).
fn per_broker_only(key: &str) -> bool {
    matches!(
        key,
        "listeners"
            | "advertised.listeners"
            | "listener.security.protocol.map"
            | "principal.builder.class"
    ) || key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.starts_with("listener.name.")
}

/// Listener keys Kafka can change at run time and Sluice can't: the sockets are bound at
/// start-up. Refused rather than reported as in force.
const FIXED_LISTENER_KEYS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
];

/// Check broker keys being set as Kafka's `DynamicBrokerConfig.validateConfigs` does; the
/// message is Kafka's (INVALID_REQUEST).
fn check_broker_keys(keys: &[(String, String)], cluster_default: bool) -> Result<(), String> {
    let fixed: Vec<&str> = keys
        .iter()
        .filter(|(k, _)| kafka_keys::find(kafka_keys::BROKER_KEYS, k).is_some_and(|i| !i.dynamic))
        .map(|(k, _)| k.as_str())
        .collect();
    if !fixed.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: [{}]",
            fixed.join(", ")
        ));
    }
    if cluster_default {
        let per: Vec<&str> = keys
            .iter()
            .filter(|(k, _)| per_broker_only(k))
            .map(|(k, _)| k.as_str())
            .collect();
        if !per.is_empty() {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: [{}]",
                per.join(", ")
            ));
        }
    }
    for (k, v) in keys {
        if FIXED_LISTENER_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "Sluice binds its listeners at start-up; {k} can't change at run time"
            ));
        }
        let Some(info) = kafka_keys::find(kafka_keys::BROKER_KEYS, k) else {
            continue;
        };
        let t = v.trim();
        let ok = match info.ty {
            kafka_keys::TYPE_INT => t.parse::<i32>().is_ok(),
            kafka_keys::TYPE_SHORT => t.parse::<i16>().is_ok(),
            kafka_keys::TYPE_LONG => t.parse::<i64>().is_ok(),
            kafka_keys::TYPE_DOUBLE => t.parse::<f64>().is_ok(),
            kafka_keys::TYPE_BOOLEAN => {
                t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
            }
            _ => true,
        };
        if !ok {
            let msg = match info.ty {
                kafka_keys::TYPE_BOOLEAN => "Expected value to be either true or false".to_string(),
                ty => format!(
                    "Not a number of type {}",
                    match ty {
                        kafka_keys::TYPE_INT => "INT",
                        kafka_keys::TYPE_SHORT => "SHORT",
                        kafka_keys::TYPE_LONG => "LONG",
                        _ => "DOUBLE",
                    }
                ),
            };
            return Err(format!("Invalid value {v} for configuration {k}: {msg}"));
        }
    }
    Ok(())
}
/// Topic configs whose values are lists (APPEND / SUBTRACT apply).
const LIST_KEYS: &[&str] = &[
    "cleanup.policy",
    "log.cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Apply one resource's change; `Err((code, message))` on refusal.
fn apply(
    logs: &LogManager,
    groups: &GroupConfigs,
    node_id: i32,
    resource_type: i8,
    name: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), String>,
    validate_only: bool,
) -> Result<(), (Code, String)> {
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = logs.topic(name).ok_or((
                Code::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            ))?;
            let mut overrides = topic.overrides.clone();
            change(&mut overrides).map_err(|m| (Code::InvalidConfig, m))?;
            match logs.set_topic_overrides(name, overrides, validate_only) {
                Ok(_) => Ok(()),
                Err(CreateError::InvalidConfig(m)) => Err((Code::InvalidConfig, m)),
                Err(CreateError::UnknownTopic(m)) => Err((Code::UnknownTopicOrPartition, m)),
                Err(e) => {
                    tracing::error!(topic = name, error = %e, "alter configs failed");
                    Err((Code::KafkaStorageError, e.to_string()))
                }
            }
        }
        RESOURCE_BROKER => {
            // The broker by id, or "" for the cluster-wide default (Kafka's two levels).
            let level = if name.is_empty() {
                DynamicLevel::ClusterDefault
            } else if name.parse::<i32>().ok() == Some(node_id) {
                DynamicLevel::Broker
            } else {
                return Err((
                    Code::InvalidRequest,
                    format!("broker {name} does not exist; this is broker {node_id}"),
                ));
            };
            let before = logs.dynamic_configs(level);
            let mut dynamic = before.clone();
            change(&mut dynamic).map_err(|m| (Code::InvalidRequest, m))?;
            let set: Vec<(String, String)> = dynamic
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            check_broker_keys(&set, level == DynamicLevel::ClusterDefault)
                .map_err(|m| (Code::InvalidRequest, m))?;
            // Kafka answers INVALID_REQUEST for a bad broker value (its ConfigException).
            match logs.set_dynamic_configs(level, dynamic, validate_only) {
                Ok(()) => Ok(()),
                Err(CreateError::InvalidConfig(m)) => Err((Code::InvalidRequest, m)),
                Err(e) => {
                    tracing::error!(error = %e, "alter broker configs failed");
                    Err((Code::KafkaStorageError, e.to_string()))
                }
            }
        }
        RESOURCE_GROUP => {
            if name.is_empty() {
                return Err((Code::InvalidRequest, "group id can't be empty".into()));
            }
            groups
                .alter(name, change, validate_only)
                .map_err(|e| match e {
                    AlterError::Invalid(m) => (Code::InvalidConfig, m),
                    AlterError::Storage(m) => {
                        tracing::error!(group = name, error = %m, "alter group configs failed");
                        (Code::KafkaStorageError, m)
                    }
                })
        }
        other => Err((
            Code::InvalidRequest,
            format!("unsupported resource type {other}"),
        )),
    }
}

fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Handle IncrementalAlterConfigs.
pub(crate) async fn handle_incremental(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // ALTER_CONFIGS on each resource's ACL resource (see `config_denied`).
    let denied: Vec<Option<Code>> = req
        .resources
        .iter()
        .map(|r| {
            super::config_denied(
                ctx,
                r.resource_type,
                r.resource_name.as_str(),
                Operation::AlterConfigs,
            )
        })
        .collect();
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .zip(denied)
            .map(|(r, denied)| {
                let ops: Vec<(String, i8, Option<String>)> = r
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(StrBytes::to_string)))
                    .collect();
                let change = |ov: &mut BTreeMap<String, String>| -> Result<(), String> {
                    for (key, op, value) in ops {
                        let value = value.unwrap_or_default();
                        match op {
                            OP_SET => {
                                ov.insert(key, value);
                            }
                            OP_DELETE => {
                                ov.remove(&key);
                            }
                            OP_APPEND | OP_SUBTRACT => {
                                let listed = kafka_keys::find(kafka_keys::BROKER_KEYS, &key)
                                    .is_some_and(|k| k.ty == kafka_keys::TYPE_LIST);
                                if !LIST_KEYS.contains(&key.as_str()) && !listed {
                                    return Err(format!("config {key} is not a list; APPEND and SUBTRACT need a list config"));
                                }
                                let current = ov.get(&key).cloned().unwrap_or_else(|| {
                                    if key.ends_with("cleanup.policy") { "delete".into() } else { String::new() }
                                });
                                let mut items = list_items(&current);
                                for v in list_items(&value) {
                                    if op == OP_APPEND {
                                        if !items.contains(&v) {
                                            items.push(v);
                                        }
                                    } else {
                                        items.retain(|i| *i != v);
                                    }
                                }
                                ov.insert(key, items.join(","));
                            }
                            other => return Err(format!("unknown config operation {other} for {key}")),
                        }
                    }
                    Ok(())
                };
                let result = if let Some(code) = denied { Err((code, code.to_string())) } else { apply(&broker.logs, &broker.groups.configs, broker.config.node_id, r.resource_type, r.resource_name.as_str(), change, req.validate_only) };
                let base = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name);
                match result {
                    Ok(()) => base,
                    Err((code, msg)) => base.with_error_code(code.code()).with_error_message(Some(sb(msg))),
                }
            })
            .collect()
    })
    .await?;
    Ok(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// Handle AlterConfigs (the whole override set is replaced by the given one).
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // ALTER_CONFIGS on each resource's ACL resource (see `config_denied`).
    let denied: Vec<Option<Code>> = req
        .resources
        .iter()
        .map(|r| {
            super::config_denied(
                ctx,
                r.resource_type,
                r.resource_name.as_str(),
                Operation::AlterConfigs,
            )
        })
        .collect();
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .zip(denied)
            .map(|(r, denied)| {
                let set: BTreeMap<String, String> = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                let change = |ov: &mut BTreeMap<String, String>| -> Result<(), String> {
                    *ov = set;
                    Ok(())
                };
                let result = match denied {
                    Some(code) => Err((code, code.to_string())),
                    None => apply(
                        &broker.logs,
                        &broker.groups.configs,
                        broker.config.node_id,
                        r.resource_type,
                        r.resource_name.as_str(),
                        change,
                        req.validate_only,
                    ),
                };
                let base = alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name);
                match result {
                    Ok(()) => base,
                    Err((code, msg)) => base
                        .with_error_code(code.code())
                        .with_error_message(Some(sb(msg))),
                }
            })
            .collect()
    })
    .await?;
    Ok(AlterConfigsResponse::default().with_responses(responses))
}
