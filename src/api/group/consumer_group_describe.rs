//! ConsumerGroupDescribe (KIP-848): epochs, assignor, members with their subscriptions and
//! current and target assignments. A classic group answers GROUP_ID_NOT_FOUND ("not a
//! consumer group") so the admin client falls back to DescribeGroups, as with Kafka.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, RequestHeader, TopicName,
};

use super::consumer_group_heartbeat::{by_topic, catalog};
use crate::api::{sb, ApiError, Code, Ctx};
use crate::group::consumer::{state_name, Partitions};
use crate::security::acl::{Operation, ResourceType};

/// Handle ConsumerGroupDescribe.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ConsumerGroupDescribeRequest,
) -> Result<ConsumerGroupDescribeResponse, ApiError> {
    let cat = catalog(ctx);
    let names: std::collections::HashMap<uuid::Uuid, String> =
        cat.iter().map(|(n, i)| (i.id, n.clone())).collect();
    let assignment = |p: &Partitions| {
        Assignment::default().with_topic_partitions(
            by_topic(p)
                .into_iter()
                .map(|(id, parts)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_topic_name(TopicName(sb(names.get(&id).cloned().unwrap_or_default())))
                        .with_partitions(parts)
                })
                .collect(),
        )
    };
    let groups = req
        .group_ids
        .into_iter()
        .map(|gid| {
            if !ctx.authorize_group(Operation::Describe, gid.0.as_str()) {
                return DescribedGroup::default()
                    .with_group_id(gid)
                    .with_error_code(Code::GroupAuthorizationFailed.code());
            }
            let described = ctx.broker.groups.with_consumer_group(gid.0.as_str(), |g| {
                DescribedGroup::default()
                    .with_group_state(sb(state_name(g)))
                    .with_group_epoch(g.epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(sb(g.assignor.clone()))
                    .with_authorized_operations(i32::MIN)
                    .with_members(
                        g.members
                            .values()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(sb(m.id.clone()))
                                    .with_instance_id(m.instance_id.clone().map(sb))
                                    .with_rack_id(m.rack_id.clone().map(sb))
                                    .with_member_epoch(m.epoch)
                                    .with_client_id(sb(m.client_id.clone()))
                                    .with_client_host(sb(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.topics.iter().map(|t| TopicName(sb(t.clone()))).collect(),
                                    )
                                    .with_subscribed_topic_regex(m.regex.clone().map(sb))
                                    .with_assignment(assignment(&m.assigned))
                                    .with_target_assignment(assignment(
                                        &g.target.get(&m.id).cloned().unwrap_or_default(),
                                    ))
                                    .with_member_type(1)
                            })
                            .collect(),
                    )
            });
            match described {
                Some(d) => {
                    let ops = if req.include_authorized_operations {
                        ctx.authorized_operations(
                            ResourceType::Group,
                            gid.0.as_str(),
                            crate::api::group::describe_groups::GROUP_OPERATIONS,
                        )
                    } else {
                        i32::MIN
                    };
                    let names = d.members.iter().flat_map(|m| {
                        m.subscribed_topic_names
                            .iter()
                            .chain(m.assignment.topic_partitions.iter().map(|t| &t.topic_name))
                            .chain(
                                m.target_assignment
                                    .topic_partitions
                                    .iter()
                                    .map(|t| &t.topic_name),
                            )
                            .map(|t| t.0.as_str())
                    });
                    if !super::may_describe_all(ctx, names) {
                        return DescribedGroup::default()
                            .with_group_id(gid)
                            .with_error_code(Code::TopicAuthorizationFailed.code())
                            .with_error_message(Some(sb(super::UNDESCRIBABLE_TOPICS)));
                    }
                    d.with_group_id(gid).with_authorized_operations(ops)
                }
                None => DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_group_state(sb("Dead"))
                    .with_error_code(Code::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!(
                        "group {} is not a consumer group",
                        gid.0
                    )))),
            }
        })
        .collect();
    Ok(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
