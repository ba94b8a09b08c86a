//! Consuming: Fetch (read records from an offset, long-polling up to `max_wait`) and
//! ListOffsets (earliest, latest, or first offset at a timestamp).
//!
//! A fetch returns whole record batches, so records below the requested offset are dropped
//! here. Control batches (transaction markers) are never returned, at either isolation
//! level. Batches are walked by their `lastOffsetDelta`, not by their last record, so
//! offsets removed by compaction (even a whole batch's worth), markers and aborted batches
//! never stall the caller: [`FetchResult::next_offset`] is where to fetch next.
//!
//! Isolation ([`IsolationLevel`]): READ_UNCOMMITTED (Kafka's consumer default) returns every
//! data record. READ_COMMITTED sends `isolation_level` 1, so the broker returns data only up
//! to the last stable offset plus the list of aborted transactions overlapping it; the
//! batches of those transactions are dropped here with the Java consumer's rule
//! (`CompletedFetch.nextFetchedRecord`): aborted transactions are taken from a min-heap by
//! first offset as the walk reaches them, a transactional batch of a producer with an
//! aborted transaction taken is skipped, and that producer's ABORT marker ends the skipping.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest};
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use crate::client::{millis_i32, topic_name, Client};
use crate::config::IsolationLevel;
use crate::error::{At, Error, Result};
use crate::produce::Header;

/// Record bytes above which decoding (and decompression) runs on the blocking pool.
const BLOCKING_DECODE_BYTES: usize = 256 * 1024;

/// Byte positions in a record batch header (magic 2), from Kafka's `DefaultRecordBatch`:
/// baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12, magic i8 @16,
/// crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27,
/// maxTimestamp i64 @35. `kafka-protocol` decodes the batch; these few fields are read here
/// because its decoder does not expose them (lastOffsetDelta, maxTimestamp) or because the
/// batch must be delimited before it is handed over (a fetch may end in a partial batch).
mod layout {
    pub(super) const LENGTH_AT: usize = 8;
    /// Bytes before the batch body that `batchLength` does not count.
    pub(super) const LOG_OVERHEAD: usize = 12;
    pub(super) const MAGIC_AT: usize = 16;
    pub(super) const ATTRIBUTES_AT: usize = 21;
    pub(super) const LAST_OFFSET_DELTA_AT: usize = 23;
    pub(super) const MAX_TIMESTAMP_AT: usize = 35;
    pub(super) const PRODUCER_ID_AT: usize = 43;
    /// The whole magic-2 header.
    pub(super) const HEADER_LEN: usize = 61;
    pub(super) const CONTROL_FLAG: i16 = 1 << 5;
    pub(super) const LOG_APPEND_TIME_FLAG: i16 = 1 << 3;
    pub(super) const TRANSACTIONAL_FLAG: i16 = 1 << 4;
    /// Control record key `type` of an ABORT marker (`ControlRecordType.ABORT`); COMMIT is 1.
    pub(super) const ABORT_MARKER: i16 = 0;
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp in ms since the epoch (the batch's max timestamp for LogAppendTime topics,
    /// as Kafka's consumer reports).
    pub timestamp: i64,
    /// Whether `timestamp` is the create time or the log-append time.
    pub timestamp_type: TimestampType,
    /// Key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// The outcome of fetching one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<FetchedRecord>,
    /// The offset to fetch next: one past the last batch seen (including control batches
    /// and compacted-away offsets), or the requested offset when nothing came back.
    pub next_offset: i64,
    /// The partition's high watermark (offset of the next record to be written).
    pub high_watermark: i64,
    /// The partition's log start offset, -1 if the broker did not say.
    pub log_start_offset: i64,
    /// The partition's last stable offset (the first offset of the oldest open
    /// transaction, or the high watermark when none is open); -1 if the broker did not say.
    /// A READ_COMMITTED fetch returns nothing at or past it.
    pub last_stable_offset: i64,
}

/// A partition and the offset to fetch it from, for [`Client::fetch_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset wanted.
    pub offset: i64,
}

