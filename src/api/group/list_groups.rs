//! ListGroups, with the state filter (v4+) and type filter (v5+; every group here is
//! `classic`).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};

use crate::api::{sb, ApiError, Ctx};

/// Handle ListGroups.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ListGroupsRequest,
) -> Result<ListGroupsResponse, ApiError> {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = ctx
        .broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, st)| states.is_empty() || states.contains(&st.name().to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, pt, st)| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(id)))
                .with_protocol_type(sb(pt))
                .with_group_state(sb(st.name()))
                .with_group_type(sb("classic"))
        })
        .collect();
    Ok(ListGroupsResponse::default().with_groups(groups))
}
