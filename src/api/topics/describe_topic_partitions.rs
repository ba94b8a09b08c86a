//! DescribeTopicPartitions (what Kafka 4's `kafka-topics --describe` asks): topics with
//! their partitions, paged by `response_partition_limit` with a cursor.

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, RequestHeader,
    TopicName,
};

use crate::api::meta::metadata::ALL_TOPIC_OPERATIONS;
use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::{Operation, ResourceType};

/// Handle DescribeTopicPartitions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeTopicPartitionsRequest,
) -> Result<DescribeTopicPartitionsResponse, ApiError> {
    let logs = &ctx.broker.logs;
    let node = BrokerId(ctx.broker.config.node_id);
    // DESCRIBE on each topic: the full list leaves the others out, a named one answers
    // TOPIC_AUTHORIZATION_FAILED (Kafka's DescribeTopicPartitionsRequestHandler).
    let mut names: Vec<String> = if req.topics.is_empty() {
        logs.topics()
            .iter()
            .filter(|t| !t.is_internal())
            .filter(|t| ctx.authorize_topic(Operation::Describe, &t.name))
            .map(|t| t.name.to_string())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index),
        None => (None, 0),
    };
    let mut budget = usize::try_from(req.response_partition_limit)
        .unwrap_or(0)
        .max(1);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names
        .into_iter()
        .filter(|n| start_topic.as_ref().is_none_or(|s| n >= s))
    {
        let first = if start_topic.as_deref() == Some(name.as_str()) {
            start_partition
        } else {
            0
        };
        if !ctx.authorize_topic(Operation::Describe, &name) {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(sb(name))))
                    .with_error_code(Code::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let Some(t) = logs.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(sb(name))))
                    .with_error_code(Code::UnknownTopicOrPartition.code()),
            );
            continue;
        };
        let mut parts = Vec::new();
        for p in t.partitions.iter().filter(|p| p.index() >= first) {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(sb(name.clone())))
                        .with_partition_index(p.index()),
                );
                break;
            }
            budget -= 1;
            parts.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index())
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
        }
        if parts.is_empty() && next_cursor.is_some() {
            break;
        }
        let ops = ctx.authorized_operations(ResourceType::Topic, &name, ALL_TOPIC_OPERATIONS);
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(sb(name))))
                .with_topic_id(t.id)
                .with_is_internal(t.is_internal())
                .with_topic_authorized_operations(ops)
                .with_partitions(parts),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    Ok(DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor))
}
