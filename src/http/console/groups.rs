//! Groups in the console, as Kafka's admin APIs report them, through the broker's handlers:
//! ListGroups for the list (classic, KIP-848 consumer and share groups; only groups the
//! user may DESCRIBE), DescribeGroups / ConsumerGroupDescribe / ShareGroupDescribe for
//! state, members and assignments, OffsetFetch (DescribeShareGroupOffsets for share groups)
//! for committed offsets. Lag is the partition's log end offset (high watermark, what
//! `kafka-consumer-groups --describe` reads with ListOffsets latest) minus the committed
//! offset.
//!
//! Offset resets follow `kafka-consumer-groups --reset-offsets`: only while the group is
//! empty (else NON_EMPTY_GROUP with the tool's message), to the earliest or latest offset,
//! to an offset (clamped into the log's range, as the tool does), or to a timestamp
//! (ListOffsets; latest when no message is that recent); a preview first, then the commit
//! (OffsetCommit as the admin client sends it: generation -1, no member).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupDescribeRequest, ConsumerProtocolAssignment,
    DescribeGroupsRequest, DescribeShareGroupOffsetsRequest, GroupId, ListGroupsRequest,
    ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, RequestKind,
    ShareGroupDescribeRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Deserialize;
use serde_json::{json, Value};

use super::kafka::{check, Caller, ConsoleError};
use super::{Console, Identity};
use crate::console_expect;
use crate::security::acl::Operation;

/// Most groups the list shows.
pub const MAX_LISTED_GROUPS: usize = 1000;
const LIST_GROUPS_VERSION: i16 = 5;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 1;
const SHARE_GROUP_DESCRIBE_VERSION: i16 = 1;
const OFFSET_FETCH_VERSION: i16 = 9;
const OFFSET_COMMIT_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 9;
const DESCRIBE_SHARE_GROUP_OFFSETS_VERSION: i16 = 0;
/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

fn gid(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

fn tname(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// A group as the describe APIs report it.
#[derive(Debug, Default)]
struct GroupInfo {
    id: String,
    /// classic, consumer or share.
    kind: String,
    state: String,
    protocol_type: String,
    /// The classic protocol (`range`, ...), or the KIP-848 assignor.
    protocol: String,
    epoch: Option<i32>,
    members: Vec<MemberInfo>,
}

#[derive(Debug, Default)]
struct MemberInfo {
    member_id: String,
    client_id: String,
    host: String,
    instance_id: Option<String>,
    assignment: Vec<(String, Vec<i32>)>,
}

impl MemberInfo {
    fn json(&self) -> Value {
        json!({
            "member_id": self.member_id,
            "client_id": self.client_id,
            "host": self.host,
            "instance_id": self.instance_id,
            "assignment": self.assignment.iter().map(|(t, ps)| json!({"topic": t, "partitions": ps})).collect::<Vec<_>>(),
        })
    }
}

/// ListGroups: (id, type, state, protocol type) of every group the user may DESCRIBE.
async fn list_groups(
    caller: &Caller,
) -> Result<Vec<(String, String, String, String)>, ConsoleError> {
    let resp = caller
        .call(
            ApiKey::ListGroups,
            LIST_GROUPS_VERSION,
            RequestKind::ListGroups(ListGroupsRequest::default()),
        )
        .await?;
    let resp = console_expect!(resp, ListGroups);
    check(resp.error_code, None)?;
    Ok(resp
        .groups
        .into_iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                g.group_type.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
            )
        })
        .collect())
}

/// A classic member's assignment bytes, when its protocol is Kafka's consumer protocol.
/// The bytes come from a client, so they are checked like a request before decoding.
fn decode_assignment(mut b: Bytes) -> Vec<(String, Vec<i32>)> {
    if b.len() < 2 {
        return Vec::new();
    }
    let version = b.get_i16();
    if crate::guard::check_embedded(&b, "ConsumerProtocolAssignment", version).is_err() {
        return Vec::new();
    }
    ConsumerProtocolAssignment::decode(&mut b, version)
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .map(|tp| (tp.topic.0.to_string(), tp.partitions))
                .collect()
        })
        .unwrap_or_default()
}

