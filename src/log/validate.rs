//! Produce-time validation of the records inside a batch, after Kafka's `LogValidator`: the
//! records are read (decompressed first, for compressed batches) and checked one by one,
//! without building them: the record count against the header's `recordsCount` and
//! `lastOffsetDelta`, offset deltas `0..n-1`, every length and varint within its record and
//! the record within the batch, keys on compacted topics, and timestamps against
//! `message.timestamp.type` and `message.timestamp.before/after.max.ms`.
//!
//! Uncompressed batches are read in place. Compressed ones stream through a fixed window
//! kept per thread, with the zstd context also reused, and the decompressed size is capped
//! at [`MAX_DECOMPRESSED_BATCH_BYTES`], so a decompression bomb costs bounded memory and
//! time. The header, CRC and batch size are checked before this, in [`super::batch`]; the
//! stored bytes are never changed here.

use std::cell::RefCell;
use std::io::Read;

use super::batch::{BatchView, ATTR_LOG_APPEND_TIME, HEADER_LEN};

/// Largest size a batch may decompress to: Kafka's `socket.request.max.bytes` default
/// (100 MiB), the largest request Kafka reads at all. Kafka itself sets no such limit; a
/// batch past it is refused with MESSAGE_TOO_LARGE, which makes Java producers split it.
pub const MAX_DECOMPRESSED_BATCH_BYTES: u64 = 104_857_600;
/// Window through which decompressed records are read, per thread.
const WINDOW: usize = 64 * 1024;
/// Raw snappy expands at most 64 bytes out of a 3-byte copy; a block claiming more than
/// this many times its input is corrupt, and is refused before its buffer is sized.
const SNAPPY_MAX_RATIO: usize = 22;
/// The 8-byte magic of xerial's snappy framing, which Kafka's Java clients write.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// Bytes of the xerial header: magic, version and compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// zstd's own default limit on the window a frame may ask for (128 MiB), set explicitly so
/// the most a hostile frame can make the decoder allocate is written down.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Snappy block buffers above this are released after use rather than kept per thread.
const SNAPPY_KEEP_BYTES: usize = 1 << 20;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// What the topic config asks of the records.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// `message.timestamp.type` is LogAppendTime: producer timestamps are not checked.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub after_max_ms: i64,
    /// The broker's clock, ms.
    pub now_ms: i64,
    /// Refuse batches that decompress to more than this; [`MAX_DECOMPRESSED_BATCH_BYTES`]
    /// outside tests.
    pub max_decompressed: u64,
}

/// A batch that cannot be read as Kafka's record format. Nothing of it may be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Attribute bits name no codec.
    #[error("unknown compression codec id {0}")]
    UnknownCodec(i16),
    /// The compressed data does not decompress.
    #[error("{codec} data of the batch is corrupt: {msg}")]
    Decompress {
        /// Codec name.
        codec: &'static str,
        /// What the decoder said.
        msg: String,
    },
    /// The batch decompresses to more than [`MAX_DECOMPRESSED_BATCH_BYTES`].
    #[error("batch decompresses to more than {0} bytes")]
    TooLarge(u64),
    /// recordsCount and lastOffsetDelta disagree, or are not positive.
    #[error("inconsistent batch: recordsCount {count}, lastOffsetDelta {last_offset_delta}")]
    Count {
        /// recordsCount.
        count: i32,
        /// lastOffsetDelta.
        last_offset_delta: i32,
    },
    /// Clients may not write transaction markers.
    #[error("clients are not allowed to write control records")]
    Control,
    /// An idempotent batch without a sequence number.
    #[error("invalid sequence number {seq} in a batch of producer id {producer_id}")]
    Sequence {
        /// Producer id.
        producer_id: i64,
        /// baseSequence.
        seq: i32,
    },
    /// A record is malformed.
    #[error("record {index}: {what}")]
    Record {
        /// Index of the record in its batch.
        index: i32,
        /// What is wrong.
        what: &'static str,
    },
    /// A record's offset delta is not its index.
    #[error("record {index} has offset delta {delta}; deltas must run 0..{count}")]
    OffsetDelta {
        /// Index of the record in its batch.
        index: i32,
        /// The delta it carries.
        delta: i32,
        /// recordsCount.
        count: i32,
    },
    /// The data ends before the header's count of records.
    #[error("batch ends inside record {0}")]
    Truncated(i32),
    /// Bytes follow the last record the header counts.
    #[error("incorrect declared batch size, records still remaining after record {0}")]
    Trailing(i32),
}

impl Invalid {
    /// Whether Kafka would call this corrupt data (CORRUPT_MESSAGE) rather than an invalid
    /// record (INVALID_RECORD): the bytes fail to decompress or name no codec.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Invalid::UnknownCodec(_) | Invalid::Decompress { .. })
    }
}

/// One record refused on its own (KIP-467). The rest of its batch is refused with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFault {
    /// No key, on a compacted topic.
    NoKey,
    /// CreateTime timestamp outside `[now - before.max, now + after.max]`.
    TimestampOutOfRange(i64),
    /// The producer set the LogAppendTime bit.
    LogAppendTimeFromProducer,
}

impl RecordFault {
    /// Whether Kafka answers INVALID_TIMESTAMP for it (otherwise INVALID_RECORD).
    pub fn is_timestamp(&self) -> bool {
        !matches!(self, RecordFault::NoKey)
    }
}

