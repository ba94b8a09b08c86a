//! OffsetDelete: remove a group's offsets for some partitions, refused per partition while
//! members are subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka does.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use crate::api::{blocking, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle OffsetDelete.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, ApiError> {
    let b = ctx.broker;
    let group = req.group_id.0.to_string();
    // DELETE on the group, then READ on each topic (Kafka's checks).
    if !ctx.authorize_group(Operation::Delete, &group) {
        return Ok(
            OffsetDeleteResponse::default().with_error_code(Code::GroupAuthorizationFailed.code())
        );
    }
    if b.groups.describe(&group).is_none() {
        return Ok(OffsetDeleteResponse::default().with_error_code(Code::GroupIdNotFound.code()));
    }
    let mut to_delete = Vec::new();
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let subscribed = b.groups.is_subscribed(&group, &name);
        let allowed = ctx.authorize_topic(Operation::Read, &name);
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                let r = OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index);
                if !allowed {
                    r.with_error_code(Code::TopicAuthorizationFailed.code())
                } else if subscribed {
                    r.with_error_code(Code::GroupSubscribedToTopic.code())
                } else {
                    to_delete.push((name.clone(), p.partition_index));
                    r
                }
            })
            .collect();
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    let broker = std::sync::Arc::clone(b);
    let deleted = blocking(move || broker.groups.offsets.delete(&group, Some(&to_delete))).await?;
    if let Err(e) = deleted {
        tracing::error!(error = %e, "offset delete failed");
        return Ok(OffsetDeleteResponse::default().with_error_code(Code::KafkaStorageError.code()));
    }
    Ok(OffsetDeleteResponse::default().with_topics(topics))
}
