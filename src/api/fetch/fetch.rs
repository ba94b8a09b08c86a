//! Fetch: serve stored batches as they are, from the batch containing the requested offset,
//! within `max_bytes` / per-partition limits; long-poll until `min_bytes` are there or
//! `max_wait_ms` passes, woken by appends. Incremental fetch sessions (KIP-227) decide which
//! partitions are read and which go into the answer (`session.rs`).
//!
//! Large record ranges are not read here: the response carries placeholders and the
//! connection sends the segment file's bytes straight to the socket (`splice`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ProducerId, RequestHeader, TopicName,
};
use tokio::time::Instant;
use tracing::error;
use uuid::Uuid;

use super::session::{
    Meta, PartitionReq, PartitionResult, Plan, TopicKey, NO_SESSION, TOPIC_ID_VERSION,
};
use super::{check_leader_epoch, partition_of};
use crate::api::splice::{Splices, MIN_SPLICE};
use crate::api::{blocking, ApiError, Code, Ctx};
use crate::log::{FileRegion, Partition, ReadError, Topic};
use crate::metrics::TopicDelta;
use crate::security::acl::Operation;

/// Kafka caps how long a fetch may wait; so do we (it also bounds shutdown).
const MAX_WAIT_CAP_MS: u64 = 30_000;

struct Want {
    partition: i32,
    target: Result<Arc<Partition>, Code>,
    offset: i64,
    max_bytes: usize,
}

/// Records for one partition: small ranges in memory, large ones left in the file.
#[derive(Clone)]
enum Records {
    Memory(Bytes),
    File(FileRegion),
}

impl Records {
    fn len(&self) -> usize {
        match self {
            Records::Memory(b) => b.len(),
            Records::File(r) => r.len,
        }
    }
}

#[derive(Clone)]
struct Got {
    code: Code,
    ok: bool,
    hw: i64,
    lso: i64,
    log_start: i64,
    records: Records,
    /// read_committed: aborted transactions overlapping the records, (producer, first offset).
    aborted: Vec<(i64, i64)>,
}

impl Got {
    fn failed(code: Code, hw: i64, log_start: i64) -> Self {
        Got {
            code,
            ok: false,
            hw,
            lso: hw,
            log_start,
            records: Records::Memory(Bytes::new()),
            aborted: Vec::new(),
        }
    }
}

/// How the answer is shaped, from the request's session fields.
enum Mode {
    /// Every partition read is answered; session id 0.
    Sessionless,
    /// Every partition read is answered; the answer may open a session.
    Full,
    /// Only the session's changed partitions are answered.
    Incremental { id: i32, epoch: i32 },
}