impl std::fmt::Display for RecordFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordFault::NoKey => f.write_str("compacted topic cannot accept message without key"),
            RecordFault::TimestampOutOfRange(ts) => write!(f, "timestamp {ts} is out of range"),
            RecordFault::LogAppendTimeFromProducer => {
                f.write_str("producer should not set timestamp type to LogAppendTime")
            }
        }
    }
}

/// Record errors listed in one produce response at most: librdkafka's default
/// `batch.num.messages`, so a real client's batch is listed in full, while a batch of
/// millions of tiny keyless records (a compressed one can hold that many) does not turn into
/// millions of entries in memory and in the response. Records past it are still refused;
/// clients report them as collateral (`_INVALID_DIFFERENT_RECORD`). Kafka lists them all.
pub const MAX_LISTED_RECORD_ERRORS: usize = 10_000;

/// The records of one batch that were refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordErrors {
    /// `(index in the batch, why)`, in order, at most [`MAX_LISTED_RECORD_ERRORS`].
    pub listed: Vec<(i32, RecordFault)>,
    /// How many records were refused, listed or not.
    pub total: u64,
    /// Whether any of them, listed or not, has a timestamp fault.
    timestamp: bool,
}

impl RecordErrors {
    fn push(&mut self, index: i32, fault: RecordFault) {
        self.total += 1;
        self.timestamp |= fault.is_timestamp();
        if self.listed.len() < MAX_LISTED_RECORD_ERRORS {
            self.listed.push((index, fault));
        }
    }
    /// Whether no record was refused.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
    /// Whether Kafka would answer INVALID_TIMESTAMP (any timestamp fault) rather than
    /// INVALID_RECORD.
    pub fn any_timestamp(&self) -> bool {
        self.timestamp
    }
}

impl std::fmt::Display for RecordErrors {
    /// Kafka's message for a batch refused over record errors: the count and the first three.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [",
            self.total
        )?;
        for (i, (index, fault)) in self.listed.iter().take(3).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "record {index}: {fault}")?;
        }
        f.write_str("]")
    }
}

/// Compression codec of a batch, from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn from_attributes(attrs: i16) -> Result<Codec, Invalid> {
        match attrs & 0x07 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(Invalid::UnknownCodec(other)),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Codec::None => "uncompressed",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// Buffers reused by every validation on a thread: no allocation per batch or per record
/// once warm (gzip and lz4 decoders still set up their own state per batch).
struct Scratch {
    window: Box<[u8]>,
    snappy: Vec<u8>,
    zstd: Option<zstd::zstd_safe::DCtx<'static>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        window: vec![0u8; WINDOW].into_boxed_slice(),
        snappy: Vec::new(),
        zstd: None,
    });
}

/// Check the batch-level rules and every record of `batch` (whose header, length and CRC are
/// already checked). A structural fault is an `Err`; records refused one by one are pushed
/// to `faults`, and the batch must then be refused as a whole as well.
pub fn validate(
    batch: &BatchView<'_>,
    rules: &Rules,
    faults: &mut RecordErrors,
) -> Result<(), Invalid> {
    let count = batch.records_count();
    let last_offset_delta = batch.last_offset_delta();
    // Kafka's LogValidator.validateBatch, for batches from clients.
    if count <= 0 || i64::from(last_offset_delta) + 1 != i64::from(count) {
        return Err(Invalid::Count {
            count,
            last_offset_delta,
        });
    }
    if batch.is_control() {
        return Err(Invalid::Control);
    }
    if batch.producer_id() >= 0 && batch.base_sequence() < 0 {
        return Err(Invalid::Sequence {
            producer_id: batch.producer_id(),
            seq: batch.base_sequence(),
        });
    }
    let codec = Codec::from_attributes(batch.attributes())?;
    let body = batch.bytes().get(HEADER_LEN..).unwrap_or_default();
    let walk = Walk {
        count,
        base_timestamp: batch.base_timestamp(),
        producer_log_append_time: batch.attributes() & ATTR_LOG_APPEND_TIME != 0,
        rules,
    };
    if codec == Codec::None {
        return walk.run(&mut SliceSource { buf: body, pos: 0 }, faults);
    }
    SCRATCH.with(|s| {
        let mut guard = s.borrow_mut();
        let scratch = &mut *guard;
        let result = match codec {
            Codec::Gzip => walk.run(
                &mut Stream::new(
                    flate2::bufread::MultiGzDecoder::new(body),
                    &mut scratch.window[..],
                    codec,
                    rules.max_decompressed,
                ),
                faults,
            ),
            Codec::Snappy => walk.run(
                &mut Stream::new(
                    SnappyReader::new(body, &mut scratch.snappy),
                    &mut scratch.window[..],
                    codec,
                    rules.max_decompressed,
                ),
                faults,
            ),
            Codec::Lz4 => {
                // liblz4's frame decoder sets up its own state per batch. A frame reader of
                // our own over liblz4's block decoder, with no per-batch setup, measured no
                // faster on 20 KiB batches: decompression itself is the cost.
                let decoder = lz4::Decoder::new(body).map_err(|e| decompress_error(codec, &e))?;
                let mut stream = Stream::new(
                    decoder,
                    &mut scratch.window[..],
                    codec,
                    rules.max_decompressed,
                );
                walk.run(&mut stream, faults)?;
                // The records may all be there while the frame's end mark or checksum is
                // not: only a complete frame is accepted.
                stream
                    .reader
                    .finish()
                    .1
                    .map_err(|e| decompress_error(codec, &e))
            }
            Codec::Zstd => {
                let dctx = match scratch.zstd.take() {
                    Some(d) => d,
                    None => new_zstd_context(codec)?,
                };
                let dctx = scratch.zstd.insert(dctx);
                walk.run(
                    &mut Stream::new(
                        zstd::stream::read::Decoder::with_context(body, dctx),
                        &mut scratch.window[..],
                        codec,
                        rules.max_decompressed,
                    ),
                    faults,
                )
            }
            Codec::None => Ok(()),
        };
        if scratch.snappy.capacity() > SNAPPY_KEEP_BYTES {
            scratch.snappy = Vec::new();
        }
        result
    })
}

