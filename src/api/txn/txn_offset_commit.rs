//! TxnOffsetCommit: a consumer's offsets written as part of a transaction. The group's
//! `__consumer_offsets` partition must be in the transaction (AddOffsetsToTxn first; from
//! v5, transaction version 2, it is added here). The offsets are written to the log at once
//! but stay invisible to OffsetFetch until the transaction's COMMIT marker. From v3 the
//! member and generation are checked as for OffsetCommit, so a zombie of an old generation
//! cannot commit (KIP-447).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use tracing::error;

use super::{fenced_for, offsets_partition};
use crate::api::{blocking, ApiError, Code, Ctx};
use crate::group::offsets::{CommittedOffset, OFFSET_METADATA_MAX_BYTES};
use crate::log::partition::now_ms;
use crate::security::acl::Operation;

/// First version of transaction version 2 (the offsets partition is added implicitly).
const TV2_VERSION: i16 = 5;
/// First version that carries the member and generation.
const MEMBER_VERSION: i16 = 3;

/// Handle TxnOffsetCommit.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, ApiError> {
    let b = ctx.broker;
    let v = hdr.request_api_version;
    let group = req.group_id.0.to_string();
    let pid = req.producer_id.0;
    let epoch = req.producer_epoch;
    // The whole request's fate: group and member checks, then the transaction's.
    // WRITE on the transactional id, READ on the group (each fails the whole request),
    // then READ on each topic, as Kafka checks.
    let mut refused: Option<Code> =
        if !ctx.authorize_txn_id(Operation::Write, req.transactional_id.0.as_str()) {
            Some(Code::TransactionalIdAuthorizationFailed)
        } else if !ctx.authorize_group(Operation::Read, &group) {
            Some(Code::GroupAuthorizationFailed)
        } else if group.is_empty() {
            Some(Code::InvalidGroupId)
        } else if v >= MEMBER_VERSION && (req.generation_id >= 0 || !req.member_id.is_empty()) {
            b.groups
                .check_txn_commit(
                    &group,
                    req.member_id.as_str(),
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                )
                .err()
        } else {
            None
        };
    let whole_request = matches!(
        refused,
        Some(Code::TransactionalIdAuthorizationFailed | Code::GroupAuthorizationFailed)
    );
    let allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| whole_request || ctx.authorize_topic(Operation::Read, t.name.0.as_str()))
        .collect();
    let mut guard = None;
    // Kafka commits the authorized topics' offsets and skips the coordinator when there
    // are none.
    if refused.is_none() && (allowed.is_empty() || allowed.iter().any(|a| *a)) {
        match b
            .txns
            .begin_write(
                req.transactional_id.0.as_str(),
                pid,
                epoch,
                &[offsets_partition(&group)],
                v >= TV2_VERSION,
            )
            .await
        {
            Ok((g, codes)) => {
                refused = codes.into_iter().flatten().next().map(|c| {
                    // Kafka: a transaction that never added the offsets partition.
                    if v >= TV2_VERSION {
                        c
                    } else {
                        Code::InvalidTxnState
                    }
                });
                guard = Some(g);
            }
            Err(c) => refused = Some(fenced_for(c, v, 2)),
        }
    }
    let now = now_ms();
    let mut entries = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for (t, topic_ok) in req.topics.into_iter().zip(allowed) {
        let topic = b.logs.topic(t.name.0.as_str());
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
        topics.push((t.name, parts));
    }
    let stored = if entries.is_empty() {
        None
    } else {
        let broker = std::sync::Arc::clone(b);
        let g = group.clone();
        match blocking(move || broker.groups.offsets.commit_txn(&g, pid, epoch, entries)).await? {
            Ok(()) => None,
            Err(e) => {
                error!(group, error = %e, "transactional offset commit failed");
                Some(Code::KafkaStorageError)
            }
        }
    };
    drop(guard);
    Ok(TxnOffsetCommitResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, parts)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(i, code)| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(i)
                                    .with_error_code(code.or(stored).map_or(0, |c| c.code()))
                            })
                            .collect(),
                    )
            })
            .collect(),
    ))
}
