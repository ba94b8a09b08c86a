//! Messages in the console: browsing a partition, and producing a test message.
//!
//! Browsing reads the log directly (a Fetch reply carries file regions the socket layer
//! splices, not records), after an explicit READ check on the topic, as Fetch makes it
//! (TOPIC_AUTHORIZATION_FAILED). It starts at an offset, at the earliest or latest page, or
//! at a timestamp (resolved by ListOffsets through the broker's handler, so the semantics
//! are ListOffsets'); it decodes compressed batches (at most
//! [`MAX_DECOMPRESSED_BATCH_BYTES`] each) and, only at `read_committed`, stops at the last
//! stable offset, skips control batches and drops aborted transactions' records the way
//! Kafka's consumer does. Each key, value and header value is shown as JSON when it is a
//! JSON object or array, as text when it is printable UTF-8, else as hex; the page says
//! which. Pages are capped at [`MAX_PAGE_RECORDS`] records, [`MAX_PAGE_READ_BYTES`] read,
//! and [`MAX_FIELD_BYTES`] shown per field.
//!
//! Producing builds one record batch and sends it through the Produce handler (acks=all),
//! so validation, quotas of size and WRITE authorization are Kafka's. Without a partition,
//! a keyed message goes where Kafka's default partitioner would put it (murmur2 of the
//! key), an unkeyed one round-robin.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ProduceRequest, RequestKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::kafka::{check, Caller, ConsoleError};
use super::{Console, Identity};
use crate::console_expect;
use crate::log::batch::BatchView;
use crate::log::partition::{Partition, ReadError};
use crate::security::acl::Operation;

/// Most records one page shows.
pub const MAX_PAGE_RECORDS: usize = 500;
/// Records a page shows unless asked.
const DEFAULT_PAGE_RECORDS: usize = 20;
/// Bytes of log read per step (whole batches; the first one is always read whole, as
/// Fetch does since KIP-74).
const READ_STEP_BYTES: usize = 1024 * 1024;
/// Most bytes of log one page reads, over all its steps.
pub const MAX_PAGE_READ_BYTES: usize = 8 * 1024 * 1024;
/// Largest size one batch may decompress to here; a bigger one is named on the page, not
/// shown.
pub const MAX_DECOMPRESSED_BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of a key, value or header value shown; the page says when there were more.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most headers a produced test message may carry.
const MAX_PRODUCE_HEADERS: usize = 64;
/// Produce at v11: topics by name (v13 sends topic ids).
const PRODUCE_VERSION: i16 = 11;
/// ListOffsets v9.
const LIST_OFFSETS_VERSION: i16 = 9;
/// Kafka producer's default `request.timeout.ms`.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// Query of `GET /api/topics/{name}/messages`.
#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    /// Partition (default 0).
    pub partition: Option<i32>,
    /// Start at this offset.
    pub offset: Option<i64>,
    /// Start at the first message with at least this timestamp (ms).
    pub timestamp: Option<i64>,
    /// `earliest` or `latest` (the last page).
    pub position: Option<String>,
    /// Records per page.
    pub limit: Option<usize>,
    /// `read_uncommitted` (default) or `read_committed`.
    pub isolation: Option<String>,
}