/// The records region of a batch (`body`: the bytes after its header), decompressed as its
/// `attributes` say, for readers of stored batches outside the produce path (the web
/// console's message browser). The same bounded decoders as [`validate`], and at most `cap`
/// bytes out, else [`Invalid::TooLarge`]: a reader decides how much it will hold in memory.
pub fn decompress_records(attributes: i16, body: &[u8], cap: u64) -> Result<Vec<u8>, Invalid> {
    let codec = Codec::from_attributes(attributes)?;
    let mut out = Vec::new();
    let mut pull = |r: &mut dyn Read| -> Result<(), Invalid> {
        r.take(cap.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| decompress_error(codec, &e))?;
        if out.len() as u64 > cap {
            return Err(Invalid::TooLarge(cap));
        }
        Ok(())
    };
    match codec {
        Codec::None => pull(&mut &body[..])?,
        Codec::Gzip => pull(&mut flate2::bufread::MultiGzDecoder::new(body))?,
        Codec::Snappy => {
            let mut block = Vec::new();
            pull(&mut SnappyReader::new(body, &mut block))?;
        }
        Codec::Lz4 => {
            let mut d = lz4::Decoder::new(body).map_err(|e| decompress_error(codec, &e))?;
            pull(&mut d)?;
        }
        Codec::Zstd => {
            let mut dctx = new_zstd_context(codec)?;
            pull(&mut zstd::stream::read::Decoder::with_context(
                body, &mut dctx,
            ))?;
        }
    }
    Ok(out)
}

fn new_zstd_context(codec: Codec) -> Result<zstd::zstd_safe::DCtx<'static>, Invalid> {
    let mut d = zstd::zstd_safe::DCtx::create();
    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
        ZSTD_WINDOW_LOG_MAX,
    ))
    .map_err(|code| Invalid::Decompress {
        codec: codec.name(),
        msg: zstd::zstd_safe::get_error_name(code).to_string(),
    })?;
    Ok(d)
}

fn decompress_error(codec: Codec, e: &std::io::Error) -> Invalid {
    Invalid::Decompress {
        codec: codec.name(),
        msg: e.to_string(),
    }
}

/// The records region of a batch, however it is stored.
trait Source {
    /// The next byte, or `None` where the records end.
    fn byte(&mut self) -> Result<Option<u8>, Invalid>;
    /// Skip `n` bytes; false if the records end first.
    fn skip(&mut self, n: usize) -> Result<bool, Invalid>;
    /// Bytes consumed so far.
    fn pos(&self) -> u64;
    /// Whether no byte is left.
    fn at_end(&mut self) -> Result<bool, Invalid>;
}

/// An uncompressed batch, read in place.
struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, Invalid> {
        let b = self.buf.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        Ok(b)
    }
    #[inline]
    fn skip(&mut self, n: usize) -> Result<bool, Invalid> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    fn pos(&self) -> u64 {
        self.pos as u64
    }
    fn at_end(&mut self) -> Result<bool, Invalid> {
        Ok(self.pos >= self.buf.len())
    }
}

/// Decompressed records, pulled through the per-thread window and counted against
/// [`MAX_DECOMPRESSED_BATCH_BYTES`].
struct Stream<'w, R> {
    reader: R,
    window: &'w mut [u8],
    start: usize,
    end: usize,
    /// Bytes handed out by the decoder so far.
    pulled: u64,
    eof: bool,
    codec: Codec,
    cap: u64,
}

impl<'w, R: Read> Stream<'w, R> {
    fn new(reader: R, window: &'w mut [u8], codec: Codec, cap: u64) -> Self {
        Stream {
            reader,
            window,
            start: 0,
            end: 0,
            pulled: 0,
            eof: false,
            codec,
            cap,
        }
    }

    /// Refill an empty window; false at the end of the data.
    fn fill(&mut self) -> Result<bool, Invalid> {
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.reader.read(self.window) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(decompress_error(self.codec, &e)),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.pulled = self.pulled.saturating_add(n as u64);
        if self.pulled > self.cap {
            return Err(Invalid::TooLarge(self.cap));
        }
        self.start = 0;
        self.end = n;
        Ok(true)
    }
}