/// Describe groups of one kind, in one request: (info or error) per id.
async fn describe_kind(
    caller: &Caller,
    kind: &str,
    ids: &[String],
) -> Result<Vec<Result<GroupInfo, ConsoleError>>, ConsoleError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let groups: Vec<GroupId> = ids.iter().map(|i| gid(i)).collect();
    Ok(match kind {
        "consumer" => {
            let req = ConsumerGroupDescribeRequest::default().with_group_ids(groups);
            let resp = caller
                .call(
                    ApiKey::ConsumerGroupDescribe,
                    CONSUMER_GROUP_DESCRIBE_VERSION,
                    RequestKind::ConsumerGroupDescribe(req),
                )
                .await?;
            console_expect!(resp, ConsumerGroupDescribe)
                .groups
                .into_iter()
                .map(|g| {
                    check(g.error_code, g.error_message.as_ref())?;
                    Ok(GroupInfo {
                        id: g.group_id.0.to_string(),
                        kind: "consumer".into(),
                        state: g.group_state.to_string(),
                        protocol_type: "consumer".into(),
                        protocol: g.assignor_name.to_string(),
                        epoch: Some(g.group_epoch),
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberInfo {
                                member_id: m.member_id.to_string(),
                                client_id: m.client_id.to_string(),
                                host: m.client_host.to_string(),
                                instance_id: m.instance_id.map(|s| s.to_string()),
                                assignment: m
                                    .assignment
                                    .topic_partitions
                                    .into_iter()
                                    .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                                    .collect(),
                            })
                            .collect(),
                    })
                })
                .collect()
        }
        "share" => {
            let req = ShareGroupDescribeRequest::default().with_group_ids(groups);
            let resp = caller
                .call(
                    ApiKey::ShareGroupDescribe,
                    SHARE_GROUP_DESCRIBE_VERSION,
                    RequestKind::ShareGroupDescribe(req),
                )
                .await?;
            console_expect!(resp, ShareGroupDescribe)
                .groups
                .into_iter()
                .map(|g| {
                    check(g.error_code, g.error_message.as_ref())?;
                    Ok(GroupInfo {
                        id: g.group_id.0.to_string(),
                        kind: "share".into(),
                        state: g.group_state.to_string(),
                        protocol_type: "share".into(),
                        protocol: g.assignor_name.to_string(),
                        epoch: Some(g.group_epoch),
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberInfo {
                                member_id: m.member_id.to_string(),
                                client_id: m.client_id.to_string(),
                                host: m.client_host.to_string(),
                                instance_id: None,
                                assignment: m
                                    .assignment
                                    .topic_partitions
                                    .into_iter()
                                    .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                                    .collect(),
                            })
                            .collect(),
                    })
                })
                .collect()
        }
        _ => {
            let req = DescribeGroupsRequest::default().with_groups(groups);
            let resp = caller
                .call(
                    ApiKey::DescribeGroups,
                    DESCRIBE_GROUPS_VERSION,
                    RequestKind::DescribeGroups(req),
                )
                .await?;
            console_expect!(resp, DescribeGroups)
                .groups
                .into_iter()
                .map(|g| {
                    check(g.error_code, g.error_message.as_ref())?;
                    if g.group_state.as_str() == "Dead" {
                        return Err(not_found(g.group_id.0.as_str()));
                    }
                    let consumer = g.protocol_type.as_str() == "consumer";
                    Ok(GroupInfo {
                        id: g.group_id.0.to_string(),
                        kind: "classic".into(),
                        state: g.group_state.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        protocol: g.protocol_data.to_string(),
                        epoch: None,
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberInfo {
                                member_id: m.member_id.to_string(),
                                client_id: m.client_id.to_string(),
                                host: m.client_host.to_string(),
                                instance_id: m.group_instance_id.map(|s| s.to_string()),
                                assignment: if consumer {
                                    decode_assignment(m.member_assignment)
                                } else {
                                    Vec::new()
                                },
                            })
                            .collect(),
                    })
                })
                .collect()
        }
    })
}