/// `GET /api/topics/{name}/messages`.
pub async fn browse(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    Query(q): Query<BrowseQuery>,
) -> Result<Response, ConsoleError> {
    let caller = Caller::new(&console.broker, &who, console.bound);
    let committed = match q.isolation.as_deref() {
        None | Some("read_uncommitted") => false,
        Some("read_committed") => true,
        Some(other) => {
            return Err(ConsoleError::invalid(format!(
                "isolation '{other}': use read_uncommitted or read_committed"
            )))
        }
    };
    let limit = q
        .limit
        .unwrap_or(DEFAULT_PAGE_RECORDS)
        .clamp(1, MAX_PAGE_RECORDS);
    let index = q.partition.unwrap_or(0);
    // Fetch's check, made here because the records are read from the log directly.
    if !caller.ctx().authorize_topic(Operation::Read, &name) {
        return Err(ConsoleError::kafka(
            kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code(),
            None,
        ));
    }
    let part = console
        .broker
        .logs
        .topic(&name)
        .and_then(|t| t.partitions.get(usize::try_from(index).ok()?).cloned())
        .ok_or_else(|| {
            ConsoleError::kafka(
                kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
                None,
            )
        })?;
    let (log_start, _, hw, _) = part.offsets();
    let end = if committed {
        part.last_stable_offset()
    } else {
        hw
    };
    let mut note = None;
    let from = if let Some(ts) = q.timestamp {
        match list_offset(&caller, &name, index, ts, committed).await? {
            -1 => {
                note = Some(format!("No message at or after timestamp {ts}."));
                end
            }
            o => o,
        }
    } else if let Some(o) = q.offset {
        if o < log_start {
            note = Some(format!(
                "Offset {o} is below the log start offset {log_start}; showing from there."
            ));
            log_start
        } else {
            o.min(end)
        }
    } else {
        match q.position.as_deref() {
            None | Some("earliest") => log_start,
            Some("latest") => end
                .saturating_sub(i64::try_from(limit).unwrap_or(i64::MAX))
                .max(log_start),
            Some(other) => {
                return Err(ConsoleError::invalid(format!(
                    "position '{other}': use earliest or latest"
                )))
            }
        }
    };
    let reader = Arc::clone(&part);
    let page = tokio::task::spawn_blocking(move || read_page(&reader, from, limit, committed))
        .await
        .map_err(ConsoleError::internal)??;
    let (log_start, _, hw, _) = part.offsets();
    let lso = part.last_stable_offset();
    let end = if committed { lso } else { hw };
    let prev = (from > log_start).then(|| {
        from.saturating_sub(i64::try_from(limit).unwrap_or(i64::MAX))
            .max(log_start)
    });
    let next = (page.reached < end).then_some(page.reached);
    let note = match (note, page.skipped.is_empty()) {
        (n, true) => n,
        (n, false) => Some(format!(
            "{}{}",
            n.map(|n| n + " ").unwrap_or_default(),
            page.skipped.join(" ")
        )),
    };
    Ok(Json(json!({
        "topic": name,
        "partition": index,
        "isolation": if committed { "read_committed" } else { "read_uncommitted" },
        "log_start": log_start,
        "high_watermark": hw,
        "last_stable": lso,
        "from": from,
        "next": next,
        "prev": prev,
        "note": note,
        "records": page.records,
    }))
    .into_response())
}

/// ListOffsets through the handler: the first offset whose timestamp is at least `ts`
/// (-1: none).
async fn list_offset(
    caller: &Caller,
    topic: &str,
    partition: i32,
    ts: i64,
    committed: bool,
) -> Result<i64, ConsoleError> {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(i8::from(committed))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(ts)])]);
    let resp = caller
        .call(
            ApiKey::ListOffsets,
            LIST_OFFSETS_VERSION,
            RequestKind::ListOffsets(req),
        )
        .await?;
    let resp = console_expect!(resp, ListOffsets);
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ConsoleError::internal("ListOffsets answered no partition"))?;
    check(p.error_code, None)?;
    Ok(p.offset)
}

/// What one page read found.
#[derive(Debug, Default)]
pub struct Page {
    /// The records, as the page shows them.
    pub records: Vec<Value>,
    /// The offset after the last one looked at: where the next page starts.
    pub reached: i64,
    /// Batches not shown, and why.
    pub skipped: Vec<String>,
}

/// Read up to `limit` records of `part` from offset `from` (blocking IO).
pub fn read_page(
    part: &Partition,
    from: i64,
    limit: usize,
    committed: bool,
) -> Result<Page, ConsoleError> {
    let mut page = Page {
        reached: from,
        ..Page::default()
    };
    let mut read = 0usize;
    // Kafka's consumer (read_committed): aborted transactions by first offset, and the
    // producers whose aborted transaction is in progress at the current batch.
    let mut aborted: BinaryHeap<Reverse<(i64, i64)>> = BinaryHeap::new();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut seen_aborted: HashSet<(i64, i64)> = HashSet::new();
    'pages: while page.records.len() < limit && read < MAX_PAGE_READ_BYTES {
        let pos = page.reached;
        let data = match if committed {
            part.read_committed(pos, READ_STEP_BYTES)
        } else {
            part.read(pos, READ_STEP_BYTES)
        } {
            Ok(d) => d,
            Err(ReadError::OutOfRange { .. }) => {
                return Err(ConsoleError::kafka(
                    kafka_protocol::error::ResponseError::OffsetOutOfRange.code(),
                    None,
                ))
            }
            Err(ReadError::Storage(e)) => return Err(ConsoleError::internal(e)),
        };
        if data.records.is_empty() {
            break;
        }
        read = read.saturating_add(data.records.len());
        for a in &data.aborted {
            if seen_aborted.insert((a.first_offset, a.producer_id)) {
                aborted.push(Reverse((a.first_offset, a.producer_id)));
            }
        }
        let all = data.records;
        let mut rest: &[u8] = &all;
        let mut progressed = false;
        loop {
            let (batch, tail) = match BatchView::split_first(rest) {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    page.skipped
                        .push(format!("Unreadable batch at offset {pos}: {e}."));
                    break 'pages;
                }
            };
            let start = all.len() - rest.len();
            rest = tail;
            let last = batch.last_offset();
            if last < page.reached {
                continue;
            }
            progressed = true;
            let pid = batch.producer_id();
            if committed && pid >= 0 {
                while let Some(Reverse((first, p))) = aborted.peek().copied() {
                    if first > last {
                        break;
                    }
                    aborted.pop();
                    aborting.insert(p);
                }
                if batch.is_control() {
                    if control_kind(&all.slice(start..start + batch.size())) == Some("ABORT") {
                        aborting.remove(&pid);
                    }
                    page.reached = last + 1;
                    continue;
                }
                if batch.is_transactional() && aborting.contains(&pid) {
                    page.reached = last + 1;
                    continue;
                }
            }
            if committed && batch.is_control() {
                page.reached = last + 1;
                continue;
            }
            let bytes = all.slice(start..start + batch.size());
            match decode(bytes) {
                Ok(records) => {
                    let info = batch_json(&batch);
                    for r in records {
                        if r.offset < page.reached {
                            continue;
                        }
                        if page.records.len() >= limit {
                            break 'pages;
                        }
                        page.reached = r.offset + 1;
                        page.records.push(record_json(&r, &info));
                    }
                }
                Err(e) => page.skipped.push(format!(
                    "Batch at offsets {}-{last} not shown: {e}.",
                    batch.base_offset()
                )),
            }
            page.reached = page.reached.max(last + 1);
        }
        if !progressed {
            break;
        }
    }
    Ok(page)
}