/// Which offset [`Client::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: the offset the next record will get. At READ_COMMITTED, the
    /// last stable offset instead (as Kafka answers ListOffsets with `isolation_level` 1).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            Self::Earliest => -2,
            Self::Latest => -1,
            Self::Timestamp(t) => t,
        }
    }
}

/// One complete batch in a fetch response.
struct BatchView {
    base_offset: i64,
    last_offset: i64,
    magic: i8,
    attributes: i16,
    max_timestamp: i64,
    producer_id: i64,
    bytes: Bytes,
}

impl BatchView {
    fn is_control(&self) -> bool {
        self.attributes & layout::CONTROL_FLAG != 0
    }

    fn is_transactional(&self) -> bool {
        self.attributes & layout::TRANSACTIONAL_FLAG != 0
    }

    /// Whether this is a control batch holding an ABORT marker. A control record's key is
    /// `version: i16, type: i16`; a control batch holds exactly one record.
    fn is_abort_marker(&self) -> std::result::Result<bool, String> {
        if !self.is_control() {
            return Ok(false);
        }
        let mut bytes = self.bytes.clone();
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| format!("control batch at offset {}: {e}", self.base_offset))?;
        let kind = set
            .records
            .first()
            .and_then(|r| r.key.as_ref())
            .and_then(|k| be_i16(k, 2))
            .ok_or_else(|| {
                format!(
                    "control batch at offset {} has no control record key",
                    self.base_offset
                )
            })?;
        Ok(kind == layout::ABORT_MARKER)
    }
}

/// An aborted transaction from a READ_COMMITTED fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
}

/// The Java consumer's READ_COMMITTED filter: aborted transactions ordered by first
/// offset, and the producers whose aborted transaction the walk is inside of.
struct AbortFilter {
    pending: BinaryHeap<Reverse<(i64, i64)>>,
    aborting: HashSet<i64>,
}

impl AbortFilter {
    fn new(aborted: &[AbortedTxn]) -> Self {
        Self {
            pending: aborted
                .iter()
                .map(|a| Reverse((a.first_offset, a.producer_id)))
                .collect(),
            aborting: HashSet::new(),
        }
    }

    /// Whether `batch` belongs to an aborted transaction and must be skipped. Batches
    /// without a producer id are never transactional and pass untouched.
    fn skips(&mut self, batch: &BatchView) -> std::result::Result<bool, String> {
        if batch.producer_id < 0 {
            return Ok(false);
        }
        // Every aborted transaction that started at or before this batch's last offset is
        // now open for its producer (Kafka's `consumeAbortedTransactionsUpTo`).
        while let Some(Reverse((first, pid))) = self.pending.peek().copied() {
            if first > batch.last_offset {
                break;
            }
            self.pending.pop();
            self.aborting.insert(pid);
        }
        if batch.is_abort_marker()? {
            // The producer's aborted transaction ends here; its later batches are good.
            self.aborting.remove(&batch.producer_id);
            return Ok(false);
        }
        Ok(batch.is_transactional() && self.aborting.contains(&batch.producer_id))
    }
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at.checked_add(8)?)?
        .try_into()
        .ok()
        .map(i64::from_be_bytes)
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(i32::from_be_bytes)
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    b.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(i16::from_be_bytes)
}

