//! OffsetForLeaderEpoch: the Java consumer validates its position with it after metadata
//! changes. There has only ever been epoch 0 on a single node, so its end offset is the log
//! end; an epoch from the future is UNDEFINED (-1/-1) as Kafka answers.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader,
};

use super::{check_leader_epoch, partition_by_name, LEADER_EPOCH};
use crate::api::{ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle OffsetForLeaderEpoch.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, ApiError> {
    let logs = &ctx.broker.logs;
    // Kafka: CLUSTER_ACTION on the cluster (followers) allows every topic; otherwise
    // DESCRIBE on each (consumers), TOPIC_AUTHORIZATION_FAILED for the others.
    let cluster = ctx.authorize_cluster(Operation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = cluster || ctx.authorize_topic(Operation::Describe, t.topic.0.as_str());
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        return base.with_error_code(Code::TopicAuthorizationFailed.code());
                    }
                    match check_leader_epoch(p.current_leader_epoch)
                        .and_then(|()| partition_by_name(logs, t.topic.0.as_str(), p.partition))
                    {
                        Err(code) => base.with_error_code(code.code()),
                        Ok(_) if p.leader_epoch > LEADER_EPOCH => base,
                        Ok(part) => {
                            let (_, end, _, _) = part.offsets();
                            base.with_leader_epoch(LEADER_EPOCH).with_end_offset(end)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(parts)
        })
        .collect();
    Ok(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
