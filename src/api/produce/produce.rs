//! Produce: refuse internal topics, validate each partition's batches (headers, CRC, and
//! every record: `log::validate`), assign offsets, append, and answer per partition, with
//! KIP-467 record errors when single records were refused. All appends of one request run in
//! a single trip to the blocking pool; the records are stored exactly as the producer sent
//! them (any codec), only the base offset (and, for LogAppendTime topics, the timestamp)
//! patched.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use tracing::{error, warn};

use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::log::batch::BatchView;
use crate::log::validate::Invalid;
use crate::log::{is_internal_topic, AppendError, AppendInfo, Error as LogError, Partition};
use crate::metrics::TopicDelta;
use crate::security::acl::Operation;

/// First Produce version that names topics by id.
const TOPIC_ID_VERSION: i16 = 13;
/// First Produce version of transaction version 2 clients: the first write to a partition
/// adds it to the transaction (KIP-890).
const IMPLICIT_ADD_VERSION: i16 = 12;

/// KIP-1050: TRANSACTION_ABORTABLE goes to clients that know it (Produce v11+); older ones
/// get INVALID_TXN_STATE, as before it existed.
fn transaction_abortable_for(code: Code, version: i16) -> Code {
    if code == Code::TransactionAbortable && version < 11 {
        Code::InvalidTxnState
    } else {
        code
    }
}

fn error_code(e: &AppendError) -> Code {
    match e {
        AppendError::Corrupt(LogError::UnsupportedMagic(_)) => Code::InvalidRecord,
        AppendError::Corrupt(_) => Code::CorruptMessage,
        AppendError::TooLarge { .. } => Code::MessageTooLarge,
        AppendError::ListTooLarge(_) => Code::RecordListTooLarge,
        AppendError::Invalid(Invalid::TooLarge(_)) => Code::MessageTooLarge,
        AppendError::Invalid(i) if i.is_corrupt() => Code::CorruptMessage,
        AppendError::Invalid(_) => Code::InvalidRecord,
        // Kafka's LogValidator: INVALID_TIMESTAMP if any refused record has a bad
        // timestamp, INVALID_RECORD otherwise.
        AppendError::Records(faults) if faults.any_timestamp() => Code::InvalidTimestamp,
        AppendError::Records(_) => Code::InvalidRecord,
        AppendError::Fenced => Code::InvalidProducerEpoch,
        AppendError::InvalidTxnState => Code::InvalidTxnState,
        AppendError::OutOfOrder(_) => Code::OutOfOrderSequenceNumber,
        AppendError::Storage(_) => Code::KafkaStorageError,
    }
}

enum Slot {
    Done(PartitionProduceResponse),
    Pending(usize, i32),
}