impl<R: Read> Source for Stream<'_, R> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, Invalid> {
        if self.start == self.end && !self.fill()? {
            return Ok(None);
        }
        let b = self.window.get(self.start).copied();
        self.start += 1;
        Ok(b)
    }
    fn skip(&mut self, mut n: usize) -> Result<bool, Invalid> {
        while n > 0 {
            if self.start == self.end && !self.fill()? {
                return Ok(false);
            }
            let k = n.min(self.end - self.start);
            self.start += k;
            n -= k;
        }
        Ok(true)
    }
    fn pos(&self) -> u64 {
        self.pulled - (self.end - self.start) as u64
    }
    fn at_end(&mut self) -> Result<bool, Invalid> {
        Ok(self.start == self.end && !self.fill()?)
    }
}

/// Snappy as Kafka's clients write it: xerial framing (a 16-byte header, then blocks each
/// prefixed by a big-endian u32 length), or one raw snappy block, which xerial's reader also
/// accepts. Each block is decoded whole into a buffer sized by its claimed length, bounded
/// by [`SNAPPY_MAX_RATIO`] times its input.
struct SnappyReader<'a, 'b> {
    input: &'a [u8],
    framed: bool,
    started: bool,
    block: &'b mut Vec<u8>,
    pos: usize,
    len: usize,
}

impl<'a, 'b> SnappyReader<'a, 'b> {
    fn new(input: &'a [u8], block: &'b mut Vec<u8>) -> Self {
        let framed = input.starts_with(XERIAL_MAGIC);
        SnappyReader {
            input: if framed {
                input.get(XERIAL_HEADER_LEN..).unwrap_or_default()
            } else {
                input
            },
            framed,
            started: false,
            block,
            pos: 0,
            len: 0,
        }
    }

    /// Decode the next block; false when there is none.
    fn next_block(&mut self) -> std::io::Result<bool> {
        let corrupt = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
        let compressed = if self.framed {
            if self.input.is_empty() {
                return Ok(false);
            }
            let (len, rest) = self
                .input
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("truncated xerial block length".into()))?;
            let len = usize::try_from(u32::from_be_bytes(*len))
                .map_err(|_| corrupt("xerial block length overflows".into()))?;
            if rest.len() < len {
                return Err(corrupt(format!(
                    "xerial block of {len} bytes, {} left",
                    rest.len()
                )));
            }
            let (block, rest) = rest.split_at(len);
            self.input = rest;
            block
        } else {
            if self.started {
                return Ok(false);
            }
            self.input
        };
        self.started = true;
        let claimed = snap::raw::decompress_len(compressed).map_err(|e| corrupt(e.to_string()))?;
        if claimed > compressed.len().saturating_mul(SNAPPY_MAX_RATIO) {
            return Err(corrupt(format!(
                "block of {} bytes claims {claimed} bytes decompressed",
                compressed.len()
            )));
        }
        self.block.clear();
        self.block.resize(claimed, 0);
        let n = snap::raw::Decoder::new()
            .decompress(compressed, self.block)
            .map_err(|e| corrupt(e.to_string()))?;
        self.pos = 0;
        self.len = n;
        Ok(true)
    }
}

impl Read for SnappyReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.len {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let avail = self.block.get(self.pos..self.len).unwrap_or_default();
        let k = avail.len().min(out.len());
        out[..k].copy_from_slice(&avail[..k]);
        self.pos += k;
        Ok(k)
    }
}

/// The record walk shared by every codec.
struct Walk<'r> {
    count: i32,
    base_timestamp: i64,
    producer_log_append_time: bool,
    rules: &'r Rules,
}

impl Walk<'_> {
    fn run<S: Source>(&self, src: &mut S, faults: &mut RecordErrors) -> Result<(), Invalid> {
        for index in 0..self.count {
            self.record(src, index, faults)?;
        }
        if src.at_end()? {
            Ok(())
        } else {
            Err(Invalid::Trailing(self.count - 1))
        }
    }

    /// Read one record as Kafka's `DefaultRecord.readFrom` does, skipping key, value and
    /// headers, and check it.
    fn record<S: Source>(
        &self,
        src: &mut S,
        index: i32,
        faults: &mut RecordErrors,
    ) -> Result<(), Invalid> {
        let bad = |what| Invalid::Record { index, what };
        let size = varint(src, index)?;
        let size = u64::try_from(size).map_err(|_| bad("negative record length"))?;
        let start = src.pos();
        let end = start.saturating_add(size);
        // A length that runs past the record: skips stay inside it, so a huge length can't
        // hide the next record's bytes or be used to skip unchecked data.
        let within = |src: &S, n: u64| src.pos().checked_add(n).is_some_and(|e| e <= end);
        let _attributes = src.byte()?.ok_or(Invalid::Truncated(index))?;
        let timestamp_delta = varlong(src, index)?;
        let offset_delta = varint(src, index)?;
        if offset_delta != index {
            return Err(Invalid::OffsetDelta {
                index,
                delta: offset_delta,
                count: self.count,
            });
        }
        let key_len = varint(src, index)?;
        if key_len >= 0 {
            skip_within(src, key_len, within(src, key_len as u64), index)?;
        }
        let value_len = varint(src, index)?;
        if value_len >= 0 {
            skip_within(src, value_len, within(src, value_len as u64), index)?;
        }
        let headers = varint(src, index)?;
        if headers < 0 {
            return Err(bad("negative number of headers"));
        }
        for _ in 0..headers {
            let key_len = varint(src, index)?;
            if key_len < 0 {
                return Err(bad("negative header key length"));
            }
            skip_within(src, key_len, within(src, key_len as u64), index)?;
            let value_len = varint(src, index)?;
            if value_len >= 0 {
                skip_within(src, value_len, within(src, value_len as u64), index)?;
            }
            if src.pos() > end {
                return Err(bad("headers run past the record length"));
            }
        }
        if src.pos() != end {
            return Err(bad("record length does not match its fields"));
        }

        if self.rules.compacted && key_len < 0 {
            faults.push(index, RecordFault::NoKey);
            return Ok(());
        }
        // Kafka's LogValidator.validateTimestamp.
        let timestamp = self.base_timestamp.wrapping_add(timestamp_delta);
        if !self.rules.log_append_time && timestamp != NO_TIMESTAMP {
            let diff = i128::from(self.rules.now_ms) - i128::from(timestamp);
            if (diff > 0 && diff > i128::from(self.rules.before_max_ms))
                || (diff < 0 && -diff > i128::from(self.rules.after_max_ms))
            {
                faults.push(index, RecordFault::TimestampOutOfRange(timestamp));
            }
        } else if self.producer_log_append_time {
            faults.push(index, RecordFault::LogAppendTimeFromProducer);
        }
        Ok(())
    }
}