fn not_found(id: &str) -> ConsoleError {
    ConsoleError::kafka(
        ResponseError::GroupIdNotFound.code(),
        Some(&StrBytes::from_string(format!("group {id} does not exist"))),
    )
}

/// One group, whatever its kind.
async fn describe_one(caller: &Caller, id: &str) -> Result<GroupInfo, ConsoleError> {
    let listed = list_groups(caller).await?;
    // Not listed: the user may not DESCRIBE it, or it does not exist; DescribeGroups
    // tells which (GROUP_AUTHORIZATION_FAILED, or a Dead group).
    let kind = listed
        .into_iter()
        .find(|g| g.0 == id)
        .map_or_else(|| "classic".to_string(), |g| g.1);
    describe_kind(caller, &kind, &[id.to_string()])
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(not_found(id)))
}

/// Committed offsets (share groups: start offsets) of groups of one kind: by group id,
/// (topic, partition) → offset, for the partitions the user may DESCRIBE.
async fn committed_offsets(
    caller: &Caller,
    kind: &str,
    ids: &[String],
) -> Result<BTreeMap<String, BTreeMap<(String, i32), i64>>, ConsoleError> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    if kind == "share" {
        let req = DescribeShareGroupOffsetsRequest::default().with_groups(
            ids.iter()
                .map(|i| DescribeShareGroupOffsetsRequestGroup::default().with_group_id(gid(i)))
                .collect(),
        );
        let resp = caller
            .call(
                ApiKey::DescribeShareGroupOffsets,
                DESCRIBE_SHARE_GROUP_OFFSETS_VERSION,
                RequestKind::DescribeShareGroupOffsets(req),
            )
            .await?;
        for g in console_expect!(resp, DescribeShareGroupOffsets).groups {
            if g.error_code != 0 {
                continue;
            }
            let m: &mut BTreeMap<(String, i32), i64> =
                out.entry(g.group_id.0.to_string()).or_default();
            for t in g.topics {
                for p in t.partitions {
                    if p.error_code == 0 && p.start_offset >= 0 {
                        m.insert(
                            (t.topic_name.0.to_string(), p.partition_index),
                            p.start_offset,
                        );
                    }
                }
            }
        }
        return Ok(out);
    }
    let req = OffsetFetchRequest::default().with_groups(
        ids.iter()
            .map(|i| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid(i))
                    .with_member_epoch(-1)
                    .with_topics(None)
            })
            .collect(),
    );
    let resp = caller
        .call(
            ApiKey::OffsetFetch,
            OFFSET_FETCH_VERSION,
            RequestKind::OffsetFetch(req),
        )
        .await?;
    for g in console_expect!(resp, OffsetFetch).groups {
        if g.error_code != 0 {
            continue;
        }
        let m: &mut BTreeMap<(String, i32), i64> = out.entry(g.group_id.0.to_string()).or_default();
        for t in g.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    m.insert(
                        (t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
    }
    Ok(out)
}

/// A partition's log end offset (high watermark), if the partition exists.
fn log_end(caller: &Caller, topic: &str, partition: i32) -> Option<i64> {
    let t = caller.broker().logs.topic(topic)?;
    let p = t.partitions.get(usize::try_from(partition).ok()?)?;
    Some(p.high_watermark())
}

/// `GET /api/groups`.
pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
) -> Result<Response, ConsoleError> {
    let caller = Caller::new(&console.broker, &who, console.bound);
    let mut listed = list_groups(&caller).await?;
    let truncated = listed.len() > MAX_LISTED_GROUPS;
    listed.truncate(MAX_LISTED_GROUPS);
    let mut members: BTreeMap<String, usize> = BTreeMap::new();
    let mut offsets = BTreeMap::new();
    for kind in ["classic", "consumer", "share"] {
        let ids: Vec<String> = listed
            .iter()
            .filter(|g| g.1 == kind)
            .map(|g| g.0.clone())
            .collect();
        for info in describe_kind(&caller, kind, &ids)
            .await?
            .into_iter()
            .flatten()
        {
            members.insert(info.id, info.members.len());
        }
        offsets.extend(committed_offsets(&caller, kind, &ids).await?);
    }
    let groups: Vec<Value> = listed
        .iter()
        .map(|(id, kind, state, protocol_type)| {
            let lag = offsets.get(id).map(|m| {
                m.iter()
                    .filter_map(|((t, p), c)| Some((log_end(&caller, t, *p)? - c).max(0)))
                    .sum::<i64>()
            });
            json!({
                "group_id": id,
                "type": kind,
                "state": state,
                "protocol_type": protocol_type,
                "members": members.get(id),
                "lag": lag,
            })
        })
        .collect();
    Ok(Json(json!({ "groups": groups, "truncated": truncated })).into_response())
}

