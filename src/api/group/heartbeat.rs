//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use crate::api::Code;
use crate::api::{ApiError, Ctx};
use crate::security::acl::Operation;

/// Handle Heartbeat.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: HeartbeatRequest,
) -> Result<HeartbeatResponse, ApiError> {
    if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        return Ok(
            HeartbeatResponse::default().with_error_code(Code::GroupAuthorizationFailed.code())
        );
    }
    let r = ctx.broker.groups.heartbeat(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    Ok(HeartbeatResponse::default().with_error_code(r.err().map_or(0, |c| c.code())))
}