/// COMMIT or ABORT: the type in a control batch's record key.
fn control_kind(batch: &Bytes) -> Option<&'static str> {
    let records = decode(batch.clone()).ok()?;
    let key = records.first()?.key.as_ref()?;
    match key.get(2..4)? {
        [0, 0] => Some("ABORT"),
        [0, 1] => Some("COMMIT"),
        _ => Some("UNKNOWN"),
    }
}

/// The records of one batch, decompressed within [`MAX_DECOMPRESSED_BATCH_BYTES`].
fn decode(mut batch: Bytes) -> Result<Vec<Record>, String> {
    let bounded = |body: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
        let out =
            crate::log::validate::decompress_records(c as i16, body, MAX_DECOMPRESSED_BATCH_BYTES)?;
        Ok(Bytes::from(out))
    };
    RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(bounded))
        .map(|set| set.records)
        .map_err(|e| e.to_string())
}

fn batch_json(b: &BatchView<'_>) -> Value {
    let compression = match b.attributes() & 0x07 {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    };
    json!({
        "base_offset": b.base_offset(),
        "compression": compression,
        "transactional": b.is_transactional(),
        "producer_id": b.producer_id(),
    })
}

fn record_json(r: &Record, batch: &Value) -> Value {
    let control = if r.control {
        match r.key.as_ref().and_then(|k| k.get(2..4)) {
            Some([0, 0]) => Some("ABORT"),
            Some([0, 1]) => Some("COMMIT"),
            _ => Some("UNKNOWN"),
        }
    } else {
        None
    };
    json!({
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestamp_type": match r.timestamp_type {
            TimestampType::Creation => "CreateTime",
            TimestampType::LogAppend => "LogAppendTime",
        },
        "key": r.key.as_deref().map(field),
        "value": r.value.as_deref().map(field),
        "headers": r.headers.iter().map(|(k, v)| json!({
            "key": k.as_str(),
            "value": v.as_deref().map(field),
        })).collect::<Vec<_>>(),
        "control": control,
        "batch": batch,
    })
}

/// How one key, value or header value is shown: JSON (an object or array that parses),
/// text (printable UTF-8), else hex; at most [`MAX_FIELD_BYTES`] of it.
pub fn field(bytes: &[u8]) -> Value {
    let size = bytes.len();
    let truncated = size > MAX_FIELD_BYTES;
    let shown = bytes.get(..MAX_FIELD_BYTES).unwrap_or(bytes);
    let text = match std::str::from_utf8(shown) {
        Ok(s) => Some(s),
        // A cut through a multi-byte character at the end is still text.
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(shown.get(..e.valid_up_to()).unwrap_or_default()).ok()
        }
        Err(_) => None,
    };
    let (format, data) = match text {
        Some(s) if !truncated && is_json_container(s) => ("json", s.to_string()),
        Some(s) if printable(s) => ("text", s.to_string()),
        _ => ("hex", hex(shown)),
    };
    json!({
        "format": format,
        "data": data,
        "size": size,
        "shown_bytes": shown.len(),
        "truncated": truncated,
    })
}

