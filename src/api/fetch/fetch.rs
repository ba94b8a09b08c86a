//! Fetch: serve stored batches as they are, from the batch containing the requested offset,
//! within `max_bytes` / per-partition limits; long-poll until `min_bytes` are there or
//! `max_wait_ms` passes, woken by appends. No fetch sessions are created (session id 0 in
//! the answer), which every client accepts by sending full fetches.
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
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, RequestHeader};
use tokio::time::Instant;
use tracing::error;

use super::{check_leader_epoch, partition_of};
use crate::api::splice::{Splices, MIN_SPLICE};
use crate::api::{blocking, ApiError, Code, Ctx};
use crate::log::{FileRegion, Partition, ReadError};

/// First Fetch version that names topics by id.
const TOPIC_ID_VERSION: i16 = 13;
/// Kafka caps how long a fetch may wait; so do we (it also bounds shutdown).
const MAX_WAIT_CAP_MS: u64 = 30_000;

struct Want {
    topic: usize,
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

/// Handle Fetch. The response's large record ranges are placeholders for the returned
/// file regions.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: FetchRequest,
) -> Result<(FetchResponse, Splices), ApiError> {
    let logs = &ctx.broker.logs;
    let v = hdr.request_api_version;
    let by_id = v >= TOPIC_ID_VERSION;
    if req.session_epoch > 0 || (req.session_id != 0 && req.session_epoch != -1) {
        // We never hand out sessions, so an incremental fetch names one we do not have.
        return Ok((
            FetchResponse::default().with_error_code(Code::FetchSessionIdNotFound.code()),
            Splices::default(),
        ));
    }
    let read_committed = req.isolation_level == 1;
    let mut wants = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = if by_id {
            logs.topic_by_id(&t.topic_id)
        } else {
            logs.topic(t.topic.0.as_str())
        };
        let unknown = if by_id {
            Code::UnknownTopicId
        } else {
            Code::UnknownTopicOrPartition
        };
        for p in &t.partitions {
            let target = check_leader_epoch(p.current_leader_epoch)
                .and_then(|()| partition_of(topic.as_deref(), p.partition, unknown));
            wants.push(Want {
                topic: ti,
                partition: p.partition,
                target,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            });
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_topic_id(t.topic_id),
        );
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
        let parts: Vec<&Arc<Partition>> = wants
            .iter()
            .filter_map(|w| w.target.as_ref().ok())
            .collect();
        // Register for wake-ups before looking, so an append between the look and the wait
        // is not missed.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = parts
            .iter()
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
    let mut splices = Splices::default();
    for (w, g) in wants.iter().zip(got) {
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
        if let Some(t) = topics.get_mut(w.topic) {
            t.partitions.push(pd);
        }
    }
    Ok((
        FetchResponse::default()
            .with_session_id(0)
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
