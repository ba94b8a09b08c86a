//! AlterConfigs (replace a topic's overrides) and IncrementalAlterConfigs (SET, DELETE,
//! APPEND, SUBTRACT per key). Values are validated before anything changes, persisted, and
//! applied live to the topic's partitions. Broker properties that default topic configs
//! (`log.retention.ms`, `log.segment.bytes`, ...) may change at run time too, as in Kafka;
//! they are persisted and applied to every topic without its own override.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::log::{CreateError, LogManager};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
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
            // The single broker by id, or "" for the cluster-wide default: the same here.
            if !name.is_empty() && name.parse::<i32>().ok() != Some(node_id) {
                return Err((
                    Code::InvalidRequest,
                    format!("broker {name} does not exist; this is broker {node_id}"),
                ));
            }
            let mut dynamic = logs.dynamic_broker_configs();
            change(&mut dynamic).map_err(|m| (Code::InvalidConfig, m))?;
            match logs.set_dynamic_broker_configs(dynamic, validate_only) {
                Ok(()) => Ok(()),
                Err(CreateError::InvalidConfig(m)) => Err((Code::InvalidConfig, m)),
                Err(e) => {
                    tracing::error!(error = %e, "alter broker configs failed");
                    Err((Code::KafkaStorageError, e.to_string()))
                }
            }
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
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
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
                                if !LIST_KEYS.contains(&key.as_str()) {
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
                let result = apply(&broker.logs, broker.config.node_id, r.resource_type, r.resource_name.as_str(), change, req.validate_only);
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
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
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
                let result = apply(
                    &broker.logs,
                    broker.config.node_id,
                    r.resource_type,
                    r.resource_name.as_str(),
                    change,
                    req.validate_only,
                );
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