/// Handle Produce.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: ProduceRequest,
) -> Result<ProduceResponse, ApiError> {
    let logs = &ctx.broker.logs;
    let by_id = hdr.request_api_version >= TOPIC_ID_VERSION;
    let refuse_all: Option<(Code, &str)> = if !matches!(req.acks, -1..=1) {
        Some((Code::InvalidRequiredAcks, "acks must be -1, 0 or 1"))
    } else if req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !ctx.authorize_txn_id(Operation::Write, id.0.as_str()))
    {
        // Kafka answers every partition with this when the producer may not write for its
        // transactional id.
        Some((Code::TransactionalIdAuthorizationFailed, "not authorized"))
    } else {
        None
    };
    let mut jobs: Vec<(Arc<Partition>, Bytes)> = Vec::new();
    let mut layout: Vec<(TopicProduceResponse, Vec<Slot>)> =
        Vec::with_capacity(req.topic_data.len());
    for t in req.topic_data {
        let topic = if by_id {
            logs.topic_by_id(&t.topic_id)
        } else {
            logs.topic(t.name.0.as_str())
        };
        let unknown = if by_id {
            Code::UnknownTopicId
        } else {
            Code::UnknownTopicOrPartition
        };
        // Only the broker writes internal topics (Kafka's ReplicaManager refuses client
        // appends to them with INVALID_TOPIC_EXCEPTION, by name, whether or not they exist).
        let internal: Option<String> = if by_id {
            topic
                .as_ref()
                .filter(|t| t.is_internal())
                .map(|t| t.name.to_string())
        } else {
            is_internal_topic(t.name.0.as_str()).then(|| t.name.0.to_string())
        };
        // WRITE on the topic, checked before existence as Kafka does (a topic id that names
        // no topic has no name to check).
        let acl_name: Option<&str> = if by_id {
            topic.as_ref().map(|t| &*t.name)
        } else {
            Some(t.name.0.as_str())
        };
        let unauthorized = acl_name.is_some_and(|n| !ctx.authorize_topic(Operation::Write, n));
        let mut slots = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let fail = |code: Code, msg: Option<&str>| {
                Slot::Done(
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(code.code())
                        .with_base_offset(-1)
                        .with_error_message(msg.map(sb)),
                )
            };
            if let Some((code, msg)) = refuse_all {
                slots.push(fail(code, Some(msg)));
                continue;
            }
            if unauthorized {
                slots.push(fail(Code::TopicAuthorizationFailed, None));
                continue;
            }
            if let Some(name) = &internal {
                let msg = format!("Cannot append to internal topic {name}");
                slots.push(fail(Code::InvalidTopicException, Some(&msg)));
                continue;
            }
            let part = topic.as_ref().and_then(|t| {
                usize::try_from(p.index)
                    .ok()
                    .and_then(|i| t.partitions.get(i))
            });
            let Some(part) = part else {
                slots.push(fail(unknown, None));
                continue;
            };
            let Some(records) = p.records else {
                slots.push(fail(Code::InvalidRecord, Some("no records")));
                continue;
            };
            slots.push(Slot::Pending(jobs.len(), p.index));
            jobs.push((Arc::clone(part), records));
        }
        layout.push((
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id),
            slots,
        ));
    }
    // A transactional write: the coordinator checks the producer and that each partition
    // is in the transaction (or, from Produce v12 with transaction version 2, adds it), and
    // the transaction cannot end until these appends are done.
    let mut refused: Vec<Option<(Code, String)>> = vec![None; jobs.len()];
    let mut txn_guard = None;
    if let Some(id) = req.transactional_id.as_ref().filter(|_| !jobs.is_empty()) {
        let parts: Vec<(String, i32)> = jobs
            .iter()
            .map(|(p, _)| (p.topic().to_string(), p.index()))
            .collect();
        let first = jobs
            .first()
            .and_then(|(_, r)| BatchView::split_first(r).ok().flatten())
            .map(|(b, _)| (b.producer_id(), b.producer_epoch(), b.is_transactional()));
        match first {
            Some((pid, epoch, true)) => {
                let add = hdr.request_api_version >= IMPLICIT_ADD_VERSION;
                match ctx
                    .broker
                    .txns
                    .begin_write(id.0.as_str(), pid, epoch, &parts, add)
                    .await
                {
                    Ok((guard, codes)) => {
                        for (slot, code) in refused.iter_mut().zip(codes) {
                            *slot = code.map(|c| {
                                (
                                    transaction_abortable_for(c, hdr.request_api_version),
                                    "the partition is not in the transaction".to_string(),
                                )
                            });
                        }
                        txn_guard = Some(guard);
                    }
                    Err(code) => {
                        warn!(transactional_id = %id.0, error = %code, "transactional produce refused");
                        let code = match code {
                            // Kafka's produce answers a fenced epoch this way.
                            Code::ProducerFenced => Code::InvalidProducerEpoch,
                            c => transaction_abortable_for(c, hdr.request_api_version),
                        };
                        refused = vec![Some((code, code.to_string())); jobs.len()];
                    }
                }
            }
            _ => {
                let msg =
                    "a produce request with a transactional id must carry transactional batches";
                refused = vec![Some((Code::InvalidRecord, msg.to_string())); jobs.len()];
            }
        }
    }
    // (partition, batch bytes) of each append, for BytesInPerSec and MessagesInPerSec.
    let sizes: Vec<(Arc<Partition>, u64)> = jobs
        .iter()
        .map(|(p, r)| (Arc::clone(p), r.len() as u64))
        .collect();
    let results: Vec<Option<Result<AppendInfo, AppendError>>> = if jobs.is_empty() {
        Vec::new()
    } else {
        let skip: Vec<bool> = refused.iter().map(Option::is_some).collect();
        blocking(move || {
            jobs.iter()
                .zip(skip)
                .map(|((p, r), skip)| (!skip).then(|| p.append(r)))
                .collect()
        })
        .await?
    };
    drop(txn_guard);
    record_traffic(ctx, &sizes, &results);
    let mut responses = Vec::with_capacity(layout.len());
    for (topic_resp, slots) in layout {
        let mut parts = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Done(r) => parts.push(r),
                Slot::Pending(j, index) => {
                    let resp = match results.get(j) {
                        Some(None) => {
                            let (code, msg) = refused
                                .get(j)
                                .cloned()
                                .flatten()
                                .unwrap_or((Code::UnknownServerError, String::new()));
                            PartitionProduceResponse::default()
                                .with_error_code(code.code())
                                .with_base_offset(-1)
                                .with_error_message(Some(sb(msg)))
                        }
                        Some(Some(Ok(info))) => PartitionProduceResponse::default()
                            .with_base_offset(info.base_offset)
                            .with_log_append_time_ms(info.log_append_time)
                            .with_log_start_offset(info.log_start_offset),
                        Some(Some(Err(e))) => {
                            let code = error_code(e);
                            if matches!(e, AppendError::Storage(_)) {
                                error!(error = %e, "append failed");
                            } else {
                                warn!(topic = %topic_resp.name.0, error = %e, "produce refused");
                            }
                            // KIP-467: which records of the batch were refused, so clients
                            // fail those and report the rest as collateral.
                            let record_errors = match e {
                                AppendError::Records(faults) => faults
                                    .listed
                                    .iter()
                                    .map(|(index, fault)| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(*index)
                                            .with_batch_index_error_message(Some(sb(
                                                fault.to_string()
                                            )))
                                    })
                                    .collect(),
                                _ => Vec::new(),
                            };
                            PartitionProduceResponse::default()
                                .with_error_code(code.code())
                                .with_base_offset(-1)
                                .with_error_message(Some(sb(e.to_string())))
                                .with_record_errors(record_errors)
                        }
                        None => PartitionProduceResponse::default()
                            .with_error_code(Code::UnknownServerError.code())
                            .with_base_offset(-1),
                    };
                    parts.push(resp.with_index(index));
                }
            }
        }
        responses.push((topic_resp, parts));
    }
    Ok(ProduceResponse::default().with_responses(
        responses
            .into_iter()
            .map(|(t, parts)| t.with_partition_responses(parts))
            .collect(),
    ))
}

/// Counts each partition's append in the topic's traffic counters, as Kafka's
/// BrokerTopicMetrics: records and bytes of the batches appended (a retried duplicate adds
/// nothing), and appends asked for and refused.
fn record_traffic(
    ctx: &Ctx<'_>,
    sizes: &[(Arc<Partition>, u64)],
    results: &[Option<Result<AppendInfo, AppendError>>],
) {
    if sizes.is_empty() {
        return;
    }
    let deltas: Vec<(&str, TopicDelta)> = sizes
        .iter()
        .zip(results.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|((p, bytes), result)| {
            let mut d = TopicDelta {
                produce_requests: 1,
                ..TopicDelta::default()
            };
            match result {
                Some(Some(Ok(info))) if !info.duplicate => {
                    d.bytes_in = *bytes;
                    d.messages_in =
                        u64::try_from(info.last_offset - info.base_offset + 1).unwrap_or(0);
                }
                Some(Some(Ok(_))) => {}
                _ => d.failed_produce_requests = 1,
            }
            (p.topic(), d)
        })
        .collect();
    ctx.broker.metrics.topics.record(&deltas);
}
