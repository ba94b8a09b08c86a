//! DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise); their offsets go
//! with them. A share group takes its share state (`__share_group_state`) with it.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::api::{blocking, ApiError, Ctx};
use crate::security::acl::Operation;

/// Handle DeleteGroups.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    // DELETE on each group (GROUP_AUTHORIZATION_FAILED for the others, as Kafka answers).
    let allowed: Vec<bool> = req
        .groups_names
        .iter()
        .map(|g| ctx.authorize_group(Operation::Delete, g.0.as_str()))
        .collect();
    let results = blocking(move || {
        req.groups_names
            .into_iter()
            .zip(allowed)
            .map(|(g, allowed)| {
                let r = if !allowed {
                    Err(crate::api::Code::GroupAuthorizationFailed)
                } else if broker.shares.is_share_group(g.0.as_str()) {
                    broker.shares.delete_group(g.0.as_str())
                } else {
                    broker.groups.delete(g.0.as_str())
                };
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(r.err().map_or(0, |c| c.code()))
            })
            .collect()
    })
    .await?;
    Ok(DeleteGroupsResponse::default().with_results(results))
}
