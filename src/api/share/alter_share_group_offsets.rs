//! AlterShareGroupOffsets v0 (`kafka-share-groups --reset-offsets`): set the start offset
//! of share partitions of a group without members, dropping their in-flight state. The
//! group's state is created if it has none, so offsets can be set before the first
//! consumer joins.

use std::sync::Arc;

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, RequestHeader,
};

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle AlterShareGroupOffsets.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: AlterShareGroupOffsetsRequest,
) -> Result<AlterShareGroupOffsetsResponse, ApiError> {
    let group = req.group_id.0.to_string();
    if !ctx.authorize_group(Operation::Read, &group) {
        return Ok(AlterShareGroupOffsetsResponse::default()
            .with_error_code(Code::GroupAuthorizationFailed.code()));
    }
    if group.is_empty() {
        return Ok(AlterShareGroupOffsetsResponse::default()
            .with_error_code(Code::InvalidRequest.code())
            .with_error_message(Some(sb("group id can't be empty"))));
    }
    if super::other_type(ctx, &group) {
        return Ok(AlterShareGroupOffsetsResponse::default()
            .with_error_code(Code::GroupIdNotFound.code())
            .with_error_message(Some(sb(format!("group {group} is not a share group")))));
    }
    let logs = &ctx.broker.logs;
    let mut offsets = Vec::new();
    let mut responses = Vec::new();
    for t in &req.topics {
        let topic = logs.topic(t.topic_name.0.as_str());
        // READ on the topic (Kafka: TOPIC_AUTHORIZATION_FAILED for its partitions).
        let allowed = ctx.authorize_topic(Operation::Read, t.topic_name.0.as_str());
        let mut parts = Vec::new();
        for p in &t.partitions {
            let exists = topic.as_ref().is_some_and(|x| {
                usize::try_from(p.partition_index).is_ok_and(|i| i < x.partitions.len())
            });
            let mut r = AlterShareGroupOffsetsResponsePartition::default()
                .with_partition_index(p.partition_index);
            match &topic {
                _ if !allowed => r = r.with_error_code(Code::TopicAuthorizationFailed.code()),
                Some(x) if exists => offsets.push(((x.id, p.partition_index), p.start_offset)),
                _ => r = r.with_error_code(Code::UnknownTopicOrPartition.code()),
            }
            parts.push(r);
        }
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(topic.map(|x| x.id).unwrap_or_default())
                .with_partitions(parts),
        );
    }
    let b = Arc::clone(ctx.broker);
    let g = group.clone();
    let result = blocking(move || b.shares.alter_offsets(&g, &offsets)).await?;
    if let Err(code) = result {
        return Ok(AlterShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(format!("{code}")))));
    }
    Ok(AlterShareGroupOffsetsResponse::default().with_responses(responses))
}
