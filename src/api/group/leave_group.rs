//! LeaveGroup: one member (v0–2) or a batch of members by id or instance id (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use crate::api::Code;
use crate::api::{ApiError, Ctx};
use crate::security::acl::Operation;

/// Handle LeaveGroup.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: LeaveGroupRequest,
) -> Result<LeaveGroupResponse, ApiError> {
    if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        return Ok(
            LeaveGroupResponse::default().with_error_code(Code::GroupAuthorizationFailed.code())
        );
    }
    let batched = hdr.request_api_version >= 3;
    let members: Vec<(String, Option<String>)> = if batched {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let left = ctx.broker.groups.leave(req.group_id.0.as_str(), &members);
    super::persist(ctx).await?;
    // Kafka answers a batched leave of an unknown group per member, not as a whole.
    let left = match left {
        Err(code) if batched => Ok(members.iter().map(|_| Err(code)).collect()),
        other => other,
    };
    match left {
        Err(code) => Ok(LeaveGroupResponse::default().with_error_code(code.code())),
        Ok(results) if batched => Ok(LeaveGroupResponse::default().with_members(
            req.members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(r.err().map_or(0, |c| c.code()))
                })
                .collect(),
        )),
        Ok(results) => Ok(LeaveGroupResponse::default().with_error_code(
            results
                .first()
                .and_then(|r| r.err())
                .map_or(0, |c| c.code()),
        )),
    }
}
