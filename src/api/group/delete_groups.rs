//! DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise); their offsets go
//! with them. A share group takes its share state (`__share_group_state`) with it.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::api::{blocking, ApiError, Ctx};

/// Handle DeleteGroups.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, ApiError> {
    let broker = std::sync::Arc::clone(ctx.broker);
    let results = blocking(move || {
        req.groups_names
            .into_iter()
            .map(|g| {
                let r = if broker.shares.is_share_group(g.0.as_str()) {
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
