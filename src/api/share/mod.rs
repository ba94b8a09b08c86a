//! Share-group APIs (KIP-932): membership (ShareGroupHeartbeat, ShareGroupDescribe),
//! consumption (ShareFetch, ShareAcknowledge) and the admin APIs on share-group start
//! offsets. Handlers translate between wire structs and the coordinator in
//! `crate::share`.
//!
//! The codec (kafka-protocol 0.18) decodes ShareFetch and ShareAcknowledge v1 only; Kafka
//! 4.3 serves v1–2, where v2 adds the RENEW acknowledgement (KIP-1222) and acquire modes.
//! Sluice serves v1, which the 4.3 Java client negotiates, so RENEW is not available.

pub mod alter_share_group_offsets;
pub mod delete_share_group_offsets;
pub mod describe_share_group_offsets;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;

use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

use crate::api::Code;
use crate::api::Ctx;
use crate::group::configs::ShareGroupConfig;
use crate::security::acl::Operation;

/// The group and member a ShareFetch or ShareAcknowledge names, once this client may READ
/// the group (else GROUP_AUTHORIZATION_FAILED, checked first as Kafka does) and both are set
/// (else INVALID_REQUEST): the request-level error and its message otherwise.
pub(crate) fn group_and_member(
    ctx: &Ctx<'_>,
    group_id: Option<&GroupId>,
    member_id: Option<&StrBytes>,
) -> Result<(String, String), (Code, String)> {
    let group = group_id.map(|g| g.0.to_string()).unwrap_or_default();
    let member = member_id.map(|m| m.to_string()).unwrap_or_default();
    if !ctx.authorize_group(Operation::Read, &group) {
        return Err((Code::GroupAuthorizationFailed, "not authorized".into()));
    }
    if group.is_empty() || member.is_empty() {
        return Err((
            Code::InvalidRequest,
            "group id and member id must be set".into(),
        ));
    }
    Ok((group, member))
}

/// The effective settings of a share group.
pub(crate) fn config(ctx: &Ctx<'_>, group: &str) -> ShareGroupConfig {
    ctx.broker.groups.configs.share(group)
}

/// Whether `group` is a classic or KIP-848 consumer group, which a share group may not
/// share its id with (Kafka answers GROUP_ID_NOT_FOUND: "group is not a share group").
pub(crate) fn other_type(ctx: &Ctx<'_>, group: &str) -> bool {
    ctx.broker.groups.describe(group).is_some()
        || ctx
            .broker
            .groups
            .with_consumer_group(group, |_| ())
            .is_some()
}

/// The topics among `ids` this client may not READ (Kafka answers their partitions
/// TOPIC_AUTHORIZATION_FAILED in ShareFetch and ShareAcknowledge). Empty, without looking
/// anything up, when no authorizer is configured; an id that names no topic has no name to
/// check and is left to the usual UNKNOWN_TOPIC_ID handling.
pub(crate) fn unreadable_topics(
    ctx: &Ctx<'_>,
    ids: impl IntoIterator<Item = uuid::Uuid>,
) -> std::collections::HashSet<uuid::Uuid> {
    if !ctx.authorizing() {
        return std::collections::HashSet::new();
    }
    ids.into_iter()
        .filter(|id| {
            ctx.broker.logs.topic_by_id(id).is_some_and(|t| {
                !ctx.authorize_topic(crate::security::acl::Operation::Read, &t.name)
            })
        })
        .collect()
}
