//! ListGroups, with the state filter (v4+) and type filter (v5+: `classic` groups of the
//! JoinGroup protocol, `consumer` groups of KIP-848, `share` groups of KIP-932).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};

use crate::api::{sb, ApiError, Ctx};
use crate::security::acl::Operation;

/// Handle ListGroups.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: ListGroupsRequest,
) -> Result<ListGroupsResponse, ApiError> {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let coordinator = &ctx.broker.groups;
    let classic = coordinator
        .list()
        .into_iter()
        .map(|(id, pt, st)| (id, pt, st.name(), "classic"));
    let consumer = coordinator
        .list_consumer_groups()
        .into_iter()
        .map(|(id, st)| (id, "consumer".to_string(), st, "consumer"));
    let share = ctx
        .broker
        .shares
        .list()
        .into_iter()
        .map(|(id, st)| (id, "share".to_string(), st, "share"));
    let mut all: Vec<_> = classic.chain(consumer).chain(share).collect();
    all.sort();
    // Kafka lists every group to a client that may DESCRIBE the cluster, else only the
    // groups it may DESCRIBE.
    if !ctx.authorize_cluster(Operation::Describe) {
        all.retain(|(id, _, _, _)| ctx.authorize_group(Operation::Describe, id));
    }
    let groups = all
        .into_iter()
        .filter(|(_, _, st, _)| states.is_empty() || states.contains(&st.to_lowercase()))
        .filter(|(_, _, _, ty)| types.is_empty() || types.iter().any(|t| t == ty))
        .map(|(id, pt, st, ty)| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(id)))
                .with_protocol_type(sb(pt))
                .with_group_state(sb(st))
                .with_group_type(sb(ty))
        })
        .collect();
    Ok(ListGroupsResponse::default().with_groups(groups))
}
