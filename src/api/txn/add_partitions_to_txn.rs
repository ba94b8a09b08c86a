//! AddPartitionsToTxn: v0-3 from producers (one transaction), v4+ batched (one entry per
//! transaction, each either adding its partitions or, with `verify_only`, checking them as
//! Kafka's brokers ask their coordinator before a transactional append). Unknown partitions
//! get UNKNOWN_TOPIC_OR_PARTITION and the rest of their transaction OPERATION_NOT_ATTEMPTED,
//! as Kafka answers; nothing is added then.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, RequestHeader,
    TransactionalId,
};

use super::fenced_for;
use crate::api::{ApiError, Code, Ctx};
use crate::log::is_internal_topic;
use crate::security::acl::Operation;

/// First version that batches transactions.
const BATCHED_VERSION: i16 = 4;

/// Handle AddPartitionsToTxn.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, ApiError> {
    let v = hdr.request_api_version;
    // Batched versions come from brokers only (Kafka: CLUSTER_ACTION on the cluster).
    if v >= BATCHED_VERSION && !ctx.authorize_cluster(Operation::ClusterAction) {
        return Ok(AddPartitionsToTxnResponse::default()
            .with_error_code(Code::ClusterAuthorizationFailed.code()));
    }
    if v < BATCHED_VERSION {
        let result = one(
            ctx,
            v,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return Ok(AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(result.topic_results));
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        results.push(
            one(
                ctx,
                v,
                &t.transactional_id,
                t.producer_id,
                t.producer_epoch,
                t.verify_only,
                &t.topics,
            )
            .await,
        );
    }
    Ok(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}

async fn one(
    ctx: &Ctx<'_>,
    version: i16,
    id: &TransactionalId,
    pid: ProducerId,
    epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> AddPartitionsToTxnResult {
    let logs = &ctx.broker.logs;
    let mut parts = Vec::new();
    let mut unknown = Vec::new();
    let mut unauthorized = Vec::new();
    // Producers (v0-3) need WRITE on the transactional id (else every partition gets
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED,
    // the rest OPERATION_NOT_ATTEMPTED), as Kafka checks.
    let client = version < BATCHED_VERSION;
    let id_ok = !client || ctx.authorize_txn_id(Operation::Write, id.0.as_str());
    for t in topics {
        let topic = logs.topic(t.name.0.as_str());
        let topic_ok = !client || ctx.authorize_topic(Operation::Write, t.name.0.as_str());
        for &p in &t.partitions {
            if !topic_ok {
                unauthorized.push((t.name.0.to_string(), p));
            }
            let known = !is_internal_topic(t.name.0.as_str())
                && topic
                    .as_ref()
                    .is_some_and(|tp| usize::try_from(p).is_ok_and(|i| i < tp.partitions.len()));
            if !known {
                unknown.push((t.name.0.to_string(), p));
            }
            parts.push((t.name.0.to_string(), p));
        }
    }
    let codes: Vec<Option<Code>> = if !id_ok {
        vec![Some(Code::TransactionalIdAuthorizationFailed); parts.len()]
    } else if !unknown.is_empty() || !unauthorized.is_empty() {
        parts
            .iter()
            .map(|p| {
                Some(if unauthorized.contains(p) {
                    Code::TopicAuthorizationFailed
                } else if unknown.contains(p) {
                    Code::UnknownTopicOrPartition
                } else {
                    Code::OperationNotAttempted
                })
            })
            .collect()
    } else if verify_only {
        match ctx
            .broker
            .txns
            .verify_partitions(id.0.as_str(), pid.0, epoch, &parts)
            .await
        {
            Ok(c) => c,
            Err(c) => vec![Some(c); parts.len()],
        }
    } else {
        let r = ctx
            .broker
            .txns
            .add_partitions(id.0.as_str(), pid.0, epoch, &parts)
            .await
            .err()
            .map(|c| fenced_for(c, version, 2));
        vec![r; parts.len()]
    };
    let mut topic_results: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, p), code) in parts.into_iter().zip(codes) {
        let r = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(code.map_or(0, |c| c.code()));
        match topic_results
            .iter_mut()
            .find(|t| t.name.0.as_str() == topic)
        {
            Some(t) => t.results_by_partition.push(r),
            None => topic_results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(crate::api::topic_name(&topic))
                    .with_results_by_partition(vec![r]),
            ),
        }
    }
    AddPartitionsToTxnResult::default()
        .with_transactional_id(id.clone())
        .with_topic_results(topic_results)
}