fn is_json_container(s: &str) -> bool {
    let t = s.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Bytes as hex, 16 to a line, separated by spaces.
fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 3);
    for (i, byte) in b.iter().enumerate() {
        if i > 0 {
            out.push(if i % 16 == 0 { '\n' } else { ' ' });
        }
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// `POST /api/topics/{name}/messages` body.
#[derive(Debug, Deserialize)]
pub struct NewMessage {
    /// Partition; chosen as Kafka's producer would when absent.
    pub partition: Option<i32>,
    /// Key (UTF-8 text), or none.
    pub key: Option<String>,
    /// Value (UTF-8 text), or null.
    pub value: Option<String>,
    /// Headers, in order.
    #[serde(default)]
    pub headers: Vec<NewHeader>,
}

/// One header of a produced message.
#[derive(Debug, Deserialize)]
pub struct NewHeader {
    /// Header key.
    pub key: String,
    /// Header value, or null.
    pub value: Option<String>,
}

/// Unkeyed messages without a partition go round-robin.
static NEXT_PARTITION: AtomicU32 = AtomicU32::new(0);

/// `POST /api/topics/{name}/messages`.
pub async fn produce(
    State(console): State<Arc<Console>>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
    Json(msg): Json<NewMessage>,
) -> Result<Response, ConsoleError> {
    if msg.headers.len() > MAX_PRODUCE_HEADERS {
        return Err(ConsoleError::invalid(format!(
            "at most {MAX_PRODUCE_HEADERS} headers"
        )));
    }
    let caller = Caller::new(&console.broker, &who, console.bound);
    // A producer learns the partition count from Metadata (DESCRIBE) first; so does this.
    let md = super::topics::metadata(&caller, Some(&[name.as_str()])).await?;
    let t = md
        .topics
        .first()
        .ok_or_else(|| ConsoleError::internal("Metadata answered no topic"))?;
    check(t.error_code, None)?;
    let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
    if count == 0 {
        return Err(ConsoleError::internal("topic has no partitions"));
    }
    let partition = match (msg.partition, &msg.key) {
        (Some(p), _) => p,
        (None, Some(k)) => key_partition(k.as_bytes(), count),
        (None, None) => {
            i32::try_from(NEXT_PARTITION.fetch_add(1, Ordering::Relaxed) % count.unsigned_abs())
                .unwrap_or(0)
        }
    };
    let now = crate::log::partition::now_ms();
    let mut headers = IndexMap::new();
    for h in &msg.headers {
        headers.insert(
            StrBytes::from_string(h.key.clone()),
            h.value
                .as_ref()
                .map(|v| Bytes::from(v.clone().into_bytes())),
        );
    }
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: msg.key.map(|k| Bytes::from(k.into_bytes())),
        value: msg.value.map(|v| Bytes::from(v.into_bytes())),
        headers,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::iter::once(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(ConsoleError::internal)?;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(name.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(buf.freeze()))])]);
    let resp = caller
        .call(ApiKey::Produce, PRODUCE_VERSION, RequestKind::Produce(req))
        .await?;
    let resp = console_expect!(resp, Produce);
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| ConsoleError::internal("Produce answered no partition"))?;
    check(p.error_code, p.error_message.as_ref())?;
    Ok(Json(json!({
        "topic": name,
        "partition": partition,
        "offset": p.base_offset,
        "timestamp": if p.log_append_time_ms >= 0 { p.log_append_time_ms } else { now },
    }))
    .into_response())
}

/// Kafka's `Utils.murmur2`, which its default partitioner hashes keys with. The connectors
/// share `sluice_client::partitioner`; the broker does not depend on the client crate, so it
/// keeps this one copy.
fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if let Some(b) = rest.get(2) {
            h ^= u32::from(*b) << 16;
        }
        if let Some(b) = rest.get(1) {
            h ^= u32::from(*b) << 8;
        }
        if let Some(b) = rest.first() {
            h ^= u32::from(*b);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's default partitioner for a keyed record: `toPositive(murmur2(key)) % n`.
fn key_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // Kafka's UtilsTest.testMurmur2.
        for (input, want) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(murmur2(input), want);
        }
    }

    #[test]
    fn fields_are_json_text_or_hex() {
        let f = field(br#"{"id": 12345678901234567890, "b": [1, 2]}"#);
        assert_eq!(f["format"], "json");
        assert_eq!(field(b"hello world\n")["format"], "text");
        // JSON scalars are shown as text: only objects and arrays are worth indenting.
        assert_eq!(field(b"42")["format"], "text");
        assert_eq!(field(b"{not json")["format"], "text");
        let f = field(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
        assert_eq!(f["format"], "hex");
        assert_eq!(f["data"], "de ad be ef 00");
        assert_eq!(field(b"tab\tbell\x07")["format"], "hex");
        let long = vec![b'a'; MAX_FIELD_BYTES + 10];
        let f = field(&long);
        assert_eq!(f["truncated"], true);
        assert_eq!(f["shown_bytes"], MAX_FIELD_BYTES);
        assert_eq!(f["size"], MAX_FIELD_BYTES + 10);
        assert_eq!(hex(&[0u8; 17]).lines().count(), 2);
    }
}
