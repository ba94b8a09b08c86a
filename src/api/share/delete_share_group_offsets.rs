//! DeleteShareGroupOffsets v0: forget a member-less share group's state for whole topics;
//! the next consumer starts those partitions at `share.auto.offset.reset` again.

use std::sync::Arc;

use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse, RequestHeader,
};

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle DeleteShareGroupOffsets.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteShareGroupOffsetsRequest,
) -> Result<DeleteShareGroupOffsetsResponse, ApiError> {
    let group = req.group_id.0.to_string();
    if !ctx.authorize_group(Operation::Delete, &group) {
        return Ok(DeleteShareGroupOffsetsResponse::default()
            .with_error_code(Code::GroupAuthorizationFailed.code()));
    }
    let logs = &ctx.broker.logs;
    let mut ids = Vec::new();
    let mut responses = Vec::new();
    for t in &req.topics {
        let topic = logs.topic(t.topic_name.0.as_str());
        let mut r = DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_topic_id(topic.as_ref().map(|x| x.id).unwrap_or_default());
        match topic {
            // READ on the topic (Kafka: TOPIC_AUTHORIZATION_FAILED for it).
            _ if !ctx.authorize_topic(Operation::Read, t.topic_name.0.as_str()) => {
                r = r.with_error_code(Code::TopicAuthorizationFailed.code())
            }
            Some(x) => ids.push(x.id),
            None => {
                r = r
                    .with_error_code(Code::UnknownTopicOrPartition.code())
                    .with_error_message(Some(sb("unknown topic")))
            }
        }
        responses.push(r);
    }
    let b = Arc::clone(ctx.broker);
    let g = group.clone();
    let result = blocking(move || b.shares.delete_offsets(&g, &ids)).await?;
    if let Err(code) = result {
        return Ok(DeleteShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(format!("{code}")))));
    }
    Ok(DeleteShareGroupOffsetsResponse::default().with_responses(responses))
}
