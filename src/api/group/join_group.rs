//! JoinGroup: validates timeouts and ids, then waits on the coordinator until the join
//! phase completes (or answers at once: MEMBER_ID_REQUIRED, errors, static rejoin).

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};

use super::settle;
use crate::api::{ApiError, Code, Ctx};
use crate::group::state::{join_error, JoinParams, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS};
use crate::security::acl::Operation;

/// Handle JoinGroup.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: JoinGroupRequest,
) -> Result<JoinGroupResponse, ApiError> {
    // READ on the group comes first in Kafka (before any validation).
    if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        return Ok(join_error(Code::GroupAuthorizationFailed, ""));
    }
    let member_id = req.member_id.to_string();
    if req.group_id.0.is_empty() {
        return Ok(join_error(Code::InvalidGroupId, &member_id));
    }
    if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&req.session_timeout_ms) {
        return Ok(join_error(Code::InvalidSessionTimeout, &member_id));
    }
    let version = hdr.request_api_version;
    let params = JoinParams {
        member_id: member_id.clone(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: hdr
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.conn.peer.ip().to_canonical()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let reply = ctx.broker.groups.join(req.group_id.0.as_str(), params);
    let token = ctx.broker.shutdown.clone();
    let resp = tokio::select! {
        r = settle(reply, || join_error(Code::UnknownMemberId, &member_id)) => r,
        _ = token.cancelled() => join_error(Code::CoordinatorNotAvailable, &member_id),
    };
    super::persist(ctx).await?;
    Ok(resp)
}
