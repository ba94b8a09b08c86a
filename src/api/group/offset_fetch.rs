//! OffsetFetch: one group (v1–7, `topics` null = all) or several groups (v8+). Partitions
//! without a commit answer offset -1, as Kafka does. With `require_stable` (v7+, what
//! read_committed consumers send), a partition whose offsets an open transaction has
//! written gets UNSTABLE_OFFSET_COMMIT, so the consumer waits for the transaction to end.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::group::Coordinator;
use crate::security::acl::Operation;

/// (topic, [(partition, offset, leader epoch, metadata, error code)]) for a group.
type Fetched = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

/// The committed offsets of `group`: of the `wanted` topics, or of every topic. `describe`
/// says whether the client may DESCRIBE a topic: as in Kafka, a named topic without it
/// answers TOPIC_AUTHORIZATION_FAILED, and the all-topics answer leaves it out.
fn lookup(
    groups: &Coordinator,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    describe: &dyn Fn(&str) -> bool,
) -> Fetched {
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let allowed = describe(&t);
                let rows = parts
                    .into_iter()
                    .map(|p| {
                        if !allowed {
                            let code = Code::TopicAuthorizationFailed.code();
                            return (p, -1, -1, String::new(), code);
                        }
                        if require_stable && groups.offsets.has_pending(group, &t, p) {
                            return (p, -1, -1, String::new(), Code::UnstableOffsetCommit.code());
                        }
                        match groups.offsets.get(group, &t, p) {
                            Some(c) => (
                                p,
                                c.offset,
                                c.leader_epoch,
                                c.metadata.unwrap_or_default(),
                                0,
                            ),
                            None => (p, -1, -1, String::new(), 0),
                        }
                    })
                    .collect();
                (t, rows)
            })
            .collect(),
        None => {
            let mut out: Fetched = Vec::new();
            let mut last: Option<(String, bool)> = None;
            for ((t, p), c) in groups.offsets.group(group) {
                let allowed = match &last {
                    Some((lt, ok)) if *lt == t => *ok,
                    _ => {
                        let ok = describe(&t);
                        last = Some((t.clone(), ok));
                        ok
                    }
                };
                if !allowed {
                    continue;
                }
                let unstable = require_stable && groups.offsets.has_pending(group, &t, p);
                let row = if unstable {
                    (p, -1, -1, String::new(), Code::UnstableOffsetCommit.code())
                } else {
                    (
                        p,
                        c.offset,
                        c.leader_epoch,
                        c.metadata.unwrap_or_default(),
                        0,
                    )
                };
                match out.last_mut() {
                    Some((lt, rows)) if *lt == t => rows.push(row),
                    _ => out.push((t, vec![row])),
                }
            }
            out
        }
    }
}

/// Handle OffsetFetch.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, ApiError> {
    let groups = &ctx.broker.groups;
    let describe = |t: &str| ctx.authorize_topic(Operation::Describe, t);
    if hdr.request_api_version >= 8 {
        let out = req
            .groups
            .into_iter()
            .map(|g| {
                // DESCRIBE on the group (Kafka: GROUP_AUTHORIZATION_FAILED for that group).
                if !ctx.authorize_group(Operation::Describe, g.group_id.0.as_str()) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(Code::GroupAuthorizationFailed.code());
                }
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let rows = lookup(
                    groups,
                    g.group_id.0.as_str(),
                    wanted,
                    req.require_stable,
                    &describe,
                );
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(
                        rows.into_iter()
                            .map(|(t, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(sb(t)))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o, e, m, code)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_error_code(code)
                                                    .with_committed_offset(o)
                                                    .with_committed_leader_epoch(e)
                                                    .with_metadata(Some(sb(m)))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        return Ok(OffsetFetchResponse::default().with_groups(out));
    }
    if !ctx.authorize_group(Operation::Describe, req.group_id.0.as_str()) {
        return Ok(
            OffsetFetchResponse::default().with_error_code(Code::GroupAuthorizationFailed.code())
        );
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let stable = hdr.request_api_version >= 7 && req.require_stable;
    let rows = lookup(groups, req.group_id.0.as_str(), wanted, stable, &describe);
    Ok(OffsetFetchResponse::default().with_topics(
        rows.into_iter()
            .map(|(t, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, o, e, m, code)| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(if hdr.request_api_version >= 5 {
                                        e
                                    } else {
                                        -1
                                    })
                                    .with_metadata(Some(sb(m)))
                            })
                            .collect(),
                    )
            })
            .collect(),
    ))
}
