//! Group APIs: FindCoordinator, the classic rebalance protocol, offsets, and group admin.
//! Handlers translate between wire structs and the coordinator in `crate::group`.

pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod delete_groups;
pub mod describe_groups;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;

use crate::group::state::Reply;

/// Write groups changed by the request to `__consumer_offsets` before answering, as Kafka
/// stores group metadata before it completes a SyncGroup.
pub(crate) async fn persist(ctx: &crate::api::Ctx<'_>) -> Result<(), crate::api::ApiError> {
    if ctx.broker.groups.has_dirty() {
        let b = std::sync::Arc::clone(ctx.broker);
        crate::api::blocking(move || b.groups.persist_dirty()).await?;
    }
    Ok(())
}

/// Wait for a rebalance step's answer; a dropped sender (member replaced) gets `fallback`.
pub(crate) async fn settle<T>(reply: Reply<T>, fallback: impl FnOnce() -> T) -> T {
    match reply {
        Reply::Ready(r) => r,
        Reply::Wait(rx) => rx.await.unwrap_or_else(|_| fallback()),
    }
}

/// Kafka's message when a described consumer or share group names a topic the client may
/// not DESCRIBE (the group is then answered TOPIC_AUTHORIZATION_FAILED without members).
pub(crate) const UNDESCRIBABLE_TOPICS: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

/// Whether the client may DESCRIBE every topic in `names`.
pub(crate) fn may_describe_all<'n>(
    ctx: &crate::api::Ctx<'_>,
    names: impl IntoIterator<Item = &'n str>,
) -> bool {
    !ctx.authorizing()
        || names
            .into_iter()
            .all(|n| ctx.authorize_topic(crate::security::acl::Operation::Describe, n))
}
