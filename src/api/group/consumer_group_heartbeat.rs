//! ConsumerGroupHeartbeat (KIP-848): joins, heartbeats, acknowledgements of revocation and
//! leaves of `group.protocol=consumer` members, answered with the member's epoch and, when
//! it changed, its assignment.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, RequestHeader,
};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::group::consumer::{Catalog, Heartbeat, Partitions, TopicInfo};
use crate::security::acl::{Operation, ResourceType};

/// Every topic with its id and partition count.
pub(crate) fn catalog(ctx: &Ctx<'_>) -> Catalog {
    ctx.broker
        .logs
        .topics()
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                TopicInfo {
                    id: t.id,
                    partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                },
            )
        })
        .collect()
}

/// Group partitions by topic id for the wire.
pub(crate) fn by_topic(p: &Partitions) -> Vec<(uuid::Uuid, Vec<i32>)> {
    let mut out: Vec<(uuid::Uuid, Vec<i32>)> = Vec::new();
    for (id, part) in p {
        match out.last_mut() {
            Some((last, parts)) if last == id => parts.push(*part),
            _ => out.push((*id, vec![*part])),
        }
    }
    out
}

/// Handle ConsumerGroupHeartbeat.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, ApiError> {
    // The group's `consumer.heartbeat.interval.ms`, else the broker's default.
    let interval = ctx
        .broker
        .groups
        .configs
        .consumer(req.group_id.0.as_str())
        .heartbeat_interval_ms;
    let fail = |code: Code, msg: &str| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
            .with_heartbeat_interval_ms(interval)
    };
    tracing::trace!(?req, "consumer group heartbeat request");
    if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        return Ok(fail(
            Code::GroupAuthorizationFailed,
            &Code::GroupAuthorizationFailed.to_string(),
        ));
    }
    // DESCRIBE on every subscribed topic name (Kafka answers TOPIC_AUTHORIZATION_FAILED,
    // with no message, when any is missing).
    if req.subscribed_topic_names.as_ref().is_some_and(|ts| {
        ts.iter()
            .any(|t| !ctx.authorize_topic(Operation::Describe, t.0.as_str()))
    }) {
        return Ok(ConsumerGroupHeartbeatResponse::default()
            .with_error_code(Code::TopicAuthorizationFailed.code())
            .with_heartbeat_interval_ms(interval));
    }
    if req.group_id.0.is_empty() {
        return Ok(fail(Code::InvalidRequest, "group id can't be empty"));
    }
    if req.member_epoch > 0 && req.member_id.is_empty() {
        return Ok(fail(Code::InvalidRequest, "member id can't be empty"));
    }
    if let Some(re) = &req.subscribed_topic_regex {
        if regex::Regex::new(re.as_str()).is_err() {
            return Ok(fail(
                Code::InvalidRegularExpression,
                "invalid subscribed topic regex",
            ));
        }
    }
    // Kafka resolves a regex only to topics the member may DESCRIBE; with an authorizer,
    // the coordinator gets the set this principal may describe (`ConsumerMember::regex_allowed`).
    let catalog = catalog(ctx);
    let regex_allowed = ctx.broker.authorizer.enabled().then(|| {
        ctx.filter_authorized(
            Operation::Describe,
            ResourceType::Topic,
            catalog.keys().map(String::as_str),
        )
        .into_iter()
        .map(str::to_owned)
        .collect()
    });
    let hb = Heartbeat {
        member_id: req.member_id.to_string(),
        epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topics: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        regex_allowed,
        assignor: req.server_assignor.map(|s| s.to_string()),
        owned: req.topic_partitions.map(|tps| {
            tps.into_iter()
                .flat_map(|tp| tp.partitions.into_iter().map(move |p| (tp.topic_id, p)))
                .collect()
        }),
        client_id: hdr
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.conn.peer.ip().to_canonical()),
    };
    let result = ctx
        .broker
        .groups
        .consumer_heartbeat(req.group_id.0.as_str(), hb, &catalog);
    super::persist(ctx).await?;
    match result {
        Ok(r) => Ok(ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(sb(r.member_id)))
            .with_member_epoch(r.epoch)
            .with_heartbeat_interval_ms(interval)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    by_topic(&a)
                        .into_iter()
                        .map(|(id, parts)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(parts)
                        })
                        .collect(),
                )
            }))),
        Err(code) => Ok(fail(code, &format!("{code}"))),
    }
}
