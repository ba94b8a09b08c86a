//! Topics in the console: the list (Metadata, so only topics the user may DESCRIBE), one
//! topic with its effective configs (DescribeConfigs), creation (CreateTopics) and deletion
//! (DeleteTopics), all through the broker's handlers. Partition offsets and sizes are read
//! from the log for the topics Metadata returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, MetadataRequest,
    MetadataResponse, RequestKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::kafka::{check, Caller, ConsoleError};
use super::{Console, Identity};
use crate::console_expect;

/// Metadata at v12: names and topic ids, no auto-creation flag games.
const METADATA_VERSION: i16 = 12;
/// DescribeConfigs v4 (flexible, with config types).
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
/// CreateTopics v7 (topic ids in the answer).
const CREATE_TOPICS_VERSION: i16 = 7;
/// DeleteTopics v6 (topics by name or id).
const DELETE_TOPICS_VERSION: i16 = 6;
/// How long create and delete may take, as `kafka-topics` gives them (30 s).
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// Kafka's resource type code for topics in DescribeConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// Most config overrides one creation may carry.
const MAX_CREATE_CONFIGS: usize = 100;

/// Metadata for `topics` (`None`: every topic the user may DESCRIBE).
pub(super) async fn metadata(
    caller: &Caller,
    topics: Option<&[&str]>,
) -> Result<MetadataResponse, ConsoleError> {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string((*t).to_string()))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    let resp = caller
        .call(
            ApiKey::Metadata,
            METADATA_VERSION,
            RequestKind::Metadata(req),
        )
        .await?;
    Ok(console_expect!(resp, Metadata))
}

/// A topic's partitions as the log has them: offsets and sizes, by partition index.
fn partitions_json(caller: &Caller, name: &str) -> (Vec<Value>, u64) {
    let Some(topic) = caller.broker().logs.topic(name) else {
        return (Vec::new(), 0);
    };
    let mut total = 0u64;
    let parts = topic
        .partitions
        .iter()
        .map(|p| {
            let (log_start, log_end, hw, _) = p.offsets();
            let size = p.size_bytes();
            total = total.saturating_add(size);
            json!({
                "partition": p.index(),
                "log_start": log_start,
                "log_end": log_end,
                "high_watermark": hw,
                "last_stable": p.last_stable_offset(),
                "size_bytes": size,
            })
        })
        .collect();
    (parts, total)
}

fn caller(console: &Console, who: &Identity) -> Caller {
    Caller::new(&console.broker, who, console.bound)
}

/// `GET /api/topics`.
pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
) -> Result<Response, ConsoleError> {
    let caller = caller(&console, &who);
    let md = metadata(&caller, None).await?;
    check(md.error_code, None)?;
    let mut topics: Vec<Value> = md
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.as_str();
            let (partitions, size) = partitions_json(&caller, name);
            Some(json!({
                "name": name,
                "id": t.topic_id.to_string(),
                "internal": t.is_internal,
                "partitions": partitions,
                "size_bytes": size,
            }))
        })
        .collect();
    topics.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "topics": topics })).into_response())
}

/// `GET /api/topics/{name}`: partitions and the effective configs.
pub async fn describe(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let caller = caller(&console, &who);
    let md = metadata(&caller, Some(&[name.as_str()])).await?;
    let t = md
        .topics
        .first()
        .ok_or_else(|| ConsoleError::internal("Metadata answered no topic"))?;
    check(t.error_code, None)?;
    let (partitions, size) = partitions_json(&caller, &name);
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.clone()))
            .with_configuration_keys(None)]);
    let resp = caller
        .call(
            ApiKey::DescribeConfigs,
            DESCRIBE_CONFIGS_VERSION,
            RequestKind::DescribeConfigs(req),
        )
        .await?;
    let resp = console_expect!(resp, DescribeConfigs);
    let (configs, configs_error) = match resp.results.first() {
        Some(r) if r.error_code == 0 => {
            let mut cs: Vec<Value> = r
                .configs
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name.as_str(),
                        "value": if c.is_sensitive { None } else { c.value.as_ref().map(|v| v.as_str()) },
                        "source": config_source(c.config_source),
                        "read_only": c.read_only,
                        "sensitive": c.is_sensitive,
                    })
                })
                .collect();
            cs.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            (cs, Value::Null)
        }
        Some(r) => {
            let e = ConsoleError::kafka(r.error_code, r.error_message.as_ref());
            (Vec::new(), json!({"name": e.name, "message": e.message}))
        }
        None => (Vec::new(), Value::Null),
    };
    Ok(Json(json!({
        "name": name,
        "id": t.topic_id.to_string(),
        "internal": t.is_internal,
        "partitions": partitions,
        "size_bytes": size,
        "configs": configs,
        "configs_error": configs_error,
    }))
    .into_response())
}

/// Kafka's name of a DescribeConfigs config source (`ConfigSource` in the admin client).
fn config_source(code: i8) -> &'static str {
    match code {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// `POST /api/topics` body.
#[derive(Debug, Deserialize)]
pub struct NewTopic {
    /// Topic name (Kafka validates it).
    pub name: String,
    /// Partitions; the broker default (`num.partitions`) when absent.
    pub partitions: Option<i32>,
    /// Config overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// `POST /api/topics`: CreateTopics with the broker's default replication factor.
pub async fn create(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Json(new): Json<NewTopic>,
) -> Result<Response, ConsoleError> {
    if new.configs.len() > MAX_CREATE_CONFIGS {
        return Err(ConsoleError::invalid(format!(
            "at most {MAX_CREATE_CONFIGS} configs per topic here"
        )));
    }
    let caller = caller(&console, &who);
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(new.name.clone())))
        .with_num_partitions(new.partitions.unwrap_or(-1))
        .with_replication_factor(-1)
        .with_configs(
            new.configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_validate_only(false);
    let resp = caller
        .call(
            ApiKey::CreateTopics,
            CREATE_TOPICS_VERSION,
            RequestKind::CreateTopics(req),
        )
        .await?;
    let resp = console_expect!(resp, CreateTopics);
    let r = resp
        .topics
        .first()
        .ok_or_else(|| ConsoleError::internal("CreateTopics answered no topic"))?;
    check(r.error_code, r.error_message.as_ref())?;
    tracing::info!(principal = %who.principal, topic = %new.name, "web console: topic created");
    Ok(Json(json!({
        "name": r.name.0.as_str(),
        "id": r.topic_id.to_string(),
        "partitions": r.num_partitions,
    }))
    .into_response())
}

/// `DELETE /api/topics/{name}`.
pub async fn delete(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let caller = caller(&console, &who);
    let req = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let resp = caller
        .call(
            ApiKey::DeleteTopics,
            DELETE_TOPICS_VERSION,
            RequestKind::DeleteTopics(req),
        )
        .await?;
    let resp = console_expect!(resp, DeleteTopics);
    let r = resp
        .responses
        .first()
        .ok_or_else(|| ConsoleError::internal("DeleteTopics answered no topic"))?;
    check(r.error_code, r.error_message.as_ref())?;
    tracing::info!(principal = %who.principal, topic = %name, "web console: topic deleted");
    Ok(Json(json!({ "deleted": name })).into_response())
}