/// Splits a fetch's record bytes into complete batches; returns them and the size of an
/// incomplete batch at the end (Kafka may cut the last batch at the size limit).
fn split_batches(mut records: Bytes) -> std::result::Result<(Vec<BatchView>, usize), String> {
    let mut batches = Vec::new();
    while !records.is_empty() {
        let (Some(base_offset), Some(length)) =
            (be_i64(&records, 0), be_i32(&records, layout::LENGTH_AT))
        else {
            return Ok((batches, records.len()));
        };
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(layout::LOG_OVERHEAD))
            .ok_or_else(|| format!("batch at offset {base_offset} has length {length}"))?;
        if total > records.len() {
            return Ok((batches, records.len()));
        }
        let bytes = records.split_to(total);
        let magic = bytes
            .get(layout::MAGIC_AT)
            .map(|m| i8::from_be_bytes([*m]))
            .ok_or_else(|| format!("batch at offset {base_offset} is too short"))?;
        if magic != 2 {
            return Err(format!(
                "batch at offset {base_offset} uses message format v{magic}; only v2 is supported"
            ));
        }
        if bytes.len() < layout::HEADER_LEN {
            return Err(format!(
                "batch at offset {base_offset} is {} bytes, shorter than its header",
                bytes.len()
            ));
        }
        let attributes = be_i16(&bytes, layout::ATTRIBUTES_AT).unwrap_or(0);
        let delta = be_i32(&bytes, layout::LAST_OFFSET_DELTA_AT).unwrap_or(0);
        let max_timestamp = be_i64(&bytes, layout::MAX_TIMESTAMP_AT).unwrap_or(-1);
        let producer_id = be_i64(&bytes, layout::PRODUCER_ID_AT).unwrap_or(-1);
        let last_offset = base_offset
            .checked_add(i64::from(delta))
            .ok_or_else(|| format!("batch at offset {base_offset} overflows"))?;
        batches.push(BatchView {
            base_offset,
            last_offset,
            magic,
            attributes,
            max_timestamp,
            producer_id,
            bytes,
        });
    }
    Ok((batches, 0))
}

/// Decodes a fetch's record bytes: records at or after `from`, and the next offset to fetch.
/// `aborted` is `Some` for a READ_COMMITTED fetch: the response's aborted transactions,
/// whose batches are dropped.
pub(crate) fn decode_fetched(
    records: Bytes,
    from: i64,
    aborted: Option<&[AbortedTxn]>,
) -> std::result::Result<(Vec<FetchedRecord>, i64), String> {
    let total = records.len();
    let (batches, partial) = split_batches(records)?;
    if batches.is_empty() && partial > 0 {
        // Since Fetch v3 (KIP-74) Kafka returns the first batch whole even when it exceeds
        // the size limits, so this is a broker that cut a batch it should not have.
        return Err(format!(
            "fetch at offset {from} returned {total} bytes holding no complete batch"
        ));
    }
    let mut filter = aborted.map(AbortFilter::new);
    let mut out = Vec::new();
    let mut next = from;
    for batch in batches {
        // Skipped batches, markers included, still move the position past them.
        next = next.max(batch.last_offset.saturating_add(1));
        if let Some(f) = &mut filter {
            if f.skips(&batch)? {
                continue;
            }
        }
        if batch.is_control() || batch.last_offset < from {
            continue;
        }
        debug_assert_eq!(batch.magic, 2);
        let log_append = batch.attributes & layout::LOG_APPEND_TIME_FLAG != 0;
        let mut bytes = batch.bytes;
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| format!("batch at offset {}: {e}", batch.base_offset))?;
        for r in set.records {
            if r.offset < from || r.control {
                continue;
            }
            out.push(FetchedRecord {
                offset: r.offset,
                timestamp: if log_append {
                    batch.max_timestamp
                } else {
                    r.timestamp
                },
                timestamp_type: if log_append {
                    TimestampType::LogAppend
                } else {
                    TimestampType::Creation
                },
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| Header {
                        key: k.to_string(),
                        value: v,
                    })
                    .collect(),
            });
        }
    }
    Ok((out, next))
}

