//! OffsetCommit: validate membership and generation or member epoch (or accept a commit from
//! outside any generation while the group has no members), then write the offsets to
//! `__consumer_offsets` before answering. A KIP-848 member committing with an older epoch
//! may write only the partitions `ConsumerGroup::check_commit` allows; the others get
//! STALE_MEMBER_EPOCH.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};
use tracing::error;

use crate::api::{blocking, ApiError, Code, Ctx};
use crate::group::consumer::CommitScope;
use crate::group::offsets::{CommittedOffset, OFFSET_METADATA_MAX_BYTES};
use crate::log::partition::now_ms;
use crate::security::acl::Operation;

/// (partition, error) per partition of a topic, filled in as the request is checked.
type PartitionCodes = Vec<(i32, Option<Code>)>;

/// Handle OffsetCommit.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, ApiError> {
    let b = ctx.broker;
    let group = req.group_id.0.to_string();
    // READ on the group, then READ on each topic, before anything else (Kafka's order).
    let group_ok = ctx.authorize_group(Operation::Read, &group);
    let checked = if !group_ok {
        Err(Code::GroupAuthorizationFailed)
    } else if group.is_empty() {
        Err(Code::InvalidGroupId)
    } else {
        b.groups.check_commit(
            &group,
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            hdr.request_api_version,
        )
    };
    let (refused, scope) = match checked {
        Ok(scope) => (None, scope),
        Err(code) => (Some(code), CommitScope::All),
    };
    let now = now_ms();
    let mut results: Vec<(OffsetCommitResponseTopic, PartitionCodes)> = Vec::new();
    let mut entries = Vec::new();
    let mut stale: Vec<(String, i32)> = Vec::new();
    for t in req.topics {
        let topic = b.logs.topic(t.name.0.as_str());
        let topic_ok = !group_ok || ctx.authorize_topic(Operation::Read, t.name.0.as_str());
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let code = if !topic_ok {
                Some(Code::TopicAuthorizationFailed)
            } else if let Some(c) = refused {
                Some(c)
            } else if !topic.as_ref().is_some_and(|tp| {
                usize::try_from(p.partition_index).is_ok_and(|i| i < tp.partitions.len())
            }) {
                Some(Code::UnknownTopicOrPartition)
            } else if match &scope {
                CommitScope::All => false,
                CommitScope::Only { allowed, .. } => !topic
                    .as_ref()
                    .is_some_and(|tp| allowed.contains(&(tp.id, p.partition_index))),
            } {
                stale.push((t.name.0.to_string(), p.partition_index));
                Some(Code::StaleMemberEpoch)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES)
            {
                Some(Code::OffsetMetadataTooLarge)
            } else {
                entries.push((
                    (t.name.0.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.map(|m| m.to_string()),
                        commit_timestamp: now,
                    },
                ));
                None
            };
            parts.push((p.partition_index, code));
        }
        results.push((
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id),
            parts,
        ));
    }
    if let CommitScope::Only { member_epoch, .. } = &scope {
        tracing::debug!(
            group,
            member = %req.member_id,
            epoch = req.generation_id_or_member_epoch,
            member_epoch,
            refused = stale.len(),
            "offset commit with an older member epoch"
        );
    }
    if let (false, CommitScope::Only { member_epoch, .. }) = (stale.is_empty(), &scope) {
        tracing::info!(
            group,
            member = %req.member_id,
            epoch = req.generation_id_or_member_epoch,
            member_epoch,
            partitions = ?stale,
            "offset commit refused for partitions not assigned to the member at its epoch"
        );
    }
    let stored = if entries.is_empty() {
        None
    } else {
        let broker = std::sync::Arc::clone(b);
        let g = group.clone();
        match blocking(move || broker.groups.commit(&g, entries)).await? {
            Ok(()) => None,
            Err(e) => {
                error!(group, error = %e, "offset commit failed");
                Some(Code::KafkaStorageError)
            }
        }
    };
    Ok(OffsetCommitResponse::default().with_topics(
        results
            .into_iter()
            .map(|(t, parts)| {
                t.with_partitions(
                    parts
                        .into_iter()
                        .map(|(i, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(i)
                                .with_error_code(code.or(stored).map_or(0, |c| c.code()))
                        })
                        .collect(),
                )
            })
            .collect(),
    ))
}