/// `GET /api/groups/{id}`.
pub async fn describe(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let caller = Caller::new(&console.broker, &who, console.bound);
    let info = describe_one(&caller, &id).await?;
    let committed = committed_offsets(&caller, &info.kind, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    // Every partition with an offset or an owner, as kafka-consumer-groups --describe
    // lists them.
    let mut owner: BTreeMap<(String, i32), &str> = BTreeMap::new();
    for m in &info.members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), &m.member_id);
            }
        }
    }
    let keys: BTreeSet<(String, i32)> = committed.keys().chain(owner.keys()).cloned().collect();
    let mut total = 0i64;
    let rows: Vec<Value> = keys
        .iter()
        .map(|k| {
            let c = committed.get(k).copied();
            let end = log_end(&caller, &k.0, k.1);
            let lag = match (c, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                _ => None,
            };
            total += lag.unwrap_or(0);
            json!({
                "topic": k.0,
                "partition": k.1,
                "committed": c,
                "log_end": end,
                "lag": lag,
                "member_id": owner.get(k),
            })
        })
        .collect();
    Ok(Json(json!({
        "group_id": info.id,
        "type": info.kind,
        "state": info.state,
        "protocol_type": info.protocol_type,
        "protocol": info.protocol,
        "epoch": info.epoch,
        "members": info.members.iter().map(MemberInfo::json).collect::<Vec<_>>(),
        "offsets": rows,
        "lag": total,
    }))
    .into_response())
}

/// `GET /api/groups/{id}/lag`: the sampled total lag over the last minutes (DESCRIBE on the
/// group).
pub async fn lag_history(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let caller = Caller::new(&console.broker, &who, console.bound);
    if !caller.ctx().authorize_group(Operation::Describe, &id) {
        return Err(ConsoleError::kafka(
            ResponseError::GroupAuthorizationFailed.code(),
            None,
        ));
    }
    let samples: Vec<Value> = console
        .lag
        .samples(&id)
        .into_iter()
        .map(|(t, lag)| json!({"t": t, "lag": lag}))
        .collect();
    Ok(Json(json!({
        "group_id": id,
        "interval_ms": super::lag::SAMPLE_INTERVAL.as_millis(),
        "window_ms": super::lag::WINDOW.as_millis(),
        "samples": samples,
    }))
    .into_response())
}

/// `POST /api/groups/{id}/reset-offsets` body.
#[derive(Debug, Deserialize)]
pub struct Reset {
    /// `earliest`, `latest`, `offset` or `timestamp`.
    pub strategy: String,
    /// The offset or timestamp (ms) for those strategies.
    pub value: Option<i64>,
    /// One topic (all its partitions, as `--topic`), or every topic with committed offsets.
    pub topic: Option<String>,
    /// Commit (true) or only preview (false, like the tool's `--dry-run`).
    #[serde(default)]
    pub execute: bool,
}

/// ListOffsets for `parts` at `timestamp`: (topic, partition) → offset (-1: none).
async fn list_offsets(
    caller: &Caller,
    parts: &BTreeSet<(String, i32)>,
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), i64>, ConsoleError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(tname(t))
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let resp = caller
        .call(
            ApiKey::ListOffsets,
            LIST_OFFSETS_VERSION,
            RequestKind::ListOffsets(req),
        )
        .await?;
    let mut out = BTreeMap::new();
    for t in console_expect!(resp, ListOffsets).topics {
        for p in t.partitions {
            check(p.error_code, None)?;
            out.insert((t.name.0.to_string(), p.partition_index), p.offset);
        }
    }
    Ok(out)
}