impl Client {
    /// Reads records of one partition starting at `offset`, waiting up to `max_wait` for at
    /// least one byte. `max_bytes` bounds the response (Kafka still returns a first batch
    /// that is larger). OFFSET_OUT_OF_RANGE is returned as is, for the caller's reset policy.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        let isolation = self.config().isolation_level;
        self.fetch_isolated(topic, partition, offset, max_bytes, max_wait, isolation)
            .await
    }

    /// [`fetch`](Self::fetch) at the given isolation level instead of the client's.
    pub async fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait: Duration,
        isolation: IsolationLevel,
    ) -> Result<FetchResult> {
        let position = FetchPosition {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        self.fetch_many_isolated(&[position], max_bytes, max_wait, isolation)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(Error::InvalidArgument("nothing to fetch".to_owned())))
    }

    /// Fetches several partitions: one request per leader, each returning as soon as any of
    /// its partitions has data or `max_wait` passes. Leaders are asked one after the other.
    /// Returns one result per position, in order.
    pub async fn fetch_many(
        &self,
        positions: &[FetchPosition],
        partition_max_bytes: i32,
        max_wait: Duration,
    ) -> Vec<Result<FetchResult>> {
        let isolation = self.config().isolation_level;
        self.fetch_many_isolated(positions, partition_max_bytes, max_wait, isolation)
            .await
    }

    /// [`fetch_many`](Self::fetch_many) at the given isolation level instead of the
    /// client's.
    pub async fn fetch_many_isolated(
        &self,
        positions: &[FetchPosition],
        partition_max_bytes: i32,
        max_wait: Duration,
        isolation: IsolationLevel,
    ) -> Vec<Result<FetchResult>> {
        let mut results: Vec<Option<Result<FetchResult>>> =
            positions.iter().map(|_| None).collect();
        let mut attempt = 0;
        loop {
            let pending: Vec<usize> = (0..positions.len())
                .filter(|&i| match results.get(i) {
                    Some(None) => true,
                    Some(Some(Err(e))) => e.is_retriable(),
                    _ => false,
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            let mut retry = false;
            let mut by_leader: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            let mut seen: HashSet<(&str, i32)> = HashSet::new();
            for &i in &pending {
                let Some(p) = positions.get(i) else { continue };
                if !seen.insert((p.topic.as_str(), p.partition)) {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = None; // asked twice: next round
                    }
                    continue;
                }
                match self.leader_addr(&p.topic, p.partition).await {
                    Ok(addr) => by_leader.entry(addr).or_default().push(i),
                    Err(e) => {
                        retry |= self.note_failure(&mut results, i, e, &p.topic);
                    }
                }
            }
            for (addr, idxs) in by_leader {
                let mut per_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for &i in &idxs {
                    if let Some(p) = positions.get(i) {
                        per_topic
                            .entry(p.topic.as_str())
                            .or_default()
                            .push((p.partition, p.offset));
                    }
                }
                let count = i32::try_from(idxs.len()).unwrap_or(i32::MAX);
                let request = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(millis_i32(max_wait))
                    .with_min_bytes(1)
                    .with_max_bytes(partition_max_bytes.saturating_mul(count))
                    .with_isolation_level(isolation.wire())
                    .with_topics(
                        per_topic
                            .into_iter()
                            .map(|(t, parts)| {
                                FetchTopic::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o)| {
                                                FetchPartition::default()
                                                    .with_partition(p)
                                                    .with_fetch_offset(o)
                                                    .with_partition_max_bytes(partition_max_bytes)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                match self.call_at(&addr, max_wait, |_| request).await {
                    Err(e) => {
                        for &i in &idxs {
                            let topic = positions.get(i).map_or("", |p| p.topic.as_str());
                            retry |= self.note_failure(&mut results, i, e.duplicate(), topic);
                        }
                    }
                    Ok((_, resp)) => {
                        for &i in &idxs {
                            let Some(p) = positions.get(i) else { continue };
                            let r = fetch_partition_result(&resp, p, isolation).await;
                            match r {
                                Ok(fr) => {
                                    if let Some(slot) = results.get_mut(i) {
                                        *slot = Some(Ok(fr));
                                    }
                                }
                                Err(e) => retry |= self.note_failure(&mut results, i, e, &p.topic),
                            }
                        }
                    }
                }
            }
            if retry {
                if attempt >= self.config().retries {
                    break;
                }
                tokio::time::sleep(self.config().backoff(attempt)).await;
                attempt += 1;
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::InvalidArgument("never fetched".to_owned()))))
            .collect()
    }

    /// Looks up an offset of one partition. `Ok(None)` only for
    /// [`OffsetSpec::Timestamp`] when no record is that recent (Kafka answers -1).
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<Option<i64>> {
        self.list_offsets_many(&[(topic.to_owned(), partition)], spec)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(Error::InvalidArgument("nothing to look up".to_owned())))
    }

    /// Looks up the same kind of offset for several partitions, one request per leader.
    /// Returns one result per partition, in order.
    pub async fn list_offsets_many(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
    ) -> Vec<Result<Option<i64>>> {
        let isolation = self.config().isolation_level;
        self.list_offsets_many_isolated(partitions, spec, isolation)
            .await
    }

    /// [`list_offsets_many`](Self::list_offsets_many) at the given isolation level instead
    /// of the client's: at READ_COMMITTED, [`OffsetSpec::Latest`] is the last stable offset.
    pub async fn list_offsets_many_isolated(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: IsolationLevel,
    ) -> Vec<Result<Option<i64>>> {
        let mut results: Vec<Option<Result<Option<i64>>>> =
            partitions.iter().map(|_| None).collect();
        let mut attempt = 0;
        loop {
            let pending: Vec<usize> = (0..partitions.len())
                .filter(|&i| match results.get(i) {
                    Some(None) => true,
                    Some(Some(Err(e))) => e.is_retriable(),
                    _ => false,
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            let mut retry = false;
            let mut by_leader: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for &i in &pending {
                let Some((topic, partition)) = partitions.get(i) else {
                    continue;
                };
                match self.leader_addr(topic, *partition).await {
                    Ok(addr) => by_leader.entry(addr).or_default().push(i),
                    Err(e) => retry |= self.note_failure(&mut results, i, e, topic),
                }
            }
            for (addr, idxs) in by_leader {
                let mut per_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for &i in &idxs {
                    if let Some((t, p)) = partitions.get(i) {
                        let ps = per_topic.entry(t.as_str()).or_default();
                        if !ps.contains(p) {
                            ps.push(*p);
                        }
                    }
                }
                let timeout_ms = millis_i32(self.config().request_timeout);
                let request = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_isolation_level(isolation.wire())
                    .with_timeout_ms(timeout_ms)
                    .with_topics(
                        per_topic
                            .into_iter()
                            .map(|(t, ps)| {
                                ListOffsetsTopic::default()
                                    .with_name(topic_name(t))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|p| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(p)
                                                    .with_timestamp(spec.wire())
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                match self.call_at(&addr, Duration::ZERO, |_| request).await {
                    Err(e) => {
                        for &i in &idxs {
                            let topic = partitions.get(i).map_or("", |p| p.0.as_str());
                            retry |= self.note_failure(&mut results, i, e.duplicate(), topic);
                        }
                    }
                    Ok((_, resp)) => {
                        for &i in &idxs {
                            let Some((topic, partition)) = partitions.get(i) else {
                                continue;
                            };
                            let at = At::partition(topic, *partition);
                            let found = resp
                                .topics
                                .iter()
                                .filter(|t| t.name.0.as_str() == topic)
                                .flat_map(|t| t.partitions.iter())
                                .find(|p| p.partition_index == *partition);
                            let r = match found {
                                None => Err(Error::Protocol {
                                    addr: addr.clone(),
                                    message: format!(
                                        "ListOffsets response lacks topic {topic} partition {partition}"
                                    ),
                                }),
                                Some(p) => match ResponseError::try_from_code(p.error_code) {
                                    Some(error) => Err(Error::kafka("list offsets", at, error)),
                                    None if p.offset < 0 => Ok(None),
                                    None => Ok(Some(p.offset)),
                                },
                            };
                            match r {
                                Ok(v) => {
                                    if let Some(slot) = results.get_mut(i) {
                                        *slot = Some(Ok(v));
                                    }
                                }
                                Err(e) => retry |= self.note_failure(&mut results, i, e, topic),
                            }
                        }
                    }
                }
            }
            if retry {
                if attempt >= self.config().retries {
                    break;
                }
                tokio::time::sleep(self.config().backoff(attempt)).await;
                attempt += 1;
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::InvalidArgument("never looked up".to_owned()))))
            .collect()
    }

    /// Stores a per-partition failure; returns whether it will be retried.
    fn note_failure<T>(
        &self,
        results: &mut [Option<Result<T>>],
        i: usize,
        e: Error,
        topic: &str,
    ) -> bool {
        let retry = e.is_retriable();
        if retry && e.needs_metadata_refresh() {
            self.invalidate_topic(topic);
        }
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(Err(e));
        }
        retry
    }
}

/// The result for one position in a Fetch response, records decoded.
async fn fetch_partition_result(
    resp: &FetchResponse,
    pos: &FetchPosition,
    isolation: IsolationLevel,
) -> Result<FetchResult> {
    let at = At::partition(&pos.topic, pos.partition).at_offset(pos.offset);
    if let Some(error) = ResponseError::try_from_code(resp.error_code) {
        return Err(Error::kafka("fetch", at, error));
    }
    let data = resp
        .responses
        .iter()
        .filter(|t| t.topic.0.as_str() == pos.topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == pos.partition)
        .ok_or_else(|| Error::Protocol {
            addr: String::new(),
            message: format!(
                "fetch response lacks topic {} partition {}",
                pos.topic, pos.partition
            ),
        })?;
    if let Some(error) = ResponseError::try_from_code(data.error_code) {
        return Err(Error::kafka("fetch", at, error));
    }
    let bytes = data.records.clone().unwrap_or_default();
    let from = pos.offset;
    // Kafka sends the aborted list (possibly null: none) only for READ_COMMITTED; at
    // READ_UNCOMMITTED aborted records are returned like any other.
    let aborted: Option<Vec<AbortedTxn>> =
        (isolation == IsolationLevel::ReadCommitted).then(|| {
            data.aborted_transactions
                .iter()
                .flatten()
                .map(|a| AbortedTxn {
                    producer_id: a.producer_id.0,
                    first_offset: a.first_offset,
                })
                .collect()
        });
    let decoded = if bytes.len() >= BLOCKING_DECODE_BYTES {
        tokio::task::spawn_blocking(move || decode_fetched(bytes, from, aborted.as_deref()))
            .await
            .map_err(|e| format!("decoder task failed: {e}"))
            .and_then(|r| r)
    } else {
        decode_fetched(bytes, from, aborted.as_deref())
    };
    let (records, next_offset) = decoded.map_err(|message| Error::Records { at, message })?;
    Ok(FetchResult {
        records,
        next_offset,
        high_watermark: data.high_watermark,
        log_start_offset: data.log_start_offset,
        last_stable_offset: data.last_stable_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::produce::{encode_batch, encode_stamped, Compression, ProduceRecord, ProducerStamp};
    use bytes::BytesMut;

    /// An encoded batch with its base offset rewritten, as the broker assigns it.
    fn batch_at(base: i64, values: &[&str]) -> Bytes {
        let records: Vec<ProduceRecord> = values
            .iter()
            .map(|v| ProduceRecord::new(v.to_string()))
            .collect();
        let mut b = BytesMut::from(&encode_batch(&records, Compression::None, 1_000).unwrap()[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b.freeze()
    }

    fn concat(parts: &[&Bytes]) -> Bytes {
        let mut b = BytesMut::new();
        for p in parts {
            b.extend_from_slice(p);
        }
        b.freeze()
    }

    fn values(records: &[FetchedRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn records_below_the_fetch_offset_are_dropped() {
        let bytes = concat(&[&batch_at(10, &["a", "b", "c"]), &batch_at(13, &["d"])]);
        let (records, next) = decode_fetched(bytes, 11, None).unwrap();
        assert_eq!(values(&records), vec!["b", "c", "d"]);
        assert_eq!(records.first().unwrap().offset, 11);
        assert_eq!(next, 14);
    }

    #[test]
    fn trailing_partial_batch_is_ignored() {
        let second = batch_at(3, &["d", "e"]);
        let bytes = concat(&[
            &batch_at(0, &["a", "b", "c"]),
            &second.slice(..second.len() - 5),
        ]);
        let (records, next) = decode_fetched(bytes, 0, None).unwrap();
        assert_eq!(values(&records), vec!["a", "b", "c"]);
        assert_eq!(next, 3);
    }

    #[test]
    fn only_a_partial_batch_is_an_error() {
        let b = batch_at(0, &["a"]);
        let err = decode_fetched(b.slice(..20), 0, None).unwrap_err();
        assert!(err.contains("no complete batch"), "{err}");
    }

    #[test]
    fn empty_response_keeps_the_position() {
        let (records, next) = decode_fetched(Bytes::new(), 7, None).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 7);
    }

    #[test]
    fn compacted_tail_advances_past_the_batch() {
        // A batch that covered offsets 5..=9 after compaction kept only offset 5: the records
        // say 5, lastOffsetDelta still says 9. The next fetch must start at 10, not 6.
        let mut b = BytesMut::from(&batch_at(5, &["only"])[..]);
        b[23..27].copy_from_slice(&4i32.to_be_bytes());
        // Re-seal the CRC over attributes..end, as the broker's cleaner does.
        let crc = crc32c_of(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let (records, next) = decode_fetched(b.freeze(), 5, None).unwrap();
        assert_eq!(values(&records), vec!["only"]);
        assert_eq!(next, 10);
    }

    #[test]
    fn control_batches_are_skipped_but_advance() {
        let mut control = BytesMut::from(&batch_at(4, &["marker"])[..]);
        let attrs = i16::from_be_bytes([control[21], control[22]]) | (1 << 5);
        control[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c_of(&control[21..]);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        let bytes = concat(&[
            &batch_at(0, &["a", "b", "c", "d"]),
            &control.freeze(),
            &batch_at(5, &["e"]),
        ]);
        let (records, next) = decode_fetched(bytes, 0, None).unwrap();
        assert_eq!(values(&records), vec!["a", "b", "c", "d", "e"]);
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 5]);
        assert_eq!(next, 6);
    }

    #[test]
    fn log_append_time_uses_the_batch_max_timestamp() {
        let records = vec![
            ProduceRecord::new("a").with_timestamp(100),
            ProduceRecord::new("b").with_timestamp(200),
        ];
        let mut b = BytesMut::from(&encode_batch(&records, Compression::None, 0).unwrap()[..]);
        let attrs = i16::from_be_bytes([b[21], b[22]]) | (1 << 3);
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        b[35..43].copy_from_slice(&5_000i64.to_be_bytes());
        let crc = crc32c_of(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let (records, _) = decode_fetched(b.freeze(), 0, None).unwrap();
        assert!(records.iter().all(|r| r.timestamp == 5_000));
        assert!(records
            .iter()
            .all(|r| r.timestamp_type == TimestampType::LogAppend));
    }

    #[test]
    fn corrupt_batch_is_an_error_naming_its_offset() {
        let mut b = BytesMut::from(&batch_at(42, &["a"])[..]);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let err = decode_fetched(b.freeze(), 42, None).unwrap_err();
        assert!(err.contains("offset 42"), "{err}");
    }

    #[test]
    fn old_message_format_is_refused() {
        let mut b = BytesMut::from(&batch_at(0, &["a"])[..]);
        b[16] = 1;
        let err = decode_fetched(b.freeze(), 0, None).unwrap_err();
        assert!(err.contains("message format v1"), "{err}");
    }

    /// A transactional batch of producer `pid` at `base`.
    fn txn_batch(base: i64, pid: i64, values: &[&str]) -> Bytes {
        let records: Vec<ProduceRecord> = values
            .iter()
            .map(|v| ProduceRecord::new(v.to_string()))
            .collect();
        let stamp = ProducerStamp {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
        };
        let encoded = encode_stamped(&records, Compression::None, 1_000, Some(stamp)).unwrap();
        let mut b = BytesMut::from(&encoded[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b.freeze()
    }

    /// A transaction marker of producer `pid` at `offset`: ABORT (0) or COMMIT (1), written
    /// as Kafka's `EndTransactionMarker` (key: version 0, type; value: version 0,
    /// coordinator epoch).
    fn marker(offset: i64, pid: i64, kind: i16) -> Bytes {
        let mut key = BytesMut::new();
        key.extend_from_slice(&0i16.to_be_bytes());
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = BytesMut::new();
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&0i32.to_be_bytes());
        let record = kafka_protocol::records::Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1_000,
            key: Some(key.freeze()),
            value: Some(value.freeze()),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        kafka_protocol::records::RecordBatchEncoder::encode(
            &mut buf,
            [&record],
            &kafka_protocol::records::RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.freeze()
    }

    const ABORT: i16 = 0;
    const COMMIT: i16 = 1;

    #[test]
    fn read_committed_drops_aborted_transactions_until_their_marker() {
        // Producer 7 aborts offsets 0-1 (marker at 2); producer 8 commits 3 (marker at 5);
        // producer 7's next transaction (6, marker 7) commits; 4 is non-transactional.
        let bytes = concat(&[
            &txn_batch(0, 7, &["a0", "a1"]),
            &marker(2, 7, ABORT),
            &txn_batch(3, 8, &["c3"]),
            &batch_at(4, &["n4"]),
            &marker(5, 8, COMMIT),
            &txn_batch(6, 7, &["c6"]),
            &marker(7, 7, COMMIT),
        ]);
        let aborted = [AbortedTxn {
            producer_id: 7,
            first_offset: 0,
        }];
        let (records, next) = decode_fetched(bytes.clone(), 0, Some(&aborted)).unwrap();
        assert_eq!(values(&records), vec!["c3", "n4", "c6"]);
        assert_eq!(
            next, 8,
            "markers and aborted batches still advance the position"
        );
        // READ_UNCOMMITTED returns everything but the markers.
        let (records, next) = decode_fetched(bytes, 0, None).unwrap();
        assert_eq!(values(&records), vec!["a0", "a1", "c3", "n4", "c6"]);
        assert_eq!(next, 8);
    }

    #[test]
    fn an_aborted_transaction_is_dropped_only_from_its_first_offset() {
        // Producer 7 commits at 0 (marker 1) and then aborts at 2 (marker 3); only the
        // second transaction is in the aborted list.
        let bytes = concat(&[
            &txn_batch(0, 7, &["keep"]),
            &marker(1, 7, COMMIT),
            &txn_batch(2, 7, &["drop"]),
            &marker(3, 7, ABORT),
        ]);
        let aborted = [AbortedTxn {
            producer_id: 7,
            first_offset: 2,
        }];
        let (records, next) = decode_fetched(bytes, 0, Some(&aborted)).unwrap();
        assert_eq!(values(&records), vec!["keep"]);
        assert_eq!(next, 4);
    }

    #[test]
    fn a_fetch_starting_inside_an_aborted_transaction_still_drops_it() {
        // The aborted transaction began at 0, before the fetch offset 2.
        let bytes = concat(&[&txn_batch(2, 9, &["x", "y"]), &marker(4, 9, ABORT)]);
        let aborted = [AbortedTxn {
            producer_id: 9,
            first_offset: 0,
        }];
        let (records, next) = decode_fetched(bytes, 2, Some(&aborted)).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 5);
    }

    /// CRC-32C (Castagnoli), bitwise; only for re-sealing test batches.
    fn crc32c_of(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
            }
        }
        !crc
    }
}
