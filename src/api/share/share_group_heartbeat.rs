//! ShareGroupHeartbeat (KIP-932): joins (epoch 0, with the subscribed topic names),
//! heartbeats and leaves (epoch -1) of share consumers, answered with the member's epoch
//! and, when it changed, its assignment. The session timeout and heartbeat interval are
//! the group's configs.

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    RequestHeader, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};

use crate::api::group::consumer_group_heartbeat::catalog;
use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;
use crate::share::group::Heartbeat;

/// Handle ShareGroupHeartbeat.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: ShareGroupHeartbeatRequest,
) -> Result<ShareGroupHeartbeatResponse, ApiError> {
    let group = req.group_id.0.to_string();
    let config = super::config(ctx, &group);
    let fail = |code: Code, msg: &str| {
        ShareGroupHeartbeatResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
            .with_heartbeat_interval_ms(config.heartbeat_interval_ms)
    };
    // READ on the group before anything else, as Kafka checks.
    if !ctx.authorize_group(Operation::Read, &group) {
        return Ok(fail(Code::GroupAuthorizationFailed, "not authorized"));
    }
    // DESCRIBE on every subscribed topic name, as Kafka checks.
    if req.subscribed_topic_names.as_ref().is_some_and(|ts| {
        ts.iter()
            .any(|t| !ctx.authorize_topic(Operation::Describe, t.0.as_str()))
    }) {
        return Ok(ShareGroupHeartbeatResponse::default()
            .with_error_code(Code::TopicAuthorizationFailed.code())
            .with_heartbeat_interval_ms(config.heartbeat_interval_ms));
    }
    if group.is_empty() {
        return Ok(fail(Code::InvalidRequest, "group id can't be empty"));
    }
    if req.member_epoch != 0 && req.member_id.is_empty() {
        return Ok(fail(Code::InvalidRequest, "member id can't be empty"));
    }
    if req.member_epoch == 0
        && req
            .subscribed_topic_names
            .as_ref()
            .is_none_or(|t| t.is_empty())
    {
        return Ok(fail(
            Code::InvalidRequest,
            "subscribed topic names must be set in the first request",
        ));
    }
    if super::other_type(ctx, &group) {
        return Ok(fail(
            Code::GroupIdNotFound,
            &format!("group {group} is not a share group"),
        ));
    }
    let hb = Heartbeat {
        member_id: req.member_id.to_string(),
        epoch: req.member_epoch,
        rack_id: req.rack_id.map(|s| s.to_string()),
        topics: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        client_id: hdr
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.conn.peer.ip().to_canonical()),
    };
    let catalog = catalog(ctx);
    match ctx.broker.shares.heartbeat(&group, hb, &catalog, &config) {
        Ok(r) => Ok(ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(sb(r.member_id)))
            .with_member_epoch(r.epoch)
            .with_heartbeat_interval_ms(config.heartbeat_interval_ms)
            .with_assignment(r.assignment.map(|a| {
                let mut topics: Vec<TopicPartitions> = Vec::new();
                for (id, p) in a {
                    match topics.last_mut() {
                        Some(t) if t.topic_id == id => t.partitions.push(p),
                        _ => topics.push(
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(vec![p]),
                        ),
                    }
                }
                Assignment::default().with_topic_partitions(topics)
            }))),
        Err(code) => Ok(fail(code, &format!("{code}"))),
    }
}
