//! Producing: records are encoded into one record batch (magic 2) per partition with
//! `kafka-protocol`'s `RecordBatchEncoder`, and sent to the partition leader in a Produce
//! request. These calls are not idempotent (producer id -1); the transactional producer in
//! `txn` stamps its batches with a producer id, epoch and sequences through the same
//! encoder. There is no buffering and no lingering: each call sends what it is given and
//! waits for the acknowledgement.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

pub use kafka_protocol::records::Compression;

use crate::client::{millis_i32, topic_name, Client};
use crate::error::{At, Error, Result};

/// Total record bytes above which a batch is encoded (and compressed) on the blocking pool
/// instead of the async runtime.
const BLOCKING_ENCODE_BYTES: usize = 256 * 1024;

/// A record header. Kafka header keys are strings and values are bytes or null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    /// Key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order. Keys must be distinct (see the crate README).
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` uses the current time, as Kafka's producer
    /// does.
    pub timestamp: Option<i64>,
}

impl ProduceRecord {
    /// A record with a value and nothing else.
    pub fn new(value: impl Into<Bytes>) -> Self {
        Self {
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    fn approx_size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }
}

/// How many replicas must have a batch before the broker acknowledges it (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: the broker sends no response; the offset is unknown.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all`: every in-sync replica has it (Kafka's producer default since 3.0).
    All,
}