fn skip_within<S: Source>(src: &mut S, n: i32, within: bool, index: i32) -> Result<(), Invalid> {
    if !within {
        return Err(Invalid::Record {
            index,
            what: "a field runs past the record length",
        });
    }
    let n = usize::try_from(n).map_err(|_| Invalid::Record {
        index,
        what: "negative field length",
    })?;
    if src.skip(n)? {
        Ok(())
    } else {
        Err(Invalid::Truncated(index))
    }
}

/// Kafka's zigzag varint: at most 5 bytes, as `ByteUtils.readVarint` requires.
#[inline]
fn varint<S: Source>(src: &mut S, index: i32) -> Result<i32, Invalid> {
    let mut raw: u32 = 0;
    for i in 0..5 {
        let b = src.byte()?.ok_or(Invalid::Truncated(index))?;
        raw |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
        }
    }
    Err(Invalid::Record {
        index,
        what: "varint is longer than 5 bytes",
    })
}

/// Kafka's zigzag varlong: at most 10 bytes.
#[inline]
fn varlong<S: Source>(src: &mut S, index: i32) -> Result<i64, Invalid> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let b = src.byte()?.ok_or(Invalid::Truncated(index))?;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(Invalid::Record {
        index,
        what: "varlong is longer than 10 bytes",
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::log::batch::{ATTR_CONTROL, LOG_OVERHEAD};

    const NOW: i64 = 1_700_000_000_000;

    fn rules() -> Rules {
        Rules {
            compacted: false,
            log_append_time: false,
            before_max_ms: i64::MAX,
            after_max_ms: 3_600_000,
            now_ms: NOW,
            max_decompressed: MAX_DECOMPRESSED_BATCH_BYTES,
        }
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    #[derive(Clone)]
    struct Rec {
        ts_delta: i64,
        offset_delta: i32,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    }

    fn rec(i: i32) -> Rec {
        Rec {
            ts_delta: i64::from(i),
            offset_delta: i,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 20]),
            headers: vec![(b"h".to_vec(), Some(b"x".to_vec()))],
        }
    }

    fn encode(r: &Rec) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varint(&mut body, r.ts_delta);
        put_varint(&mut body, i64::from(r.offset_delta));
        for field in [&r.key, &r.value] {
            match field {
                Some(b) => {
                    put_varint(&mut body, b.len() as i64);
                    body.extend_from_slice(b);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_varint(&mut body, k.len() as i64);
            body.extend_from_slice(k);
            match v {
                Some(v) => {
                    put_varint(&mut body, v.len() as i64);
                    body.extend_from_slice(v);
                }
                None => put_varint(&mut body, -1),
            }
        }
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        out
    }

    fn records(recs: &[Rec]) -> Vec<u8> {
        recs.iter().flat_map(encode).collect()
    }

    /// A batch around `body` (records, compressed by `codec` bits), with its CRC set.
    fn batch(body: &[u8], count: i32, last_offset_delta: i32, attrs: i16) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(body);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[27..35].copy_from_slice(&NOW.to_be_bytes());
        b[35..43].copy_from_slice(&NOW.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn simple(recs: &[Rec]) -> Vec<u8> {
        let n = recs.len() as i32;
        batch(&records(recs), n, n - 1, 0)
    }

    fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
        match codec {
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(raw).unwrap();
                e.finish().unwrap()
            }
            // xerial framing, in two blocks
            2 => {
                let mut out = XERIAL_MAGIC.to_vec();
                out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
                let mid = raw.len() / 2;
                for part in [&raw[..mid], &raw[mid..]] {
                    let c = snap::raw::Encoder::new().compress_vec(part).unwrap();
                    out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                    out.extend_from_slice(&c);
                }
                out
            }
            // Independent blocks, as Kafka's clients write them.
            3 => lz4_frame(raw, |b| {
                b.block_mode(lz4::BlockMode::Independent)
                    .checksum(lz4::ContentChecksum::NoChecksum);
            }),
            4 => zstd::encode_all(raw, 3).unwrap(),
            _ => raw.to_vec(),
        }
    }

    fn lz4_frame(raw: &[u8], set: impl FnOnce(&mut lz4::EncoderBuilder)) -> Vec<u8> {
        let mut builder = lz4::EncoderBuilder::new();
        set(&mut builder);
        let mut e = builder.build(Vec::new()).unwrap();
        e.write_all(raw).unwrap();
        let (out, r) = e.finish();
        r.unwrap();
        out
    }

    fn check_all(b: &[u8], rules: &Rules) -> Result<RecordErrors, Invalid> {
        let (view, rest) = BatchView::split_first(b).unwrap().unwrap();
        assert!(rest.is_empty());
        view.validate().unwrap();
        let mut faults = RecordErrors::default();
        validate(&view, rules, &mut faults)?;
        Ok(faults)
    }

    fn check(b: &[u8], rules: &Rules) -> Result<Vec<(i32, RecordFault)>, Invalid> {
        let faults = check_all(b, rules)?;
        assert_eq!(faults.total, faults.listed.len() as u64);
        Ok(faults.listed)
    }

    fn run(b: &[u8]) -> Result<Vec<(i32, RecordFault)>, Invalid> {
        check(b, &rules())
    }

    fn many(n: i32) -> Vec<Rec> {
        (0..n).map(rec).collect()
    }

    #[test]
    fn good_batches_pass_with_every_codec() {
        let recs = many(50);
        for codec in 0..=4 {
            let b = batch(&compress(codec, &records(&recs)), 50, 49, codec);
            assert_eq!(run(&b), Ok(vec![]), "codec {codec}");
        }
        // Raw snappy, without xerial framing, as librdkafka may send it.
        let raw = snap::raw::Encoder::new()
            .compress_vec(&records(&recs))
            .unwrap();
        assert_eq!(run(&batch(&raw, 50, 49, 2)), Ok(vec![]));
        // The shared test batch of the other modules, too.
        assert_eq!(
            run(&crate::log::batch::tests::make_batch(3, NOW, -1, -1)),
            Ok(vec![])
        );
    }

    #[test]
    fn every_kind_of_lz4_frame_is_read() {
        use lz4::liblz4::BlockChecksum;
        use lz4::{BlockMode, BlockSize, ContentChecksum};
        let mut big = rec(0);
        big.value = Some(rk_noise(300_000));
        let raw = records(&[big, rec(1), rec(2)]);
        let frames = [
            lz4_frame(&raw, |b| {
                b.block_mode(BlockMode::Independent)
                    .checksum(ContentChecksum::NoChecksum)
                    .block_checksum(BlockChecksum::BlockChecksumEnabled)
                    .block_size(BlockSize::Max256KB);
            }),
            lz4_frame(&raw, |b| {
                b.block_mode(BlockMode::Independent)
                    .checksum(ContentChecksum::NoChecksum)
                    .block_checksum(BlockChecksum::NoBlockChecksum)
                    .content_size(raw.len() as u64)
                    .block_size(BlockSize::Max4MB);
            }),
            lz4_frame(&raw, |b| {
                b.block_mode(BlockMode::Linked);
            }),
            lz4_frame(&raw, |b| {
                b.block_mode(BlockMode::Independent)
                    .checksum(ContentChecksum::ChecksumEnabled);
            }),
        ];
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(run(&batch(f, 3, 2, 3)), Ok(vec![]), "frame {i}");
        }
        // A flipped bit in the frame's header checksum, a block checksum, and the content
        // size: each is refused, as liblz4 (and so every consumer) would refuse it.
        let mut bad_hc = frames[0].clone();
        bad_hc[6] ^= 1;
        let mut bad_block_sum = frames[0].clone();
        let n = bad_block_sum.len();
        bad_block_sum[n - 5] ^= 1; // last block's checksum, before the end mark
        let mut bad_size = frames[1].clone();
        bad_size[6] ^= 1; // content size, then the header checksum no longer matches
        for (what, f) in [
            ("hc", bad_hc),
            ("block sum", bad_block_sum),
            ("size", bad_size),
        ] {
            let err = run(&batch(&f, 3, 2, 3)).unwrap_err();
            assert!(err.is_corrupt(), "{what}: {err:?}");
        }
    }

    /// Poorly compressible bytes, so lz4 writes several compressed and raw blocks.
    fn rk_noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 99;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    b'a'
                } else {
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn a_record_larger_than_the_window_streams_through() {
        let mut big = rec(0);
        big.value = Some(vec![7u8; 3 * WINDOW + 17]);
        let recs = vec![big, rec(1)];
        for codec in 0..=4 {
            let b = batch(&compress(codec, &records(&recs)), 2, 1, codec);
            assert_eq!(run(&b), Ok(vec![]), "codec {codec}");
        }
    }

    #[test]
    fn garbage_inside_a_compressed_batch_is_corrupt() {
        for codec in 1..=4 {
            let garbage = crate::log::batch::tests::make_batch(4, 1, -1, -1);
            let b = batch(&garbage, 4, 3, codec);
            let err = run(&b).unwrap_err();
            assert!(
                matches!(err, Invalid::Decompress { .. }) && err.is_corrupt(),
                "codec {codec}: {err:?}"
            );
        }
    }

    #[test]
    fn truncated_compressed_data_is_corrupt() {
        let raw = records(&many(10));
        for codec in 1..=4 {
            let c = compress(codec, &raw);
            let b = batch(&c[..c.len() - 4], 10, 9, codec);
            assert!(run(&b).is_err(), "codec {codec}");
        }
    }

    #[test]
    fn unknown_codec_is_corrupt() {
        let b = batch(&records(&many(1)), 1, 0, 5);
        assert_eq!(run(&b), Err(Invalid::UnknownCodec(5)));
    }

    #[test]
    fn header_counts_must_agree() {
        let body = records(&many(3));
        assert!(matches!(
            run(&batch(&body, 3, 1, 0)),
            Err(Invalid::Count { .. })
        ));
        assert!(matches!(
            run(&batch(&[], 0, 0, 0)),
            Err(Invalid::Count { .. })
        ));
        // The header claims more records than there are.
        assert_eq!(run(&batch(&body, 4, 3, 0)), Err(Invalid::Truncated(3)));
        // And fewer: the rest is left over.
        assert_eq!(run(&batch(&body, 2, 1, 0)), Err(Invalid::Trailing(1)));
        // The same through a codec.
        let z = compress(4, &body);
        assert_eq!(run(&batch(&z, 4, 3, 4)), Err(Invalid::Truncated(3)));
        assert_eq!(run(&batch(&z, 2, 1, 4)), Err(Invalid::Trailing(1)));
    }

    #[test]
    fn offset_deltas_must_run_from_zero() {
        let mut recs = many(3);
        recs[2].offset_delta = 5;
        assert_eq!(
            run(&simple(&recs)),
            Err(Invalid::OffsetDelta {
                index: 2,
                delta: 5,
                count: 3
            })
        );
        let mut recs = many(2);
        recs[0].offset_delta = 1;
        recs[1].offset_delta = 0;
        assert!(matches!(
            run(&simple(&recs)),
            Err(Invalid::OffsetDelta { index: 0, .. })
        ));
    }

    #[test]
    fn record_lengths_must_match_their_fields() {
        // Length one byte longer than the fields: the next record's first byte is eaten.
        let mut body = records(&many(2));
        body[0] += 2; // zigzag: +1
        let err = run(&batch(&body, 2, 1, 0)).unwrap_err();
        assert!(matches!(err, Invalid::Record { index: 0, .. }), "{err:?}");
        // A negative record length.
        let mut body = Vec::new();
        put_varint(&mut body, -3);
        body.extend_from_slice(&[0; 8]);
        assert!(matches!(
            run(&batch(&body, 1, 0, 0)),
            Err(Invalid::Record { index: 0, .. })
        ));
        // A key length past the end of the record, inside the batch.
        let mut r = rec(0);
        r.key = Some(b"abc".to_vec());
        let mut enc = encode(&r);
        let key_len_at = enc.iter().position(|&b| b == 6).unwrap(); // zigzag 3
        enc[key_len_at] = 100; // zigzag 50
        enc.extend_from_slice(&[0; 60]);
        assert!(matches!(
            run(&batch(&enc, 1, 0, 0)),
            Err(Invalid::Record { index: 0, .. })
        ));
        // A record length past the end of the batch.
        let mut body = records(&many(1));
        body[0] = 0x7e; // zigzag 63
        assert!(run(&batch(&body, 1, 0, 0)).is_err());
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut body = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        body.extend_from_slice(&[0; 16]);
        assert!(matches!(
            run(&batch(&body, 1, 0, 0)),
            Err(Invalid::Record {
                what: "varint is longer than 5 bytes",
                ..
            })
        ));
    }

    #[test]
    fn headers_must_be_well_formed() {
        // Negative header count: hand-build the record.
        let mut body = vec![0u8];
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, -2);
        let mut neg_count = Vec::new();
        put_varint(&mut neg_count, body.len() as i64);
        neg_count.extend_from_slice(&body);
        assert_eq!(
            run(&batch(&neg_count, 1, 0, 0)),
            Err(Invalid::Record {
                index: 0,
                what: "negative number of headers"
            })
        );
        // A header without a key.
        let mut body = vec![0u8];
        for v in [0, 0, -1, -1, 1, -1, -1] {
            put_varint(&mut body, v);
        }
        let mut no_key = Vec::new();
        put_varint(&mut no_key, body.len() as i64);
        no_key.extend_from_slice(&body);
        assert_eq!(
            run(&batch(&no_key, 1, 0, 0)),
            Err(Invalid::Record {
                index: 0,
                what: "negative header key length"
            })
        );
    }

    #[test]
    fn compacted_topics_refuse_keyless_records_one_by_one() {
        let mut recs = many(100);
        let keyless: Vec<i32> = (0..10).map(|i| i * 9 + 3).collect();
        for &i in &keyless {
            recs[i as usize].key = None;
        }
        let compacted = Rules {
            compacted: true,
            ..rules()
        };
        for codec in [0, 4] {
            let b = batch(&compress(codec, &records(&recs)), 100, 99, codec);
            let faults = check(&b, &compacted).unwrap();
            let idx: Vec<i32> = faults.iter().map(|f| f.0).collect();
            assert_eq!(idx, keyless, "codec {codec}");
            assert!(faults.iter().all(|f| f.1 == RecordFault::NoKey));
            // Not compacted: keys are optional.
            assert_eq!(run(&b), Ok(vec![]));
        }
        let mut two = RecordErrors::default();
        two.push(3, RecordFault::NoKey);
        two.push(12, RecordFault::NoKey);
        let msg = two.to_string();
        assert!(msg.contains("2 record errors"), "{msg}");
        assert!(!two.any_timestamp());
    }

    #[test]
    fn listed_record_errors_are_capped() {
        let n = MAX_LISTED_RECORD_ERRORS as i32 + 5;
        let recs: Vec<Rec> = (0..n)
            .map(|i| Rec {
                key: None,
                value: None,
                headers: vec![],
                ..rec(i)
            })
            .collect();
        let compacted = Rules {
            compacted: true,
            ..rules()
        };
        let b = batch(&compress(4, &records(&recs)), n, n - 1, 4);
        let faults = check_all(&b, &compacted).unwrap();
        assert_eq!(faults.total, n as u64);
        assert_eq!(faults.listed.len(), MAX_LISTED_RECORD_ERRORS);
        assert!(faults.to_string().contains(&format!("{n} record errors")));
    }

    #[test]
    fn timestamps_are_checked_against_the_topic_limits() {
        let mut recs = many(3);
        recs[1].ts_delta = 3_600_001; // one ms past after.max.ms
        let faults = run(&simple(&recs)).unwrap();
        assert_eq!(
            faults,
            vec![(1, RecordFault::TimestampOutOfRange(NOW + 3_600_001))]
        );
        assert!(faults[0].1.is_timestamp());
        let mut recs = many(2);
        recs[0].ts_delta = -10_001;
        let strict = Rules {
            before_max_ms: 10_000,
            ..rules()
        };
        assert_eq!(
            check(&simple(&recs), &strict).unwrap(),
            vec![(0, RecordFault::TimestampOutOfRange(NOW - 10_001))]
        );
        // LogAppendTime topics ignore producer timestamps.
        let lat = Rules {
            log_append_time: true,
            ..strict
        };
        assert_eq!(check(&simple(&recs), &lat), Ok(vec![]));
        // A producer may not set the LogAppendTime bit itself.
        let n = 2;
        let b = batch(&records(&many(n)), n, n - 1, ATTR_LOG_APPEND_TIME);
        assert_eq!(
            check(&b, &lat).unwrap(),
            vec![
                (0, RecordFault::LogAppendTimeFromProducer),
                (1, RecordFault::LogAppendTimeFromProducer)
            ]
        );
    }

    #[test]
    fn control_batches_and_missing_sequences_are_refused() {
        let b = batch(&records(&many(1)), 1, 0, ATTR_CONTROL);
        assert_eq!(run(&b), Err(Invalid::Control));
        let mut b = simple(&many(1));
        b[43..51].copy_from_slice(&7i64.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            run(&b),
            Err(Invalid::Sequence {
                producer_id: 7,
                seq: -1
            })
        );
    }

    #[test]
    fn decompression_is_capped() {
        // 2 MiB of one value compresses to almost nothing; the cap here is 1 MiB.
        let mut big = rec(0);
        big.value = Some(vec![0u8; 2 << 20]);
        let raw = records(&[big]);
        let small = Rules {
            max_decompressed: 1 << 20,
            ..rules()
        };
        for codec in 1..=4 {
            let c = compress(codec, &raw);
            assert!(c.len() < 200_000, "codec {codec}: {} bytes", c.len());
            let b = batch(&c, 1, 0, codec);
            assert_eq!(
                check(&b, &small),
                Err(Invalid::TooLarge(1 << 20)),
                "codec {codec}"
            );
            assert_eq!(check(&b, &rules()), Ok(vec![]), "codec {codec}");
        }
    }

    #[test]
    fn a_snappy_block_claiming_too_much_is_refused_before_allocation() {
        // A raw snappy stream whose length prefix claims 1 GiB, backed by 3 bytes.
        let mut s = Vec::new();
        let mut n: u32 = 1 << 30;
        while n >= 0x80 {
            s.push((n as u8) | 0x80);
            n >>= 7;
        }
        s.push(n as u8);
        s.extend_from_slice(&[0, 0, 0]);
        let err = run(&batch(&s, 1, 0, 2)).unwrap_err();
        assert!(
            matches!(&err, Invalid::Decompress { msg, .. } if msg.contains("claims")),
            "{err:?}"
        );
    }

    #[test]
    fn stored_records_decompress_within_a_cap() {
        let raw: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in 0..=4 {
            let packed = compress(codec, &raw);
            let out = decompress_records(codec, &packed, raw.len() as u64).unwrap();
            assert_eq!(out, raw, "codec {codec}");
            let err = decompress_records(codec, &packed, raw.len() as u64 - 1).unwrap_err();
            assert_eq!(
                err,
                Invalid::TooLarge(raw.len() as u64 - 1),
                "codec {codec}"
            );
        }
        assert!(matches!(
            decompress_records(1, b"not gzip", 1 << 20),
            Err(Invalid::Decompress { .. })
        ));
    }
}