/// `POST /api/groups/{id}/reset-offsets`.
pub async fn reset_offsets(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Json(reset): Json<Reset>,
) -> Result<Response, ConsoleError> {
    let caller = Caller::new(&console.broker, &who, console.bound);
    let needs_value = matches!(reset.strategy.as_str(), "offset" | "timestamp");
    match (reset.strategy.as_str(), reset.value) {
        ("earliest" | "latest", _) | ("offset" | "timestamp", Some(_)) => {}
        (s, None) if needs_value => {
            return Err(ConsoleError::invalid(format!("strategy {s} needs a value")))
        }
        (s, _) => {
            return Err(ConsoleError::invalid(format!(
                "strategy '{s}': use earliest, latest, offset or timestamp"
            )))
        }
    }
    let info = describe_one(&caller, &id).await?;
    if info.kind == "share" {
        return Err(ConsoleError::invalid(
            "share groups are reset with kafka-share-groups --reset-offsets, not here",
        ));
    }
    // kafka-consumer-groups refuses unless the group is inactive (Empty or Dead).
    if !matches!(info.state.as_str(), "Empty" | "Dead") {
        return Err(ConsoleError::kafka(
            ResponseError::NonEmptyGroup.code(),
            Some(&StrBytes::from_string(format!(
                "Assignments can only be reset if the group '{id}' is inactive, but the current state is {}.",
                info.state
            ))),
        ));
    }
    let committed = committed_offsets(&caller, &info.kind, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let parts: BTreeSet<(String, i32)> = match &reset.topic {
        Some(t) => {
            let md = super::topics::metadata(&caller, Some(&[t.as_str()])).await?;
            let topic = md
                .topics
                .first()
                .ok_or_else(|| ConsoleError::internal("Metadata answered no topic"))?;
            check(topic.error_code, None)?;
            topic
                .partitions
                .iter()
                .map(|p| (t.clone(), p.partition_index))
                .collect()
        }
        None => committed.keys().cloned().collect(),
    };
    if parts.is_empty() {
        return Err(ConsoleError::invalid(
            "the group has no committed offsets: choose a topic to reset",
        ));
    }
    let earliest = list_offsets(&caller, &parts, EARLIEST).await?;
    let latest = list_offsets(&caller, &parts, LATEST).await?;
    let by_time = match (reset.strategy.as_str(), reset.value) {
        ("timestamp", Some(ts)) => Some(list_offsets(&caller, &parts, ts).await?),
        _ => None,
    };
    let mut plan = Vec::with_capacity(parts.len());
    for k in &parts {
        let lo = earliest.get(k).copied().unwrap_or(0);
        let hi = latest.get(k).copied().unwrap_or(lo);
        let new = match (reset.strategy.as_str(), reset.value) {
            ("earliest", _) => lo,
            ("latest", _) => hi,
            ("offset", Some(o)) => o.clamp(lo, hi.max(lo)),
            _ => match by_time.as_ref().and_then(|m| m.get(k)).copied() {
                Some(o) if o >= 0 => o,
                _ => hi,
            },
        };
        plan.push((k.clone(), committed.get(k).copied(), new));
    }
    if reset.execute {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for ((t, p), _, new) in &plan {
            by_topic.entry(t.as_str()).or_default().push((*p, *new));
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(&id))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(tname(t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| {
                                        OffsetCommitRequestPartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                            .with_committed_leader_epoch(-1)
                                            .with_committed_metadata(Some(StrBytes::default()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = caller
            .call(
                ApiKey::OffsetCommit,
                OFFSET_COMMIT_VERSION,
                RequestKind::OffsetCommit(req),
            )
            .await?;
        for t in console_expect!(resp, OffsetCommit).topics {
            for p in t.partitions {
                check(p.error_code, None)?;
            }
        }
        tracing::info!(principal = %who.principal, group = %id, strategy = %reset.strategy, "web console: group offsets reset");
    }
    Ok(Json(json!({
        "group_id": id,
        "executed": reset.execute,
        "offsets": plan.iter().map(|((t, p), cur, new)| json!({
            "topic": t, "partition": p, "current": cur, "new": new,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}