/// Handle Fetch. The response's large record ranges are placeholders for the returned
/// file regions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: FetchRequest,
) -> Result<(FetchResponse, Splices), ApiError> {
    let logs = &ctx.broker.logs;
    let sessions = &ctx.broker.fetch_sessions;
    let v = hdr.request_api_version;
    let by_id = v >= TOPIC_ID_VERSION;
    let key = |name: TopicName, id: Uuid| {
        if by_id {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name)
        }
    };
    let mut listed = Vec::new();
    for t in req.topics {
        let topic = key(t.topic, t.topic_id);
        for p in t.partitions {
            listed.push(PartitionReq {
                topic: topic.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                leader_epoch: p.current_leader_epoch,
            });
        }
    }
    let mut forgotten = Vec::new();
    for t in req.forgotten_topics_data {
        let topic = key(t.topic, t.topic_id);
        forgotten.extend(t.partitions.iter().map(|&p| (topic.clone(), p)));
    }
    let meta = Meta {
        version: v,
        session_id: req.session_id,
        session_epoch: req.session_epoch,
    };
    let (parts, mode) = match sessions.plan(meta, listed, &forgotten, sessions.now_ms()) {
        Plan::Error(code) => {
            return Ok((
                FetchResponse::default()
                    .with_error_code(code.code())
                    .with_session_id(NO_SESSION),
                Splices::default(),
            ))
        }
        Plan::Sessionless(p) => (p, Mode::Sessionless),
        Plan::Full(p) => (p, Mode::Full),
        Plan::Incremental {
            id,
            epoch,
            partitions,
        } => (partitions, Mode::Incremental { id, epoch }),
    };
    let read_committed = req.isolation_level == 1;
    let unknown = if by_id {
        Code::UnknownTopicId
    } else {
        Code::UnknownTopicOrPartition
    };
    let mut wants = Vec::with_capacity(parts.len());
    // A session's partitions come topic by topic: look each topic up once.
    // READ on the topic is asked once per topic too; an unauthorized topic's partitions
    // get TOPIC_AUTHORIZATION_FAILED whether or not it exists, as in Kafka (a topic id that
    // names no topic stays UNKNOWN_TOPIC_ID: there is no name to check).
    let mut last: Option<(&TopicKey, Option<Arc<Topic>>, bool)> = None;
    for p in &parts {
        let (topic, allowed) = match &last {
            Some((k, t, ok)) if *k == &p.topic => (t.clone(), *ok),
            _ => {
                let t = match &p.topic {
                    TopicKey::Id(id) => logs.topic_by_id(id),
                    TopicKey::Name(name) => logs.topic(name.0.as_str()),
                };
                let name = match &p.topic {
                    TopicKey::Id(_) => t.as_ref().map(|t| &*t.name),
                    TopicKey::Name(name) => Some(name.0.as_str()),
                };
                let ok = name.is_none_or(|n| ctx.authorize_topic(Operation::Read, n));
                last = Some((&p.topic, t.clone(), ok));
                (t, ok)
            }
        };
        let target = if allowed {
            check_leader_epoch(p.leader_epoch)
                .and_then(|()| partition_of(topic.as_deref(), p.partition, unknown))
        } else {
            Err(Code::TopicAuthorizationFailed)
        };
        wants.push(Want {
            partition: p.partition,
            target,
            offset: p.fetch_offset,
            max_bytes: usize::try_from(p.max_bytes).unwrap_or(0),
        });
    }
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(usize::MAX);
    let wait = Duration::from_millis(
        u64::try_from(req.max_wait_ms)
            .unwrap_or(0)
            .min(MAX_WAIT_CAP_MS),
    );
    let deadline = Instant::now() + wait;
    let wants = Arc::new(wants);
    let token = ctx.broker.shutdown.clone();
    let got = loop {
        // Register for wake-ups before looking, so an append between the look and the wait
        // is not missed. An incremental fetch waits on every partition of its session, not
        // only the ones it listed.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = wants
            .iter()
            .filter_map(|w| w.target.as_ref().ok())
            .map(|p| Box::pin(p.notify.notified()))
            .collect();
        for w in waits.iter_mut() {
            w.as_mut().enable();
        }
        // read_committed readers see nothing past the last stable offset, so only its move
        // (a marker, or the high watermark with no transaction open) is news to them.
        let anything = wants.iter().any(|w| match &w.target {
            Ok(p) if read_committed => w.offset != p.last_stable_offset(),
            Ok(p) => w.offset != p.high_watermark(),
            Err(_) => true,
        });
        let timed_out = Instant::now() >= deadline;
        if anything || timed_out {
            let w = Arc::clone(&wants);
            let got = blocking(move || read_all(&w, max_bytes, read_committed)).await?;
            let total: usize = got.iter().map(|g| g.records.len()).sum();
            let errors = got.iter().any(|g| !g.ok);
            if total >= min_bytes.max(1) || errors || timed_out || min_bytes == 0 {
                break got;
            }
        }
        tokio::select! {
            _ = wait_any(&mut waits) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = token.cancelled() => {
                let w = Arc::clone(&wants);
                break blocking(move || read_all(&w, max_bytes, read_committed)).await?;
            }
        }
    };
    let results: Vec<PartitionResult> = got
        .iter()
        .map(|g| PartitionResult {
            records: g.records.len(),
            error: !g.ok,
            high_watermark: g.hw,
            log_start: g.log_start,
            last_stable: g.lso,
        })
        .collect();
    let (session_id, keep) = match mode {
        Mode::Sessionless => (NO_SESSION, None),
        Mode::Full => {
            let id = sessions.finish_full(by_id, &parts, &results, sessions.now_ms());
            (id, None)
        }
        Mode::Incremental { id, epoch } => {
            match sessions.finish_incremental(id, epoch, &parts, &results) {
                Ok(keep) => (id, Some(keep)),
                // As Kafka: a duplicate request that lost the race names the session; the
                // records read are not sent, and the client fetches them again.
                Err(code) => {
                    let id = if code == Code::InvalidFetchSessionEpoch {
                        id
                    } else {
                        NO_SESSION
                    };
                    return Ok((
                        FetchResponse::default()
                            .with_error_code(code.code())
                            .with_session_id(id),
                        Splices::default(),
                    ));
                }
            }
        }
    };
    let mut splices = Splices::default();
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut last_topic: Option<&TopicKey> = None;
    // BytesOutPerSec and the fetch request counts per topic (Kafka's BrokerTopicMetrics).
    let mut traffic: Vec<(&str, TopicDelta)> = Vec::new();
    for (i, ((p, w), g)) in parts.iter().zip(wants.iter()).zip(got).enumerate() {
        if keep
            .as_ref()
            .is_some_and(|k| !k.get(i).copied().unwrap_or(true))
        {
            continue;
        }
        if let Ok(part) = &w.target {
            let delta = TopicDelta {
                bytes_out: g.records.len() as u64,
                fetch_requests: 1,
                failed_fetch_requests: u64::from(!g.ok),
                ..TopicDelta::default()
            };
            traffic.push((part.topic(), delta));
        }
        let records = match g.records {
            Records::Memory(b) => b,
            Records::File(region) => match splices.add(region.clone()) {
                Some(placeholder) => placeholder,
                None => {
                    let dir = w.target.as_ref().ok().map(|p| p.dir().to_path_buf());
                    blocking(move || region.load())
                        .await?
                        .map_err(|e| ApiError::Internal(format!("read of {dir:?} failed: {e}")))?
                }
            },
        };
        let pd = PartitionData::default()
            .with_partition_index(w.partition)
            .with_error_code(if g.ok { 0 } else { g.code.code() })
            .with_high_watermark(g.hw)
            .with_last_stable_offset(g.lso)
            .with_log_start_offset(g.log_start)
            .with_preferred_read_replica(BrokerId(-1))
            .with_aborted_transactions(read_committed.then(|| {
                g.aborted
                    .iter()
                    .map(|&(pid, first)| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(pid))
                            .with_first_offset(first)
                    })
                    .collect()
            }))
            .with_records(Some(records));
        // Consecutive partitions of one topic share a topic entry, as Kafka's
        // `FetchResponse.of` groups them.
        if last_topic != Some(&p.topic) {
            topics.push(match &p.topic {
                TopicKey::Id(id) => FetchableTopicResponse::default().with_topic_id(*id),
                TopicKey::Name(name) => FetchableTopicResponse::default().with_topic(name.clone()),
            });
            last_topic = Some(&p.topic);
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(pd);
        }
    }
    ctx.broker.metrics.topics.record(&traffic);
    Ok((
        FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(topics),
        splices,
    ))
}

