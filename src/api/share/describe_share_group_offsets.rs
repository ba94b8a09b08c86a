//! DescribeShareGroupOffsets v0: each share partition's start offset (the offset below
//! which every record is settled). A partition the group has no state for answers -1, as
//! Kafka does; an unknown group is GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, RequestHeader,
};

use crate::api::fetch::LEADER_EPOCH;
use crate::api::{sb, topic_name, ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle DescribeShareGroupOffsets.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeShareGroupOffsetsRequest,
) -> Result<DescribeShareGroupOffsetsResponse, ApiError> {
    let logs = &ctx.broker.logs;
    let shares = &ctx.broker.shares;
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let id = g.group_id.0.to_string();
            let base = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id);
            if !ctx.authorize_group(Operation::Describe, &id) {
                return base.with_error_code(Code::GroupAuthorizationFailed.code());
            }
            if !shares.is_share_group(&id) {
                return base
                    .with_error_code(Code::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!("group {id} not found"))));
            }
            let known = shares.start_offsets(&id);
            let partition = |index: i32, offset: Option<i64>| {
                DescribeShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(index)
                    .with_start_offset(offset.unwrap_or(-1))
                    .with_leader_epoch(LEADER_EPOCH)
            };
            let topics = match g.topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|t| {
                        // DESCRIBE on a named topic (TOPIC_AUTHORIZATION_FAILED per partition).
                        if !ctx.authorize_topic(Operation::Describe, t.topic_name.0.as_str()) {
                            let parts = t
                                .partitions
                                .iter()
                                .map(|&p| {
                                    partition(p, None)
                                        .with_error_code(Code::TopicAuthorizationFailed.code())
                                })
                                .collect();
                            return DescribeShareGroupOffsetsResponseTopic::default()
                                .with_topic_name(t.topic_name)
                                .with_partitions(parts);
                        }
                        let topic = logs.topic(t.topic_name.0.as_str());
                        let resp = DescribeShareGroupOffsetsResponseTopic::default()
                            .with_topic_name(t.topic_name.clone())
                            .with_topic_id(topic.as_ref().map(|x| x.id).unwrap_or_default());
                        let parts = t
                            .partitions
                            .iter()
                            .map(|&p| match &topic {
                                None => partition(p, None)
                                    .with_error_code(Code::UnknownTopicOrPartition.code()),
                                Some(x) => partition(
                                    p,
                                    known
                                        .iter()
                                        .find(|(tid, pi, _)| *tid == x.id && *pi == p)
                                        .map(|(_, _, o)| *o),
                                ),
                            })
                            .collect();
                        resp.with_partitions(parts)
                    })
                    .collect(),
                None => {
                    let mut out: Vec<DescribeShareGroupOffsetsResponseTopic> = Vec::new();
                    for (tid, p, o) in known {
                        // All topics: those the client may not DESCRIBE are left out.
                        let Some(topic) = logs
                            .topic_by_id(&tid)
                            .filter(|t| ctx.authorize_topic(Operation::Describe, &t.name))
                        else {
                            continue;
                        };
                        match out.iter_mut().find(|t| t.topic_id == tid) {
                            Some(t) => t.partitions.push(partition(p, Some(o))),
                            None => out.push(
                                DescribeShareGroupOffsetsResponseTopic::default()
                                    .with_topic_name(topic_name(&topic.name))
                                    .with_topic_id(tid)
                                    .with_partitions(vec![partition(p, Some(o))]),
                            ),
                        }
                    }
                    out
                }
            };
            base.with_topics(topics)
        })
        .collect();
    Ok(DescribeShareGroupOffsetsResponse::default().with_groups(groups))
}
