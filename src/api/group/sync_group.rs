//! SyncGroup: the leader hands in the assignment; every member waits for its share.

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};

use super::settle;
use crate::api::{ApiError, Code, Ctx};
use crate::group::state::sync_error;
use crate::security::acl::Operation;

/// Handle SyncGroup.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: SyncGroupRequest,
) -> Result<SyncGroupResponse, ApiError> {
    if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        return Ok(sync_error(Code::GroupAuthorizationFailed));
    }
    if req.group_id.0.is_empty() {
        return Ok(sync_error(Code::InvalidGroupId));
    }
    let reply = ctx.broker.groups.sync(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_deref(),
        req.generation_id,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        req.assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    );
    let token = ctx.broker.shutdown.clone();
    let resp = tokio::select! {
        r = settle(reply, || sync_error(Code::RebalanceInProgress)) => r,
        _ = token.cancelled() => sync_error(Code::CoordinatorNotAvailable),
    };
    super::persist(ctx).await?;
    Ok(resp)
}