/// Read every wanted partition within the response budget. The first partition with data
/// gets at least one whole batch even if it exceeds the budget (KIP-74). Ranges of
/// `MIN_SPLICE` bytes or more stay in the file. read_committed reads stop at the last
/// stable offset and list the aborted transactions their records overlap.
fn read_all(wants: &[Want], max_bytes: usize, read_committed: bool) -> Vec<Got> {
    let mut remaining = max_bytes;
    let mut any = false;
    wants
        .iter()
        .map(|w| {
            let p = match &w.target {
                Ok(p) => p,
                Err(code) => return Got::failed(*code, -1, -1),
            };
            let limit = w.max_bytes.min(remaining);
            if any && limit == 0 {
                let (log_start, _, hw, _) = p.offsets();
                return Got {
                    code: Code::UnknownServerError,
                    ok: true,
                    hw,
                    lso: p.last_stable_offset(),
                    log_start,
                    records: Records::Memory(Bytes::new()),
                    aborted: Vec::new(),
                };
            }
            let region = if read_committed {
                p.read_region_committed(w.offset, limit)
            } else {
                p.read_region(w.offset, limit)
            };
            let read = region.and_then(|mut d| {
                let records = match d.region.take() {
                    None => Records::Memory(Bytes::new()),
                    Some(r) if r.len >= MIN_SPLICE => Records::File(r),
                    Some(r) => Records::Memory(
                        r.load()
                            .map_err(|e| ReadError::Storage(crate::log::Error::io(p.dir(), e)))?,
                    ),
                };
                Ok((d, records))
            });
            match read {
                Ok((d, records)) => {
                    remaining = remaining.saturating_sub(records.len());
                    any |= records.len() > 0;
                    Got {
                        code: Code::UnknownServerError,
                        ok: true,
                        hw: d.high_watermark,
                        lso: d.last_stable_offset,
                        log_start: d.log_start_offset,
                        records,
                        aborted: d
                            .aborted
                            .iter()
                            .map(|a| (a.producer_id, a.first_offset))
                            .collect(),
                    }
                }
                Err(ReadError::OutOfRange {
                    log_start,
                    high_watermark,
                    ..
                }) => Got::failed(Code::OffsetOutOfRange, high_watermark, log_start),
                Err(ReadError::Storage(e)) => {
                    error!(partition = ?p, error = %e, "read failed");
                    Got::failed(Code::KafkaStorageError, -1, -1)
                }
            }
        })
        .collect()
}

/// Resolve when any of the registered notifications fires.
async fn wait_any(waits: &mut [Pin<Box<tokio::sync::futures::Notified<'_>>>]) {
    if waits.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
