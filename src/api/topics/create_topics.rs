//! CreateTopics: name rules, partition count (or the broker default), replication factor
//! (1 on a single node; above 1 is INVALID_REPLICATION_FACTOR as Kafka answers on a one-broker
//! cluster, unless the broker is configured to accept it), explicit assignments naming this
//! broker, topic configs validated by key, and `validate_only`.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use tracing::{error, warn};

use super::describe_configs::{CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_DYNAMIC_TOPIC};
use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::log::CreateError;
use crate::security::acl::Operation;

/// Handle CreateTopics.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    let version = hdr.request_api_version;
    let default_partitions = broker.config.num_partitions;
    let records: usize = req
        .topics
        .iter()
        .map(|t| {
            let n = match t.num_partitions {
                -1 if t.assignments.is_empty() => default_partitions,
                -1 => i32::try_from(t.assignments.len()).unwrap_or(i32::MAX),
                n => n,
            };
            super::records(n, 1 + t.configs.len())
        })
        .fold(0, usize::saturating_add);
    if records > super::MAX_RECORDS_PER_USER_OP {
        warn!(
            records,
            "CreateTopics refused: more metadata records than one request may write"
        );
        let results = req
            .topics
            .into_iter()
            .map(|t| {
                CreatableTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(Code::PolicyViolation.code())
                    .with_error_message(Some(sb(super::TOO_LARGE_MESSAGE.to_string())))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            })
            .collect();
        return Ok(CreateTopicsResponse::default().with_topics(results));
    }
    // CREATE on the cluster, else on each topic (TOPIC_AUTHORIZATION_FAILED); the created
    // topic's configs are reported only with DESCRIBE_CONFIGS on it, as Kafka does.
    let cluster_create = ctx.authorize_cluster(Operation::Create);
    let acl: std::collections::HashMap<String, (bool, bool)> = req
        .topics
        .iter()
        .map(|t| {
            let n = t.name.0.as_str();
            let create = cluster_create || ctx.authorize_topic(Operation::Create, n);
            let configs = ctx.authorize_topic(Operation::DescribeConfigs, n);
            (n.to_string(), (create, configs))
        })
        .collect();
    let results = blocking(move || {
        let cfg = &broker.config;
        let mut seen = std::collections::HashSet::new();
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let fail = |code: Code, msg: String| {
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code.code())
                        .with_error_message(Some(sb(msg)))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                };
                if !seen.insert(name.clone()) {
                    return fail(Code::InvalidRequest, format!("topic '{name}' appears more than once in the request"));
                }
                let (may_create, may_see_configs) = acl.get(&name).copied().unwrap_or((false, false));
                if !may_create {
                    return fail(Code::TopicAuthorizationFailed, "Authorization failed.".into())
                        .with_topic_config_error_code(if may_see_configs {
                            0
                        } else {
                            Code::TopicAuthorizationFailed.code()
                        });
                }
                let assigned = i32::try_from(t.assignments.len()).unwrap_or(i32::MAX);
                let partitions = if !t.assignments.is_empty() {
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return fail(
                            Code::InvalidRequest,
                            "both assignments and numPartitions or replicationFactor were set".into(),
                        );
                    }
                    if let Some(bad) = t
                        .assignments
                        .iter()
                        .flat_map(|a| a.broker_ids.iter())
                        .find(|b| b.0 != cfg.node_id)
                    {
                        return fail(Code::InvalidReplicaAssignment, format!("broker {} does not exist", bad.0));
                    }
                    let mut idx: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
                    idx.sort_unstable();
                    if idx.iter().enumerate().any(|(i, p)| i32::try_from(i).ok() != Some(*p)) {
                        return fail(
                            Code::InvalidReplicaAssignment,
                            "partitions should be a consecutive 0-based integer sequence".into(),
                        );
                    }
                    assigned
                } else if t.num_partitions == -1 {
                    cfg.num_partitions
                } else {
                    t.num_partitions
                };
                if partitions < 1 {
                    return fail(Code::InvalidPartitions, "number of partitions must be larger than 0".into());
                }
                let rf = if t.replication_factor == -1 { cfg.default_replication_factor } else { t.replication_factor };
                if rf < 1 {
                    return fail(Code::InvalidReplicationFactor, "replication factor must be larger than 0".into());
                }
                if rf > 1 && !cfg.accept_replication_factor_above_one {
                    return fail(
                        Code::InvalidReplicationFactor,
                        format!("unable to replicate the partition {rf} time(s): the number of available brokers is 1"),
                    );
                }
                if rf > 1 {
                    warn!(topic = name, rf, "replication factor above 1 accepted as 1 on a single node");
                }
                let mut overrides = BTreeMap::new();
                for c in &t.configs {
                    match &c.value {
                        Some(v) => {
                            overrides.insert(c.name.to_string(), v.to_string());
                        }
                        None => {
                            return fail(Code::InvalidConfig, format!("null value not supported for topic config {}", c.name));
                        }
                    }
                }
                match broker.logs.create_topic(&name, partitions, overrides, req.validate_only) {
                    Ok(topic) => {
                        let configs = (version >= 5 && may_see_configs).then(|| {
                            topic
                                .config
                                .entries()
                                .into_iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfigs::default()
                                        .with_name(sb(k))
                                        .with_value(Some(sb(v)))
                                        .with_config_source(if topic.overrides.contains_key(k) {
                                            CONFIG_SOURCE_DYNAMIC_TOPIC
                                        } else {
                                            CONFIG_SOURCE_DEFAULT
                                        })
                                })
                                .collect()
                        });
                        CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_topic_id(topic.id)
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
                            .with_configs(configs)
                            .with_topic_config_error_code(if may_see_configs {
                                0
                            } else {
                                Code::TopicAuthorizationFailed.code()
                            })
                    }
                    Err(CreateError::Exists(_)) => fail(Code::TopicAlreadyExists, format!("topic '{name}' already exists")),
                    Err(CreateError::InvalidName(m)) => fail(Code::InvalidTopicException, m),
                    Err(CreateError::InvalidPartitions(_)) => {
                        fail(Code::InvalidPartitions, "number of partitions must be larger than 0".into())
                    }
                    Err(CreateError::InvalidConfig(m)) => fail(Code::InvalidConfig, m),
                    Err(CreateError::UnknownTopic(m)) => fail(Code::UnknownTopicOrPartition, m),
                    Err(e @ CreateError::Storage(_)) => {
                        // Kafka answers KAFKA_STORAGE_ERROR when it cannot create a log.
                        error!(topic = name, error = %e, "create topic failed");
                        fail(Code::KafkaStorageError, e.client_message())
                    }
                }
            })
            .collect()
    })
    .await?;
    Ok(CreateTopicsResponse::default().with_topics(results))
}
