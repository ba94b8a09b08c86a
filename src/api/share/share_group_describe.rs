//! ShareGroupDescribe: a share group's state, epochs and members with their subscriptions
//! and assignments. An unknown group (or one of another type) is GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    RequestHeader, ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName,
};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::{Operation, ResourceType};

/// Authorized operations of a group without an authorizer: READ, DELETE, DESCRIBE.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Handle ShareGroupDescribe.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ShareGroupDescribeRequest,
) -> Result<ShareGroupDescribeResponse, ApiError> {
    let topics = ctx.broker.logs.topics();
    let name_of = |id: &uuid::Uuid| {
        topics
            .iter()
            .find(|t| t.id == *id)
            .map(|t| t.name.to_string())
            .unwrap_or_default()
    };
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            if !ctx.authorize_group(Operation::Describe, id.0.as_str()) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(Code::GroupAuthorizationFailed.code());
            }
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(if req.include_authorized_operations {
                    ctx.authorized_operations(ResourceType::Group, id.0.as_str(), GROUP_OPERATIONS)
                } else {
                    i32::MIN
                });
            let Some(g) = ctx.broker.shares.describe(id.0.as_str()) else {
                return base
                    .with_group_state(sb("Dead"))
                    .with_error_code(Code::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!("group {} not found", id.0))));
            };
            let names = g.members.values().flat_map(|m| {
                m.topics.iter().map(String::as_str).chain(
                    topics
                        .iter()
                        .filter(|t| m.assignment.iter().any(|(id, _)| *id == t.id))
                        .map(|t| &*t.name),
                )
            });
            if !crate::api::group::may_describe_all(ctx, names) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(Code::TopicAuthorizationFailed.code())
                    .with_error_message(Some(sb(crate::api::group::UNDESCRIBABLE_TOPICS)));
            }
            base.with_group_state(sb(g.state_name()))
                .with_group_epoch(g.epoch)
                .with_assignment_epoch(g.epoch)
                .with_assignor_name(sb("simple"))
                .with_members(
                    g.members
                        .values()
                        .map(|m| {
                            let mut tps: Vec<TopicPartitions> = Vec::new();
                            for (tid, p) in &m.assignment {
                                match tps.last_mut() {
                                    Some(t) if t.topic_id == *tid => t.partitions.push(*p),
                                    _ => tps.push(
                                        TopicPartitions::default()
                                            .with_topic_id(*tid)
                                            .with_topic_name(TopicName(sb(name_of(tid))))
                                            .with_partitions(vec![*p]),
                                    ),
                                }
                            }
                            Member::default()
                                .with_member_id(sb(m.id.clone()))
                                .with_rack_id(m.rack_id.clone().map(sb))
                                .with_member_epoch(m.epoch)
                                .with_client_id(sb(m.client_id.clone()))
                                .with_client_host(sb(m.client_host.clone()))
                                .with_subscribed_topic_names(
                                    m.topics.iter().map(|t| TopicName(sb(t.clone()))).collect(),
                                )
                                .with_assignment(Assignment::default().with_topic_partitions(tps))
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(ShareGroupDescribeResponse::default().with_groups(groups))
}
