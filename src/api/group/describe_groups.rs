//! DescribeGroups: state, protocol and members with their metadata and assignment. An
//! unknown group is `Dead` (GROUP_ID_NOT_FOUND from v6, as Kafka 4 answers).

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::{Operation, ResourceType};

/// Authorized operations of a group without an authorizer: READ, DELETE, DESCRIBE.
pub(crate) const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Handle DescribeGroups.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse, ApiError> {
    let ops = req.include_authorized_operations && hdr.request_api_version >= 3;
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            if !ctx.authorize_group(Operation::Describe, id.0.as_str()) {
                return DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(Code::GroupAuthorizationFailed.code());
            }
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(if ops {
                    ctx.authorized_operations(ResourceType::Group, id.0.as_str(), GROUP_OPERATIONS)
                } else {
                    i32::MIN
                });
            match ctx.broker.groups.describe(id.0.as_str()) {
                None if hdr.request_api_version >= 6 => base
                    .with_group_state(sb("Dead"))
                    .with_error_code(Code::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!("group {} not found", id.0)))),
                None => base.with_group_state(sb("Dead")),
                Some(v) => base
                    .with_group_state(sb(v.state.name()))
                    .with_protocol_type(sb(v.protocol_type))
                    .with_protocol_data(sb(v.protocol))
                    .with_members(
                        v.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(sb(m.member_id))
                                    .with_group_instance_id(m.instance_id.map(sb))
                                    .with_client_id(sb(m.client_id))
                                    .with_client_host(sb(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Ok(DescribeGroupsResponse::default().with_groups(groups))
}