impl Acks {
    fn wire(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

/// Per-call producer settings.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Acknowledgement level.
    pub acks: Acks,
    /// Batch compression.
    pub compression: Compression,
    /// How long the broker may wait for replicas (Produce `timeout_ms`); the client waits
    /// this plus its request timeout.
    pub timeout: Duration,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            compression: Compression::None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Records for one partition, for [`Client::produce_batches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceBatch {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records, in order.
    pub records: Vec<ProduceRecord>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Encodes `records` as one record batch (magic 2) with relative offsets 0..n, no producer
/// id and no sequence numbers. Fails on duplicate header keys, which `kafka-protocol`'s
/// `Record` cannot hold.
pub fn encode_batch(
    records: &[ProduceRecord],
    compression: Compression,
    now_ms: i64,
) -> std::result::Result<Bytes, String> {
    encode_stamped(records, compression, now_ms, None)
}

/// The idempotence fields of a batch from an idempotent or transactional producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerStamp {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// Sequence of the batch's first record; record `i` gets `base_sequence + i`, wrapping
    /// at `i32::MAX` as Kafka's `DefaultRecordBatch.incrementSequence` does.
    pub(crate) base_sequence: i32,
    pub(crate) transactional: bool,
}

/// [`encode_batch`] with an optional producer stamp (producer id, epoch, sequences,
/// transactional flag).
pub(crate) fn encode_stamped(
    records: &[ProduceRecord],
    compression: Compression,
    now_ms: i64,
    stamp: Option<ProducerStamp>,
) -> std::result::Result<Bytes, String> {
    if records.is_empty() {
        return Err("a batch needs at least one record".to_owned());
    }
    let mut wire = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let offset = i64::try_from(i).map_err(|_| "too many records".to_owned())?;
        let mut headers = IndexMap::with_capacity(r.headers.len());
        for h in &r.headers {
            if headers
                .insert(StrBytes::from_string(h.key.clone()), h.value.clone())
                .is_some()
            {
                return Err(format!("record {i} has header key {:?} twice", h.key));
            }
        }
        let index = i32::try_from(i).map_err(|_| "too many records".to_owned())?;
        // The encoder starts a new batch wherever `offset - sequence` changes, and Produce
        // v3+ takes exactly one batch per partition. Without a stamp, sequence `offset - 1`
        // keeps the difference constant and makes the batch's base sequence -1
        // (NO_SEQUENCE), which is what a non-idempotent Java producer writes.
        let sequence = match stamp {
            Some(st) => st.base_sequence.wrapping_add(index),
            None => index - 1,
        };
        wire.push(Record {
            transactional: stamp.is_some_and(|st| st.transactional),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: stamp.map_or(NO_PRODUCER_ID, |st| st.producer_id),
            producer_epoch: stamp.map_or(NO_PRODUCER_EPOCH, |st| st.producer_epoch),
            timestamp_type: TimestampType::Creation,
            offset,
            sequence,
            timestamp: r.timestamp.unwrap_or(now_ms),
            key: r.key.clone(),
            value: r.value.clone(),
            headers,
        });
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &wire,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Encodes on the blocking pool when the batch is big enough for compression to matter.
async fn encode_batch_async(
    records: &[ProduceRecord],
    compression: Compression,
    at: &At,
) -> Result<Bytes> {
    encode_stamped_async(records, compression, at, None).await
}

/// [`encode_stamped`] on the blocking pool when the batch is big.
pub(crate) async fn encode_stamped_async(
    records: &[ProduceRecord],
    compression: Compression,
    at: &At,
    stamp: Option<ProducerStamp>,
) -> Result<Bytes> {
    let now = now_ms();
    let size: usize = records.iter().map(ProduceRecord::approx_size).sum();
    let encoded = if size >= BLOCKING_ENCODE_BYTES {
        let owned = records.to_vec();
        tokio::task::spawn_blocking(move || encode_stamped(&owned, compression, now, stamp))
            .await
            .map_err(|e| format!("encoder task failed: {e}"))
            .and_then(|r| r)
    } else {
        encode_stamped(records, compression, now, stamp)
    };
    encoded.map_err(|message| Error::Records {
        at: at.clone(),
        message,
    })
}

impl Client {
    /// Produces `records` to one partition as one batch and returns the offset of the first
    /// record (-1 with `acks=0`, as Kafka's producer reports). Leadership errors refresh
    /// metadata and retry; a transport failure after the request was sent is returned, not
    /// retried, since the batch may have been written.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[ProduceRecord],
        options: &ProduceOptions,
    ) -> Result<i64> {
        let at = At::partition(topic, partition);
        let batch = encode_batch_async(records, options.compression, &at).await?;
        self.retrying(
            false,
            |e| {
                if e.needs_metadata_refresh() {
                    self.invalidate_topic(topic);
                }
            },
            || async {
                let addr = self.leader_addr(topic, partition).await?;
                let request = produce_request(
                    options,
                    [(topic, vec![(partition, batch.clone())])].into_iter(),
                );
                if options.acks == Acks::None {
                    self.send_at(&addr, |_| request).await?;
                    return Ok(-1);
                }
                let (_, resp) = self.call_at(&addr, options.timeout, |_| request).await?;
                partition_result(&resp, topic, partition)
            },
        )
        .await
    }

    /// Produces several batches, one request per leader broker per round, and returns one
    /// result per input batch, in order. Partitions whose leader moved are retried after a
    /// metadata refresh; a partition listed twice is sent in a later request (Kafka takes
    /// one batch per partition per request).
    pub async fn produce_batches(
        &self,
        batches: &[ProduceBatch],
        options: &ProduceOptions,
    ) -> Vec<Result<i64>> {
        let mut results: Vec<Option<Result<i64>>> = Vec::with_capacity(batches.len());
        let mut encoded: Vec<Option<Bytes>> = Vec::with_capacity(batches.len());
        for b in batches {
            let at = At::partition(&b.topic, b.partition);
            match encode_batch_async(&b.records, options.compression, &at).await {
                Ok(bytes) => {
                    encoded.push(Some(bytes));
                    results.push(None);
                }
                Err(e) => {
                    encoded.push(None);
                    results.push(Some(Err(e)));
                }
            }
        }
        let mut attempt = 0;
        loop {
            let pending: Vec<usize> = (0..batches.len())
                .filter(|&i| needs_send(&results, i))
                .collect();
            if pending.is_empty() {
                break;
            }
            let retry = self
                .produce_round(batches, &encoded, &pending, &mut results, options)
                .await;
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
            .map(|r| {
                r.unwrap_or_else(|| Err(Error::InvalidArgument("batch was never sent".to_owned())))
            })
            .collect()
    }

    /// Sends one request per leader for the pending batches (at most one per partition).
    /// Records outcomes in `results`; retriable unsent failures are recorded as errors but
    /// left pending. Returns whether any such failure happened.
    async fn produce_round(
        &self,
        batches: &[ProduceBatch],
        encoded: &[Option<Bytes>],
        pending: &[usize],
        results: &mut [Option<Result<i64>>],
        options: &ProduceOptions,
    ) -> bool {
        let mut retriable = false;
        let mut by_leader: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut seen: HashSet<(&str, i32)> = HashSet::new();
        for &i in pending {
            let Some(b) = batches.get(i) else { continue };
            if !seen.insert((b.topic.as_str(), b.partition)) {
                continue; // the same partition again: next round
            }
            match self.leader_addr(&b.topic, b.partition).await {
                Ok(addr) => by_leader.entry(addr).or_default().push(i),
                Err(e) => {
                    retriable |= self.record_failure(results, i, e, &b.topic);
                }
            }
        }
        for (addr, idxs) in by_leader {
            let mut per_topic: BTreeMap<&str, Vec<(i32, Bytes)>> = BTreeMap::new();
            for &i in &idxs {
                if let (Some(b), Some(Some(bytes))) = (batches.get(i), encoded.get(i)) {
                    per_topic
                        .entry(b.topic.as_str())
                        .or_default()
                        .push((b.partition, bytes.clone()));
                }
            }
            let request = produce_request(options, per_topic.into_iter());
            let outcome = if options.acks == Acks::None {
                self.send_at(&addr, |_| request).await.map(|()| None)
            } else {
                self.call_at(&addr, options.timeout, |_| request)
                    .await
                    .map(|(_, r)| Some(r))
            };
            for &i in &idxs {
                let Some(b) = batches.get(i) else { continue };
                let r = match &outcome {
                    Ok(None) => Ok(-1),
                    Ok(Some(resp)) => partition_result(resp, &b.topic, b.partition),
                    Err(e) => Err(e.duplicate()),
                };
                match r {
                    Ok(offset) => {
                        if let Some(slot) = results.get_mut(i) {
                            *slot = Some(Ok(offset));
                        }
                    }
                    Err(e) => retriable |= self.record_failure(results, i, e, &b.topic),
                }
            }
        }
        retriable
    }

    /// Stores a failure; returns whether the batch will be sent again.
    fn record_failure(
        &self,
        results: &mut [Option<Result<i64>>],
        i: usize,
        e: Error,
        topic: &str,
    ) -> bool {
        let retry = e.is_retriable() && e.is_unsent();
        if retry && e.needs_metadata_refresh() {
            self.invalidate_topic(topic);
        }
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(Err(e));
        }
        retry
    }
}

/// Whether batch `i` still has to be sent: it has no outcome yet, or its last failure was
/// retriable and certainly not written.
fn needs_send(results: &[Option<Result<i64>>], i: usize) -> bool {
    match results.get(i) {
        Some(None) => true,
        Some(Some(Err(e))) => e.is_retriable() && e.is_unsent(),
        _ => false,
    }
}

pub(crate) fn produce_request<'a>(
    options: &ProduceOptions,
    topics: impl Iterator<Item = (&'a str, Vec<(i32, Bytes)>)>,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(options.acks.wire())
        .with_timeout_ms(millis_i32(options.timeout))
        .with_topic_data(
            topics
                .map(|(topic, parts)| {
                    TopicProduceData::default()
                        .with_name(topic_name(topic))
                        .with_partition_data(
                            parts
                                .into_iter()
                                .map(|(p, records)| {
                                    PartitionProduceData::default()
                                        .with_index(p)
                                        .with_records(Some(records))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// The base offset for `topic`/`partition` in a Produce response, or its error.
pub(crate) fn partition_result(resp: &ProduceResponse, topic: &str, partition: i32) -> Result<i64> {
    let at = At::partition(topic, partition);
    let p = resp
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| Error::Protocol {
            addr: String::new(),
            message: format!("produce response lacks topic {topic} partition {partition}"),
        })?;
    match ResponseError::try_from_code(p.error_code) {
        None => Ok(p.base_offset),
        Some(error) => {
            let mut message = p.error_message.as_ref().map(ToString::to_string);
            if let Some(first) = p.record_errors.first() {
                let record_msg = first
                    .batch_index_error_message
                    .as_ref()
                    .map_or("", |m| m.as_str());
                let detail = format!("record {}: {record_msg}", first.batch_index);
                message = match message {
                    // Kafka repeats the record errors in `error_message`.
                    Some(m) if !record_msg.is_empty() && m.contains(record_msg) => Some(m),
                    Some(m) => Some(format!("{m}; {detail}")),
                    None => Some(detail),
                };
            }
            Err(Error::Kafka {
                op: "produce",
                at: Box::new(at),
                error,
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn many_records_encode_as_one_batch_without_sequence() {
        let records: Vec<ProduceRecord> = (0..5)
            .map(|i| {
                ProduceRecord::new(format!("v{i}"))
                    .with_key(format!("k{i}"))
                    .with_header("h", "x")
            })
            .collect();
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = encode_batch(&records, compression, 1_000).unwrap();
            let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
            assert_eq!(info.len(), 1, "{compression:?}: one batch");
            let first = info.first().unwrap();
            assert_eq!(first.record_count, 5);
            assert_eq!(first.base_sequence, -1);
            assert_eq!(first.producer_id, -1);
            assert_eq!(first.compression, compression);
            let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
            assert_eq!(set.records[4].value.as_deref(), Some(&b"v4"[..]));
            assert_eq!(set.records[4].timestamp, 1_000);
        }
    }

    #[test]
    fn explicit_timestamps_are_kept() {
        let records = vec![
            ProduceRecord::new("a").with_timestamp(50),
            ProduceRecord::new("b").with_timestamp(20),
        ];
        let bytes = encode_batch(&records, Compression::None, 999).unwrap();
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
        let ts: Vec<i64> = set.records.iter().map(|r| r.timestamp).collect();
        assert_eq!(ts, vec![50, 20]);
    }

    #[test]
    fn duplicate_header_keys_are_refused() {
        let r = ProduceRecord::new("v")
            .with_header("a", "1")
            .with_header("a", "2");
        let err = encode_batch(&[r], Compression::None, 0).unwrap_err();
        assert!(err.contains("header key \"a\" twice"), "{err}");
    }

    #[test]
    fn empty_batch_is_refused() {
        assert!(encode_batch(&[], Compression::None, 0).is_err());
    }
}
