//! Metadata: brokers (this one, at the address the client should use), topics with their
//! partitions, and auto-creation of unknown topics when the broker and the client allow it.
//! Auto-created topics come back in the same response, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::log::{CreateError, Topic};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Authorized-operations bit set Kafka reports for a topic when there is no authorizer:
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub const ALL_TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster operations without an authorizer.
pub const ALL_CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13);

/// The partitions of a topic as Metadata and friends describe them: this node leads all.
/// `ops`: the authorized-operations bit set to report, `i32::MIN` when not asked for.
pub(crate) fn topic_entry(t: &Topic, node: i32, ops: i32) -> MetadataResponseTopic {
    let node = BrokerId(node);
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.to_string()))))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_topic_authorized_operations(ops)
        .with_partitions(
            t.partitions
                .iter()
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p.index())
                        .with_leader_id(node)
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![node])
                        .with_isr_nodes(vec![node])
                })
                .collect(),
        )
}

/// Handle Metadata.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: MetadataRequest,
) -> Result<MetadataResponse, ApiError> {
    let b = ctx.broker;
    let node = b.config.node_id;
    let (host, port) = ctx.conn.advertised();
    let v = hdr.request_api_version;
    // Authorized operations exist from v8 (cluster: v8 to v10 only).
    let ops = req.include_topic_authorized_operations && v >= 8;
    let cluster_ops = req.include_cluster_authorized_operations && (8..=10).contains(&v);
    // The authorized operations of a topic, when asked for.
    let ops_of = |name: &str| {
        if ops {
            ctx.authorized_operations(ResourceType::Topic, name, ALL_TOPIC_OPERATIONS)
        } else {
            i32::MIN
        }
    };
    let mut topics = Vec::new();
    match req.topics {
        None => {
            // All topics, the internal ones included and flagged `is_internal`, as Kafka
            // 4.3 answers (franz-go's TestConsumeRegex checks it; clients and tools leave
            // them out by that flag). Topics without DESCRIBE are left out silently.
            for t in b.logs.topics().iter() {
                if ctx.authorize_topic(Operation::Describe, &t.name) {
                    topics.push(topic_entry(t, node, ops_of(&t.name)));
                }
            }
        }
        Some(wanted) => {
            // Before v4 there is no allow flag: Kafka auto-creates for those clients.
            let allow = b.config.auto_create_topics
                && (hdr.request_api_version < 4 || req.allow_auto_topic_creation);
            for w in wanted {
                let found = match (&w.name, w.topic_id) {
                    (Some(n), _) => b.logs.topic(n.0.as_str()),
                    (None, id) if id != Uuid::nil() => b.logs.topic_by_id(&id),
                    _ => None,
                };
                // DESCRIBE first, so an unauthorized client learns nothing of whether the
                // topic exists. Asked by id: the answer names no topic (Kafka treats ids as
                // not sensitive, names as sensitive).
                let described = match (&w.name, &found) {
                    (Some(n), _) => Some(n.0.to_string()),
                    (None, Some(t)) => Some(t.name.to_string()),
                    (None, None) => None,
                };
                if let Some(n) = &described {
                    if !ctx.authorize_topic(Operation::Describe, n) {
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_name(w.name.clone())
                                .with_topic_id(if w.name.is_some() {
                                    Uuid::nil()
                                } else {
                                    w.topic_id
                                })
                                .with_error_code(Code::TopicAuthorizationFailed.code()),
                        );
                        continue;
                    }
                }
                if let Some(t) = found {
                    topics.push(topic_entry(&t, node, ops_of(&t.name)));
                    continue;
                }
                let Some(name) = w.name.clone() else {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(w.topic_id)
                            .with_error_code(Code::UnknownTopicId.code()),
                    );
                    continue;
                };
                if !allow {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(Code::UnknownTopicOrPartition.code()),
                    );
                    continue;
                }
                // Auto-creation needs CREATE on the cluster or on the topic.
                if !ctx.authorize_cluster(Operation::Create)
                    && !ctx.authorize_topic(Operation::Create, name.0.as_str())
                {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(Code::TopicAuthorizationFailed.code()),
                    );
                    continue;
                }
                let logs_name = name.0.to_string();
                let parts = b.config.num_partitions;
                let broker = std::sync::Arc::clone(b);
                let created = blocking(move || {
                    broker
                        .logs
                        .create_topic(&logs_name, parts, BTreeMap::new(), false)
                })
                .await?;
                match created {
                    Ok(t) => {
                        info!(topic = %t.name, partitions = parts, "auto-created topic");
                        topics.push(topic_entry(&t, node, ops_of(&t.name)));
                    }
                    // Another connection created it in the meantime.
                    Err(CreateError::Exists(_)) => match b.logs.topic(name.0.as_str()) {
                        Some(t) => topics.push(topic_entry(&t, node, ops_of(&t.name))),
                        None => topics.push(
                            MetadataResponseTopic::default()
                                .with_name(Some(name))
                                .with_error_code(Code::LeaderNotAvailable.code()),
                        ),
                    },
                    Err(CreateError::InvalidName(_)) => topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(Code::InvalidTopicException.code()),
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "auto-create failed");
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_name(Some(name))
                                .with_error_code(Code::UnknownServerError.code()),
                        )
                    }
                }
            }
        }
    }
    Ok(MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(sb(host))
            .with_port(i32::from(port))])
        .with_cluster_id(Some(sb(b.logs.cluster_id())))
        .with_controller_id(BrokerId(node))
        .with_cluster_authorized_operations(if cluster_ops {
            // Kafka reports them only to a client that may DESCRIBE the cluster.
            if ctx.authorize_cluster(Operation::Describe) {
                ctx.authorized_operations(
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                    ALL_CLUSTER_OPERATIONS,
                )
            } else {
                i32::MIN
            }
        } else {
            i32::MIN
        })
        .with_topics(topics))
}
