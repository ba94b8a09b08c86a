//! One partition's log: its segments, log start / end offsets, the high watermark, the
//! idempotent and transactional producer table (transaction markers, the last stable
//! offset, `read_committed` reads), and the group-commit flush.
//!
//! State sits behind a short `std::sync::Mutex` that is never held across an await or a
//! bulk read; fetches locate whole batches (reading only their headers) after dropping it,
//! and the bytes go to the socket from the file.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::batch::{self, BatchView};
use super::producer::{ProducerInfo, ProducerState, SeqCheck};
use super::segment::{FileRegion, ReadSlice, Segment, Truncation};
use super::txn_index::{self, AbortedTxn, Marker};
use super::validate;
use super::{Error, LogConfig, TimestampType};

/// File holding the producer table at the last checkpoint.
const PRODUCER_SNAPSHOT: &str = "producer-state.snapshot";

/// What a successful append reports back to the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record written (or of the original, for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record written.
    pub last_offset: i64,
    /// LogAppendTime stamped by the broker, -1 for CreateTime topics.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Whether the batch was a retry already in the log.
    pub duplicate: bool,
}

/// A closed segment as the cleaner sees it ([`Partition::cleanable`] hands them out).
#[derive(Debug, Clone)]
pub struct Target {
    /// Base offset.
    pub base: i64,
    /// Base offset of the next segment.
    pub end: i64,
    /// Shared handle of the `.log` file.
    pub file: Arc<std::fs::File>,
    /// Size in bytes.
    pub size: u64,
    /// Newest record timestamp in the segment.
    pub max_timestamp: i64,
}

/// A partition's offsets and size at one moment ([`Partition::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// Log start offset.
    pub log_start: i64,
    /// Log end offset (the next offset to be written).
    pub log_end: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Bytes of all segments.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
}

/// Why an append was refused; the produce handler maps each to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The records failed validation (CRC, magic, length).
    #[error("invalid record batch: {0}")]
    Corrupt(Error),
    /// A batch is larger than `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// Limit in force.
        max: usize,
    },
    /// The records inside a batch are malformed (Kafka's LogValidator refuses it).
    #[error("invalid record batch: {0}")]
    Invalid(validate::Invalid),
    /// Records refused one by one (KIP-467): `(index in the batch, why)`. The whole batch
    /// is refused with them.
    #[error("{0}")]
    Records(validate::RecordErrors),
    /// The whole request is larger than a segment.
    #[error("record set of {0} bytes is larger than a segment")]
    ListTooLarge(usize),
    /// Producer epoch older than the current one.
    #[error("producer epoch is fenced")]
    Fenced,
    /// A non-transactional write from a producer with a transaction open here.
    #[error("a non-transactional batch from a producer whose transaction is open")]
    InvalidTxnState,
    /// Sequence gap.
    #[error("out of order sequence number: expected {0}")]
    OutOfOrder(i32),
    /// The disk failed us.
    #[error(transparent)]
    Storage(Error),
}

/// Result of a read for a fetch.
#[derive(Debug, Clone)]
pub struct FetchData {
    /// Whole batches starting with the one that contains the requested offset.
    pub records: Bytes,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Last stable offset at the time of the read.
    pub last_stable_offset: i64,
    /// Aborted transactions overlapping the records (`read_committed` only; empty for
    /// `read_uncommitted`).
    pub aborted: Vec<AbortedTxn>,
}

/// Result of [`Partition::read_region`]: where the batches are, not their bytes.
#[derive(Debug, Clone)]
pub struct FetchRegion {
    /// Whole batches starting with the one that contains the requested offset; `None` when
    /// there is nothing to send.
    pub region: Option<FileRegion>,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Last stable offset at the time of the read.
    pub last_stable_offset: i64,
    /// Aborted transactions overlapping the region ([`Partition::read_region_committed`]
    /// only; empty for `read_uncommitted`), in offset order.
    pub aborted: Vec<AbortedTxn>,
}

/// Why a read was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Below the log start or above the high watermark.
    #[error("offset {offset} is out of range [{log_start}, {high_watermark}]")]
    OutOfRange {
        /// Requested offset.
        offset: i64,
        /// First readable offset.
        log_start: i64,
        /// High watermark.
        high_watermark: i64,
    },
    /// The disk failed us.
    #[error(transparent)]
    Storage(#[from] Error),
}

struct State {
    /// Sorted by base offset; the last one is active. Never empty.
    segments: Vec<Segment>,
    log_start: i64,
    log_end: i64,
    /// High watermark and the byte position in the segment where it ends.
    hw: i64,
    hw_segment: i64,
    hw_position: u64,
    /// Everything below this offset is fsynced.
    recovery_point: i64,
    unflushed_messages: i64,
    producers: ProducerState,
    config: Arc<LogConfig>,
    scratch: Vec<u8>,
    /// Compaction has cleaned everything below this offset (kept in memory: after a
    /// restart the whole log counts as dirty once).
    first_dirty: i64,
}

impl State {
    fn active(&mut self) -> &mut Segment {
        // `segments` is never empty: open and roll both guarantee one segment.
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }
    fn active_ref(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }
    /// Run `f` on segment `i`. If it finds the segment's index wrong, rebuild the index
    /// from the log, say so, and run `f` again.
    fn with_index<T>(
        &mut self,
        i: usize,
        f: impl Fn(&Segment) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let Some(seg) = self.segments.get_mut(i) else {
            return Err(Error::Corrupt {
                path: PathBuf::new(),
                msg: format!("no segment {i}"),
            });
        };
        match f(seg) {
            Err(Error::BadIndex { path, msg }) => {
                warn!(
                    "rebuilding {} from the log: wrong index {msg}",
                    path.display()
                );
                if let Some(t) = seg.rebuild_indexes()? {
                    warn!(
                        "truncated {} bytes at offset {} in {}: {}",
                        t.bytes,
                        t.at_offset,
                        seg.log_path().display(),
                        t.reason
                    );
                }
                f(seg)
            }
            r => r,
        }
    }

    /// Last stable offset: the first offset of the earliest open transaction, but never
    /// past the high watermark (which lags the log end while `flush.messages` waits for
    /// an fsync) nor below the log start (Kafka's `firstUnstableOffset` is bounded the
    /// same way).
    fn last_stable(&self) -> i64 {
        self.producers
            .first_unstable()
            .map_or(self.hw, |f| f.min(self.hw))
            .max(self.log_start)
    }

    /// (segment base, byte position) where the batch holding `offset` starts, for an
    /// offset below the high watermark; the end of the segment when no batch there holds it
    /// (a gap compaction left).
    fn position_of(&mut self, offset: i64) -> Result<(i64, u64), Error> {
        let i = self
            .segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        let found = self.with_index(i, |seg| seg.find(offset))?;
        let seg = &self.segments[i];
        Ok((seg.base_offset(), found.map_or(seg.size(), |(pos, _)| pos)))
    }

    /// Account for `count` records just written, the log now ending before `next`. Unless
    /// the flush policy wants an fsync first, the high watermark moves to the end; returns
    /// whether the caller must flush.
    fn advance_end(&mut self, next: i64, count: i64, hw: &AtomicI64) -> bool {
        self.log_end = next;
        self.unflushed_messages += count;
        let needs_flush = self.unflushed_messages >= self.config.flush_messages;
        if !needs_flush {
            self.set_hw_to_end();
            hw.store(self.hw, Ordering::Release);
        }
        needs_flush
    }

    fn set_hw_to_end(&mut self) {
        self.hw = self.log_end;
        let (base, size) = {
            let a = self.active_ref();
            (a.base_offset(), a.size())
        };
        self.hw_segment = base;
        self.hw_position = size;
    }
}

/// One partition of a topic.
pub struct Partition {
    topic: Arc<str>,
    index: i32,
    dir: PathBuf,
    state: Mutex<State>,
    flush_lock: Mutex<()>,
    /// Serialises [`Partition::flush_all`]'s snapshot writes (they share a temp file).
    snapshot_lock: Mutex<()>,
    /// Signalled after every advance of the high watermark; fetches long-poll on it.
    pub notify: Notify,
    hw: AtomicI64,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.index)
    }
}

/// Now in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Base offsets of the `.log` files in a partition directory, sorted.
fn list_segments(dir: &Path) -> Result<Vec<i64>, Error> {
    // A `.log.swap` is a compacted segment whose replacement was committed: finish it.
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".log.swap") {
            let log = dir.join(format!("{stem}.log"));
            for ext in ["index", "timeindex"] {
                let p = dir.join(format!("{stem}.{ext}"));
                if p.exists() {
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
            // The compacted segment's transaction index was renamed into place before the
            // log's swap was committed.
            let txn_swap = dir.join(format!("{stem}.txnindex.swap"));
            if txn_swap.exists() {
                let txn = dir.join(format!("{stem}.txnindex"));
                std::fs::rename(&txn_swap, &txn).map_err(|e| Error::io(&txn, e))?;
            }
            std::fs::rename(entry.path(), &log).map_err(|e| Error::io(&log, e))?;
            warn!(path = %log.display(), "completed an interrupted compaction swap");
        }
    }
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        } else if name.ends_with(".cleaned")
            || name.ends_with(".deleted")
            || name.ends_with(".txnindex.swap")
        {
            // Leftovers of an interrupted segment replacement: the original is still there.
            let p = entry.path();
            warn!(path = %p.display(), "removing leftover file from an interrupted operation");
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Replay the producer facts of one segment found by recovery, those at or past `from`,
/// into the producer table, rebuilding the segment's aborted-transaction index for that
/// range as Kafka's segment recovery does (each ABORT that ends a transaction holding data
/// gets an entry).
fn replay(
    seg: &mut Segment,
    producers: &mut ProducerState,
    facts: &[super::producer::LogFact],
    from: i64,
) -> Result<(), Error> {
    seg.txn_index_mut().truncate_to(from)?;
    for f in facts.iter().filter(|f| f.offset() >= from) {
        if let Some(done) = producers.apply(f) {
            if done.aborted {
                let last_stable_offset = producers.first_unstable().unwrap_or(done.last_offset + 1);
                seg.txn_index_mut().append(AbortedTxn {
                    producer_id: done.producer_id,
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                    last_stable_offset,
                })?;
            }
        }
    }
    Ok(())
}

impl Partition {
    /// Open (or create) the partition in `dir`, recovering its log. `recovery_point` is
    /// the checkpointed offset below which data is known to be fsynced; batches from there
    /// on are CRC-checked and a torn tail is truncated, with a log line.
    pub fn open(
        topic: Arc<str>,
        index: i32,
        dir: &Path,
        config: Arc<LogConfig>,
        recovery_point: Option<i64>,
        log_start: Option<i64>,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = now_ms();
        let bases = list_segments(dir)?;
        let (mut producers, snapshot_at) =
            match std::fs::read_to_string(dir.join(PRODUCER_SNAPSHOT)) {
                Ok(text) => ProducerState::from_snapshot(&text),
                Err(_) => (ProducerState::default(), None),
            };
        let rp = recovery_point.unwrap_or(0);
        // The snapshot is the producer table as it was when the log ended at
        // `snapshot_at`, and everything below that offset (log and `.txnindex`) was
        // fsynced before the snapshot was written. So the log is replayed into the table,
        // and the aborted-transaction index rebuilt, from there; batches are CRC-checked
        // from the recovery point or the snapshot, whichever is lower. An older snapshot
        // that does not say its offset is taken to match the recovery point.
        let replay_from = snapshot_at.unwrap_or(rp);
        let scan_from = rp.min(replay_from);
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut truncated: Option<(usize, Truncation)> = None;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            match next_base {
                Some(next) if next <= scan_from => {
                    segments.push(Segment::open_closed(
                        dir,
                        base,
                        next,
                        config.segment_index_bytes,
                        now,
                    )?);
                }
                _ => {
                    let (mut seg, trunc, facts) =
                        Segment::open(dir, base, config.segment_index_bytes, Some(scan_from), now)?;
                    replay(&mut seg, &mut producers, &facts, replay_from)?;
                    if let Some(t) = &trunc {
                        // Kafka drops the index entries of a cut tail with it.
                        seg.txn_index_mut().truncate_to(t.at_offset)?;
                    }
                    segments.push(seg);
                    if let Some(t) = trunc {
                        truncated = Some((i, t));
                        break;
                    }
                }
            }
        }
        if let Some((i, t)) = &truncated {
            let path = segments[*i].log_path().display().to_string();
            warn!(
                "truncated {} bytes at offset {} in {path}: {}",
                t.bytes, t.at_offset, t.reason
            );
            for &base in &bases[i + 1..] {
                let (seg, _, _) = Segment::open(dir, base, config.segment_index_bytes, None, now)?;
                warn!(
                    "deleted segment {} after the truncation point",
                    seg.log_path().display()
                );
                seg.delete_files()?;
            }
        }
        // Empty trailing segments are harmless; an empty log gets a first segment.
        if segments.is_empty() {
            let base = log_start.unwrap_or(0).max(0);
            segments.push(Segment::create(dir, base, config.segment_index_bytes, now)?);
        }
        let log_end = segments
            .last()
            .map_or(0, |s| s.next_offset().max(s.base_offset()));
        if snapshot_at.is_some_and(|at| at > log_end) {
            warn!(
                topic = %topic,
                partition = index,
                log_end,
                "the producer snapshot is ahead of the log; forgetting what lies past its end"
            );
        }
        producers.truncate_to(log_end);
        let first_base = segments.first().map_or(0, Segment::base_offset);
        let log_start = log_start.unwrap_or(first_base).clamp(first_base, log_end);
        let mut state = State {
            segments,
            log_start,
            log_end,
            hw: 0,
            hw_segment: 0,
            hw_position: 0,
            recovery_point: rp.min(log_end),
            unflushed_messages: 0,
            producers,
            config,
            scratch: Vec::new(),
            first_dirty: 0,
        };
        state.set_hw_to_end();
        if truncated.is_some() {
            // Make the cut durable before anything new lands after it.
            state.active_ref().sync()?;
            state.recovery_point = log_end;
        }
        let hw = state.hw;
        info!(topic = %topic, partition = index, log_start, log_end, "partition loaded");
        Ok(Partition {
            topic,
            index,
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            flush_lock: Mutex::new(()),
            snapshot_lock: Mutex::new(()),
            notify: Notify::new(),
            hw: AtomicI64::new(hw),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves state that is still structurally valid
        // (every mutation is completed before the next step), so recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Partition index.
    pub fn index(&self) -> i32 {
        self.index
    }
    /// Partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// High watermark (readable end), without taking the lock.
    pub fn high_watermark(&self) -> i64 {
        self.hw.load(Ordering::Acquire)
    }
    /// (log start, log end, high watermark, recovery point).
    pub fn offsets(&self) -> (i64, i64, i64, i64) {
        let s = self.lock();
        (s.log_start, s.log_end, s.hw, s.recovery_point)
    }
    /// Offsets, size and segment count under one short lock, for the metrics page.
    pub fn stats(&self) -> LogStats {
        let s = self.lock();
        LogStats {
            log_start: s.log_start,
            log_end: s.log_end,
            high_watermark: s.hw,
            size_bytes: s.segments.iter().map(Segment::size).sum(),
            segments: s.segments.len(),
        }
    }
    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.iter().map(Segment::size).sum()
    }
    /// The config in force.
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&self.lock().config)
    }
    /// Replace the config (topic config change).
    pub fn set_config(&self, config: Arc<LogConfig>) {
        self.lock().config = config;
    }

    /// Validate and append the record batches of one produce request for this partition.
    pub fn append(&self, records: &[u8]) -> Result<AppendInfo, AppendError> {
        let config = self.config();
        let now = now_ms();
        let rules = validate::Rules {
            compacted: config.compacted(),
            log_append_time: config.timestamp_type == TimestampType::LogAppendTime,
            before_max_ms: config.timestamp_before_max_ms,
            after_max_ms: config.timestamp_after_max_ms,
            now_ms: now,
            max_decompressed: validate::MAX_DECOMPRESSED_BATCH_BYTES,
        };
        // Validation needs no lock: it reads only the request's own bytes.
        let mut rest = records;
        let mut n_batches = 0usize;
        while let Some((view, tail)) = BatchView::split_first(rest).map_err(AppendError::Corrupt)? {
            view.validate().map_err(AppendError::Corrupt)?;
            if view.size() > config.max_message_bytes {
                return Err(AppendError::TooLarge {
                    size: view.size(),
                    max: config.max_message_bytes,
                });
            }
            let mut faults = validate::RecordErrors::default();
            validate::validate(&view, &rules, &mut faults).map_err(AppendError::Invalid)?;
            if !faults.is_empty() {
                // Kafka stops at the first batch with refused records and reports them.
                return Err(AppendError::Records(faults));
            }
            n_batches += 1;
            rest = tail;
        }
        if n_batches == 0 {
            return Err(AppendError::Corrupt(Error::ShortBatch {
                need: batch::HEADER_LEN,
                have: 0,
            }));
        }
        if records.len() as u64 > config.segment_bytes {
            return Err(AppendError::ListTooLarge(records.len()));
        }
        let (info, needs_flush) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            // Idempotence: the first batch decides duplicates, as producers send one batch
            // per partition per request.
            let mut rest = records;
            let mut first = true;
            while let Ok(Some((view, tail))) = BatchView::split_first(rest) {
                match st.producers.check(&view) {
                    SeqCheck::Append => {}
                    SeqCheck::Duplicate(m) if first => {
                        return Ok(AppendInfo {
                            base_offset: m.base_offset,
                            last_offset: m.last_offset,
                            log_append_time: if config.timestamp_type
                                == TimestampType::LogAppendTime
                            {
                                m.max_timestamp
                            } else {
                                -1
                            },
                            log_start_offset: st.log_start,
                            duplicate: true,
                        });
                    }
                    SeqCheck::Duplicate(m) => return Err(AppendError::OutOfOrder(m.first_seq)),
                    SeqCheck::FencedEpoch => return Err(AppendError::Fenced),
                    SeqCheck::InvalidTxnState => return Err(AppendError::InvalidTxnState),
                    SeqCheck::OutOfOrder { expected } => {
                        return Err(AppendError::OutOfOrder(expected))
                    }
                }
                first = false;
                rest = tail;
            }
            let mut scratch = std::mem::take(&mut st.scratch);
            scratch.clear();
            scratch.extend_from_slice(records);
            let base = st.log_end;
            let mut next = base;
            let mut pos = 0usize;
            let mut max_ts = -1i64;
            let mut count = 0i64;
            let log_append = config.timestamp_type == TimestampType::LogAppendTime;
            while pos < scratch.len() {
                let Some((_, len)) = batch::peek_offset_and_len(&scratch[pos..]) else {
                    break;
                };
                let total = usize::try_from(len).unwrap_or(0) + batch::LOG_OVERHEAD;
                let Some(b) = scratch.get_mut(pos..pos + total) else {
                    break;
                };
                batch::assign_offset(b, next, 0);
                if log_append {
                    batch::set_log_append_time(b, now);
                }
                let Ok(Some((view, _))) = BatchView::split_first(b) else {
                    break;
                };
                max_ts = max_ts.max(view.max_timestamp());
                let n = i64::from(view.last_offset_delta()) + 1;
                count += n;
                next += n;
                pos += total;
            }
            let last = next - 1;
            let result = self.write_locked(st, &scratch, base, last, max_ts, now, &config);
            if result.is_ok() {
                let mut rest = &scratch[..pos];
                while let Ok(Some((view, tail))) = BatchView::split_first(rest) {
                    st.producers.record(&view);
                    rest = tail;
                }
            }
            st.scratch = scratch;
            result.map_err(AppendError::Storage)?;
            let needs_flush = st.advance_end(next, count, &self.hw);
            (
                AppendInfo {
                    base_offset: base,
                    last_offset: last,
                    log_append_time: if log_append { now } else { -1 },
                    log_start_offset: st.log_start,
                    duplicate: false,
                },
                needs_flush,
            )
        };
        if needs_flush {
            self.flush_to(info.last_offset + 1)
                .map_err(AppendError::Storage)?;
        } else {
            self.notify.notify_waiters();
        }
        Ok(info)
    }

    /// Append one control batch (COMMIT when `commit`, else ABORT) for `producer_id` at
    /// `producer_epoch`, ending that producer's open transaction in this partition, as the
    /// coordinator's WriteTxnMarkers does. Returns the marker's offset. Follows the flush
    /// policy like [`Partition::append`] (`flush.messages=1`: fsynced before returning).
    ///
    /// Refused with [`AppendError::Fenced`] when `producer_epoch` is older than the
    /// producer's current epoch here, or `coordinator_epoch` older than that of its last
    /// marker (Kafka: InvalidProducerEpoch / TransactionCoordinatorFenced). A marker for a
    /// producer with no open transaction here is still written, as Kafka writes it; it
    /// changes nothing but the producer's epoch. An ABORT that ends a transaction is
    /// recorded in the `.txnindex` of the segment that holds it.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<i64, AppendError> {
        let config = self.config();
        let now = now_ms();
        let marker = Marker {
            commit,
            coordinator_epoch,
            timestamp: now,
        };
        let mut bytes = txn_index::encode_marker(producer_id, producer_epoch, marker)
            .map_err(AppendError::Storage)?;
        let (offset, needs_flush) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            if !st
                .producers
                .marker_allowed(producer_id, producer_epoch, coordinator_epoch)
            {
                return Err(AppendError::Fenced);
            }
            let offset = st.log_end;
            batch::assign_offset(&mut bytes, offset, 0);
            if config.timestamp_type == TimestampType::LogAppendTime {
                batch::set_log_append_time(&mut bytes, now);
            }
            self.write_locked(st, &bytes, offset, offset, now, now, &config)
                .map_err(AppendError::Storage)?;
            let done = st
                .producers
                .apply_marker(producer_id, producer_epoch, offset, marker);
            // The marker is in the log whatever happens to the index entry, so the state
            // moves on with it; a failure to write the entry is reported as a storage
            // error (Kafka takes the log directory offline for one).
            let indexed = match done {
                Some(t) if t.aborted => {
                    // Kafka's `lastStableOffset(completedTxn)`: the earliest other open
                    // transaction, else just past this marker.
                    let last_stable_offset = st.producers.first_unstable().unwrap_or(offset + 1);
                    st.active().txn_index_mut().append(AbortedTxn {
                        producer_id,
                        first_offset: t.first_offset,
                        last_offset: offset,
                        last_stable_offset,
                    })
                }
                _ => Ok(()),
            };
            let needs_flush = st.advance_end(offset + 1, 1, &self.hw);
            indexed.map_err(AppendError::Storage)?;
            (offset, needs_flush)
        };
        if needs_flush {
            self.flush_to(offset + 1).map_err(AppendError::Storage)?;
        } else {
            self.notify.notify_waiters();
        }
        Ok(offset)
    }

    /// Last stable offset: the first offset of the earliest open transaction, or the high
    /// watermark when none is open. `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.lock().last_stable()
    }

    /// The producers this partition remembers (for DescribeProducers), by producer id.
    pub fn producer_infos(&self) -> Vec<ProducerInfo> {
        self.lock().producers.infos()
    }

    /// Aborted transactions with `last_offset >= from` and `first_offset < upper`, in
    /// offset order (Kafka's `collectAbortedTransactions`): the index entries of the
    /// segment holding `from` and of later ones, until an entry shows that every
    /// transaction begun below `upper` had completed.
    pub fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>, Error> {
        let st = self.lock();
        let start = st
            .segments
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        let mut out = Vec::new();
        for seg in &st.segments[start..] {
            if seg.txn_index().collect(from, upper, &mut out) {
                break;
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_locked(
        &self,
        st: &mut State,
        bytes: &[u8],
        first: i64,
        last: i64,
        max_ts: i64,
        now: i64,
        config: &LogConfig,
    ) -> Result<(), Error> {
        let active = st.active_ref();
        let too_big =
            active.size() > 0 && active.size() + bytes.len() as u64 > config.segment_bytes;
        let too_old =
            active.size() > 0 && now.saturating_sub(active.created_ms()) > config.segment_ms;
        let offset_overflow = first - active.base_offset() > i64::from(i32::MAX);
        if too_big || too_old || active.index_full() || offset_overflow {
            self.roll_locked(st, first, now)?;
        }
        st.active()
            .append(bytes, first, last, max_ts, config.index_interval_bytes)
    }

    /// Start a new active segment at `base`. The old one is sealed; its fsync happens on a
    /// background thread (Kafka flushes rolled segments asynchronously too).
    fn roll_locked(&self, st: &mut State, base: i64, now: i64) -> Result<(), Error> {
        st.active().seal()?;
        let old = Arc::clone(st.active_ref().file());
        let seg = Segment::create(&self.dir, base, st.config.segment_index_bytes, now)?;
        info!(topic = %self.topic, partition = self.index, base, "rolled new segment");
        st.segments.push(seg);
        let path = self.dir.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            if let Err(e) = old.sync_data() {
                warn!(dir = %path.display(), error = %e, "fsync of rolled segment failed");
            }
            crate::metrics::LOG_FLUSH.observe_since(started);
        });
        Ok(())
    }

    /// Group commit: make everything below `target` durable. One fsync covers every batch
    /// appended before it started, so concurrent producers share it. A segment file created
    /// since the last flush also needs its directory entry on disk, or a power loss could
    /// drop the whole file: the partition directory is fsynced once for it. Transaction
    /// index entries written since the last flush are fsynced with the log, so a marker
    /// and its entry are durable together.
    pub fn flush_to(&self, target: i64) -> Result<(), Error> {
        let _flushing = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (files, txn_files, new_files, new_txn_files, end, seg, pos) = {
            let st = self.lock();
            if st.recovery_point >= target {
                drop(st);
                return Ok(());
            }
            let files: Vec<_> = st
                .segments
                .iter()
                .filter(|s| {
                    s.next_offset() > st.recovery_point
                        || s.size() > 0 && s.next_offset() == s.base_offset()
                })
                .map(|s| Arc::clone(s.file()))
                .collect();
            let new_files: Vec<i64> = st
                .segments
                .iter()
                .filter(|s| !s.dir_synced())
                .map(Segment::base_offset)
                .collect();
            // (segment, entries covered, handle) of every index with unsynced entries.
            let txn_files: Vec<(i64, usize, Arc<std::fs::File>)> = st
                .segments
                .iter()
                .filter_map(|s| {
                    let t = s.txn_index();
                    t.unsynced_file().map(|f| (s.base_offset(), t.len(), f))
                })
                .collect();
            let new_txn_files: Vec<i64> = st
                .segments
                .iter()
                .filter(|s| !s.txn_index().dir_synced())
                .map(Segment::base_offset)
                .collect();
            let a = st.active_ref();
            (
                files,
                txn_files,
                new_files,
                new_txn_files,
                st.log_end,
                a.base_offset(),
                a.size(),
            )
        };
        // Timed as Kafka's LogFlushStats.LogFlushRateAndTimeMs times a segment flush.
        let started = std::time::Instant::now();
        for f in &files {
            f.sync_data().map_err(|e| Error::io(&self.dir, e))?;
        }
        for (_, _, f) in &txn_files {
            f.sync_data().map_err(|e| Error::io(&self.dir, e))?;
        }
        if !new_files.is_empty() || !new_txn_files.is_empty() {
            super::sync_dir(&self.dir)?;
        }
        crate::metrics::LOG_FLUSH.observe_since(started);
        {
            let mut st = self.lock();
            for s in st.segments.iter_mut() {
                let base = s.base_offset();
                if new_files.contains(&base) {
                    s.set_dir_synced();
                }
                if new_txn_files.contains(&base) {
                    s.txn_index_mut().set_dir_synced();
                }
                if let Some((_, n, _)) = txn_files.iter().find(|(b, _, _)| *b == base) {
                    s.txn_index_mut().mark_synced(*n);
                }
            }
            st.recovery_point = st.recovery_point.max(end);
            st.unflushed_messages = 0;
            if end > st.hw {
                st.hw = end;
                st.hw_segment = seg;
                st.hw_position = pos;
                self.hw.store(end, Ordering::Release);
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    /// Flush everything (shutdown, periodic flush): the log, the index files, and the
    /// producer snapshot. Returns (recovery point, log start) for the checkpoint files.
    ///
    /// The snapshot is taken at one log end and written once everything below it is
    /// fsynced, and says which offset it was taken at: recovery replays the log into it
    /// from there, so open transactions and the transaction index come back exactly.
    pub fn flush_all(&self) -> Result<(i64, i64), Error> {
        let _one = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (end, snap, has_producers) = {
            let st = self.lock();
            (
                st.log_end,
                st.producers.to_snapshot(st.log_end),
                !st.producers.is_empty(),
            )
        };
        self.flush_to(end)?;
        let mut st = self.lock();
        for s in st.segments.iter_mut() {
            s.flush_indexes()?;
        }
        let (rp, ls) = (st.recovery_point, st.log_start);
        drop(st);
        let tmp = self.dir.join(format!("{PRODUCER_SNAPSHOT}.tmp"));
        std::fs::write(&tmp, snap).map_err(|e| Error::io(&tmp, e))?;
        if has_producers {
            // Open transactions live only here below the recovery point: a snapshot lost
            // to a power cut would leave their records readable as if committed.
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, self.dir.join(PRODUCER_SNAPSHOT)).map_err(|e| Error::io(&tmp, e))?;
        Ok((rp, ls))
    }

    /// Hands every record from the log start to the high watermark to `f`, in offset order,
    /// control records included: how the coordinators rebuild their state from their
    /// internal topics at start-up. Records of the first batch below the log start are left
    /// out. A batch that does not decode ends its chunk with a warning, and the read stops
    /// there if nothing before it in the chunk moved it forward.
    pub fn replay(
        &self,
        mut f: impl FnMut(kafka_protocol::records::Record),
    ) -> Result<(), ReadError> {
        let (mut offset, _, hw, _) = self.offsets();
        while offset < hw {
            let mut buf = self.read(offset, 1 << 20)?.records;
            if buf.is_empty() {
                break;
            }
            let mut next = offset;
            while buf.has_remaining() {
                let set = match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, offset = next, topic = %self.topic,
                            "skipping an undecodable batch while replaying");
                        break;
                    }
                };
                for r in set.records {
                    next = next.max(r.offset + 1);
                    if r.offset >= offset {
                        f(r);
                    }
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }

    /// Find the bytes to serve for a fetch at `offset`: whole batches, starting with the one
    /// that contains `offset`, up to `max_bytes` (but always the first whole batch, as
    /// Kafka does since KIP-74 so a consumer can make progress). Copies them into memory;
    /// the fetch path sends [`Partition::read_region`] from the file instead.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<FetchData, ReadError> {
        let r = self.read_region(offset, max_bytes)?;
        let records = match &r.region {
            Some(region) => region
                .load()
                .map_err(|e| ReadError::Storage(Error::io(&self.dir, e)))?,
            None => Bytes::new(),
        };
        Ok(FetchData {
            records,
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
            last_stable_offset: r.last_stable_offset,
            aborted: r.aborted,
        })
    }

    /// [`Partition::read`] for `isolation_level=read_committed`: see
    /// [`Partition::read_region_committed`].
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<FetchData, ReadError> {
        let r = self.read_region_committed(offset, max_bytes)?;
        let records = match &r.region {
            Some(region) => region
                .load()
                .map_err(|e| ReadError::Storage(Error::io(&self.dir, e)))?,
            None => Bytes::new(),
        };
        Ok(FetchData {
            records,
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
            last_stable_offset: r.last_stable_offset,
            aborted: r.aborted,
        })
    }

    /// Like [`Partition::read`], but only locate the batches: the region of the segment file
    /// that holds them. Reads batch headers (12 bytes each, skipping ahead with the offset
    /// index), never the records. This is `read_uncommitted`: up to the high watermark.
    pub fn read_region(&self, offset: i64, max_bytes: usize) -> Result<FetchRegion, ReadError> {
        self.locate(offset, max_bytes, false)
    }

    /// [`Partition::read_region`] for `isolation_level=read_committed`: whole batches
    /// below the last stable offset only, and the aborted transactions overlapping them
    /// (Kafka: `lastOffset >= offset && firstOffset <` the offset just past the data), so
    /// the consumer can drop their records. An offset at or past the last stable offset
    /// but not past the high watermark is in range and gets no records, as in Kafka.
    pub fn read_region_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<FetchRegion, ReadError> {
        self.locate(offset, max_bytes, true)
    }

    fn locate(
        &self,
        offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<FetchRegion, ReadError> {
        let (slice, hw, lso, log_start) = {
            let mut st = self.lock();
            if offset < st.log_start || offset > st.hw {
                return Err(ReadError::OutOfRange {
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.hw,
                });
            }
            let lso = st.last_stable();
            // Where readable data ends: the high watermark, or for read_committed the
            // start of the batch at the last stable offset (a batch's base offset, as
            // transactions begin at one), so no batch at or past it is returned.
            let (end_offset, end_segment, end_position) = if committed && lso < st.hw {
                let (seg, pos) = st.position_of(lso)?;
                (lso, seg, pos)
            } else {
                (st.hw, st.hw_segment, st.hw_position)
            };
            // (slice, offset just past the slice's readable data)
            let mut slice: Option<(ReadSlice, i64)> = None;
            if offset < end_offset {
                let start = st
                    .segments
                    .partition_point(|s| s.base_offset() <= offset)
                    .saturating_sub(1);
                for i in start..st.segments.len() {
                    let seg = &st.segments[i];
                    let (end, end_off) = if seg.base_offset() == end_segment {
                        (end_position, end_offset)
                    } else if seg.base_offset() > end_segment {
                        break;
                    } else {
                        (seg.size(), seg.next_offset())
                    };
                    if let Some(s) = st.with_index(i, |seg| seg.slice(offset, end, max_bytes))? {
                        slice = Some((s, end_off));
                        break;
                    }
                }
            }
            (slice, st.hw, lso, st.log_start)
        };
        let io = |e| ReadError::Storage(Error::io(&self.dir, e));
        let (region, upper) = match slice {
            Some((s, end_off)) => {
                let r = whole_batches(&s, max_bytes).map_err(io)?;
                // Kafka's fetch upper bound: the first batch after the data, else the end.
                let after = r.position + r.len as u64;
                let upper = if committed {
                    next_base_offset(&s, after).map_err(io)?.unwrap_or(end_off)
                } else {
                    end_off
                };
                (Some(r), upper)
            }
            None => (None, offset),
        };
        let region = region.filter(|r| r.len > 0);
        let aborted = if committed && region.is_some() {
            self.aborted_txns(offset, upper)?
        } else {
            Vec::new()
        };
        Ok(FetchRegion {
            region,
            high_watermark: hw,
            log_start_offset: log_start,
            last_stable_offset: lso,
            aborted,
        })
    }

    /// ListOffsets by timestamp: the first record whose timestamp is at least `ts`, as
    /// (timestamp, offset). Kafka looks inside the batch for the exact record.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, Error> {
        let found = {
            let mut st = self.lock();
            let mut found = None;
            for i in 0..st.segments.len() {
                if st.segments[i].max_timestamp() < ts {
                    continue;
                }
                let hit = st.with_index(i, |seg| {
                    seg.find_by_timestamp(ts)?
                        .map(|pos| seg.read_batch_at(pos))
                        .transpose()
                })?;
                if hit.is_some() {
                    found = hit;
                    break;
                }
            }
            found.map(|b| (b, st.hw, st.log_start))
        };
        let Some((bytes, hw, log_start)) = found else {
            return Ok(None);
        };
        Ok(records_of(&bytes)
            .into_iter()
            .find(|(o, t)| *t >= ts && *o >= log_start && *o < hw)
            .map(|(o, t)| (t, o)))
    }

    /// ListOffsets MAX_TIMESTAMP: the record with the largest timestamp, as (timestamp,
    /// offset).
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, Error> {
        let found = {
            let mut st = self.lock();
            let best = st
                .segments
                .iter()
                .enumerate()
                .filter(|(_, s)| s.max_timestamp() >= 0)
                .max_by_key(|(_, s)| s.max_timestamp())
                .map(|(i, _)| i);
            match best {
                Some(i) => {
                    let hw = st.hw;
                    st.with_index(i, |seg| {
                        seg.find(seg.offset_of_max_timestamp())?
                            .map(|(pos, _)| Ok((seg.read_batch_at(pos)?, seg.max_timestamp(), hw)))
                            .transpose()
                    })?
                }
                None => None,
            }
        };
        let Some((bytes, max_ts, hw)) = found else {
            return Ok(None);
        };
        Ok(records_of(&bytes)
            .into_iter()
            .filter(|(o, _)| *o < hw)
            .find(|(_, t)| *t == max_ts)
            .map(|(o, t)| (t, o)))
    }

    /// Move the log start offset forward (DeleteRecords; `-1` means the high watermark) and
    /// drop segments that lie wholly below it. Returns the new log start offset.
    pub fn delete_records(&self, offset: i64) -> Result<i64, ReadError> {
        let mut st = self.lock();
        let target = if offset == -1 { st.hw } else { offset };
        if target < 0 || target > st.hw {
            return Err(ReadError::OutOfRange {
                offset,
                log_start: st.log_start,
                high_watermark: st.hw,
            });
        }
        if target > st.log_start {
            st.log_start = target;
        }
        let removed = Self::drop_segments_below_start(&mut st);
        let start = st.log_start;
        drop(st);
        self.delete_segment_files(removed);
        Ok(start)
    }

    /// Segments (never the active one) whose offsets all lie below the log start.
    fn drop_segments_below_start(st: &mut State) -> Vec<Segment> {
        let mut removed = Vec::new();
        while st.segments.len() > 1 && st.segments[1].base_offset() <= st.log_start {
            removed.push(st.segments.remove(0));
        }
        removed
    }

    fn delete_segment_files(&self, removed: Vec<Segment>) {
        for seg in removed {
            info!(topic = %self.topic, partition = self.index, base = seg.base_offset(), "deleting segment");
            // Readers in flight keep their open handle; unlinking is safe under them.
            if let Err(e) = seg.delete_files() {
                warn!(error = %e, "could not delete a segment's files");
            }
        }
    }

    /// Enforce `retention.ms` and `retention.bytes` (for `cleanup.policy` with `delete`):
    /// delete whole closed segments, oldest first, never the active one, and move the log
    /// start offset past them. Returns how many segments went.
    pub fn enforce_retention(&self, now: i64) -> usize {
        let mut st = self.lock();
        let cfg = Arc::clone(&st.config);
        if !cfg.cleanup_policy.split(',').any(|p| p.trim() == "delete") {
            return 0;
        }
        let mut total: i64 = st
            .segments
            .iter()
            .map(|s| i64::try_from(s.size()).unwrap_or(i64::MAX))
            .sum();
        let mut removed = Vec::new();
        // Only segments wholly below the high watermark may go: consumers must have been
        // able to see them.
        while st.segments.len() > 1 && st.segments[1].base_offset() <= st.hw {
            let first = &st.segments[0];
            let size = i64::try_from(first.size()).unwrap_or(i64::MAX);
            let too_old = cfg.retention_ms >= 0
                && first.max_timestamp() >= 0
                && now.saturating_sub(first.max_timestamp()) > cfg.retention_ms;
            let too_big = cfg.retention_bytes >= 0 && total - size >= cfg.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            total -= size;
            let seg = st.segments.remove(0);
            let next = st.segments[0].base_offset();
            st.log_start = st.log_start.max(next);
            removed.push(seg);
        }
        let n = removed.len();
        drop(st);
        if n > 0 {
            info!(topic = %self.topic, partition = self.index, segments = n, "retention deleted old segments");
        }
        self.delete_segment_files(removed);
        n
    }

    /// Closed segments to compact, if the dirty share of the log has reached
    /// `min.cleanable.dirty.ratio`: (base, next base, file, size, max timestamp).
    /// Only segments wholly below the last stable offset take part: Kafka never cleans
    /// open transactions.
    pub(super) fn cleanable(&self) -> Option<(Arc<LogConfig>, Vec<Target>)> {
        let st = self.lock();
        if !st.config.compacted() || st.segments.len() < 2 {
            return None;
        }
        let lso = st.last_stable();
        let closed = &st.segments[..st.segments.len() - 1];
        let total: u64 = closed.iter().map(Segment::size).sum();
        let dirty: u64 = closed
            .iter()
            .zip(st.segments.iter().skip(1))
            .filter(|(_, next)| next.base_offset() > st.first_dirty)
            .map(|(s, _)| s.size())
            .sum();
        if dirty == 0
            || total == 0
            || (dirty as f64) / (total as f64) < st.config.min_cleanable_dirty_ratio
        {
            return None;
        }
        let targets: Vec<_> = closed
            .iter()
            .zip(st.segments.iter().skip(1))
            .take_while(|(_, next)| next.base_offset() <= lso)
            .map(|(s, next)| Target {
                base: s.base_offset(),
                end: next.base_offset(),
                file: Arc::clone(s.file()),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        if targets.is_empty() {
            return None;
        }
        Some((Arc::clone(&st.config), targets))
    }

    /// Replace closed segment `base` with the compacted file at `swap` (a `.log.swap`,
    /// fully written and synced) and its transaction index at `BASE.txnindex.swap`, if
    /// there is one. Returns false if the segment is gone (retention).
    pub(super) fn swap_cleaned(&self, base: i64, swap: &Path) -> Result<bool, Error> {
        let stem = super::segment::file_stem(base);
        let txn_swap = self.dir.join(format!("{stem}.txnindex.swap"));
        let mut st = self.lock();
        // Not there any more (retention), or now the active segment: drop the swap.
        let i = match st.segments.iter().position(|s| s.base_offset() == base) {
            Some(i) if i + 1 < st.segments.len() => i,
            _ => {
                drop(st);
                std::fs::remove_file(swap).map_err(|e| Error::io(swap, e))?;
                if txn_swap.exists() {
                    std::fs::remove_file(&txn_swap).map_err(|e| Error::io(&txn_swap, e))?;
                }
                return Ok(false);
            }
        };
        st.segments[i].delete_files()?;
        if txn_swap.exists() {
            let txn = self.dir.join(format!("{stem}.txnindex"));
            std::fs::rename(&txn_swap, &txn).map_err(|e| Error::io(&txn, e))?;
        }
        let log = self.dir.join(format!("{stem}.log"));
        std::fs::rename(swap, &log).map_err(|e| Error::io(&log, e))?;
        let (seg, _, _) = Segment::open(
            &self.dir,
            base,
            st.config.segment_index_bytes,
            None,
            now_ms(),
        )?;
        // Readers holding the old handle finish on the old (unlinked) file.
        st.segments[i] = seg;
        st.segments[i].seal()?;
        Ok(true)
    }

    /// Record that compaction has covered everything below `offset`.
    pub(super) fn set_first_dirty(&self, offset: i64) {
        let mut st = self.lock();
        st.first_dirty = st.first_dirty.max(offset);
    }

    /// Remove all files of this partition (topic deletion).
    pub fn delete_dir(&self) -> Result<(), Error> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))
    }
}

/// Cut a slice to whole batches: as many as fit in `max_bytes`, but at least the first one
/// whole. Walks batch headers from the index hint; the records are not read.
fn whole_batches(s: &ReadSlice, max_bytes: usize) -> std::io::Result<FileRegion> {
    let limit = s
        .position
        .saturating_add(u64::try_from(max_bytes).unwrap_or(u64::MAX))
        .min(s.end);
    let mut pos = s.hint.clamp(s.position, limit);
    let mut hdr = [0u8; batch::LOG_OVERHEAD];
    let batch_end = |hdr: &[u8], at: u64| -> Option<u64> {
        let (_, len) = batch::peek_offset_and_len(hdr)?;
        let len = u64::try_from(len).ok()?;
        Some(at + batch::LOG_OVERHEAD as u64 + len)
    };
    while pos + batch::LOG_OVERHEAD as u64 <= limit {
        s.file.read_exact_at(&mut hdr, pos)?;
        match batch_end(&hdr, pos) {
            Some(next) if next <= limit => pos = next,
            _ => break,
        }
    }
    if pos == s.position && s.position + (batch::LOG_OVERHEAD as u64) <= s.end {
        // The first batch alone exceeds `max_bytes`: send it whole (KIP-74).
        s.file.read_exact_at(&mut hdr, s.position)?;
        if let Some(next) = batch_end(&hdr, s.position) {
            pos = next.min(s.end);
        }
    }
    Ok(FileRegion {
        file: Arc::clone(&s.file),
        position: s.position,
        len: usize::try_from(pos - s.position).unwrap_or(0),
    })
}

/// Base offset of the batch starting at `pos` in the slice's file, if one starts there
/// before the slice's end.
fn next_base_offset(s: &ReadSlice, pos: u64) -> std::io::Result<Option<i64>> {
    if pos + batch::LOG_OVERHEAD as u64 > s.end {
        return Ok(None);
    }
    let mut hdr = [0u8; batch::LOG_OVERHEAD];
    s.file.read_exact_at(&mut hdr, pos)?;
    Ok(batch::peek_offset_and_len(&hdr).map(|(base, _)| base))
}

/// (offset, timestamp) of every record of a batch; decodes (and decompresses) it.
fn records_of(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut buf = Bytes::copy_from_slice(bytes);
    match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect(),
        Err(e) => {
            warn!(error = %e, "could not decode a stored batch for a timestamp lookup");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn cfg() -> Arc<LogConfig> {
        Arc::new(LogConfig::default())
    }

    fn open(dir: &Path, c: Arc<LogConfig>, rp: Option<i64>) -> Partition {
        Partition::open("t".into(), 0, dir, c, rp, None).unwrap()
    }

    #[test]
    fn append_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), cfg(), None);
        let a = p.append(&make_batch(3, 100, -1, -1)).unwrap();
        assert_eq!((a.base_offset, a.last_offset), (0, 2));
        let b = p.append(&make_batch(2, 200, -1, -1)).unwrap();
        assert_eq!(b.base_offset, 3);
        assert_eq!(p.high_watermark(), 5);
        // a fetch inside the first batch returns it whole
        let d = p.read(1, 1 << 20).unwrap();
        let (v, rest) = BatchView::split_first(&d.records).unwrap().unwrap();
        assert_eq!(v.base_offset(), 0);
        assert_eq!(
            BatchView::split_first(rest)
                .unwrap()
                .unwrap()
                .0
                .base_offset(),
            3
        );
        // tiny max_bytes still returns the first batch
        let d = p.read(3, 1).unwrap();
        assert_eq!(
            BatchView::split_first(&d.records)
                .unwrap()
                .unwrap()
                .0
                .base_offset(),
            3
        );
        assert!(p.read(5, 100).unwrap().records.is_empty());
        assert!(matches!(p.read(6, 100), Err(ReadError::OutOfRange { .. })));
        assert_eq!(p.offset_for_timestamp(150).unwrap(), Some((200, 3)));
        assert_eq!(p.max_timestamp().unwrap(), Some((200, 3)));
        let (rp, _) = p.flush_all().unwrap();
        assert_eq!(rp, 5);
        drop(p);
        let p = open(dir.path(), cfg(), Some(5));
        assert_eq!(p.offsets().1, 5);
        assert_eq!(
            p.append(&make_batch(1, 300, -1, -1)).unwrap().base_offset,
            5
        );
    }

    #[test]
    fn idempotent_duplicate_returns_original_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), cfg(), None);
        let b = make_batch(2, 1, 42, 0);
        assert_eq!(p.append(&b).unwrap().base_offset, 0);
        let again = p.append(&b).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.base_offset, 0);
        assert_eq!(p.high_watermark(), 2);
        assert!(matches!(
            p.append(&make_batch(1, 1, 42, 7)),
            Err(AppendError::OutOfOrder(2))
        ));
        p.flush_all().unwrap();
        drop(p);
        // the producer table survives a restart
        let p = open(dir.path(), cfg(), Some(2));
        assert!(p.append(&b).unwrap().duplicate);
    }

    #[test]
    fn regions_hold_whole_batches_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        // A sparse index entry every 100 bytes, so the cut starts from an index hint.
        let c = Arc::new(LogConfig {
            index_interval_bytes: 100,
            ..LogConfig::default()
        });
        let p = open(dir.path(), c, None);
        let mut ends = Vec::new();
        for n in [1, 5, 2, 9, 3, 1, 7, 4, 2, 6] {
            p.append(&make_batch(n, 1, -1, -1)).unwrap();
            ends.push(p.size_bytes());
        }
        let size_of = |r: &FetchRegion| r.region.as_ref().map_or(0, |r| r.len as u64);
        for limit in [0usize, 1, 60, 150, 299, 300, 301, 555, 10_000] {
            let r = p.read_region(0, limit).unwrap();
            let len = size_of(&r);
            // The longest prefix of whole batches within the limit, but at least one batch.
            let want = ends
                .iter()
                .copied()
                .filter(|&e| e <= limit as u64)
                .max()
                .unwrap_or(ends[0]);
            assert_eq!(len, want, "limit {limit}");
            let bytes = p.read(0, limit).unwrap().records;
            assert_eq!(bytes.len() as u64, len);
            let mut rest = &bytes[..];
            while let Some((v, tail)) = BatchView::split_first(rest).unwrap() {
                v.validate().unwrap();
                rest = tail;
            }
        }
        // Offset 7 is inside the third batch (offsets 6..=7): the region starts there.
        let r = p.read_region(7, 10_000).unwrap();
        let region = r.region.unwrap();
        assert_eq!(region.position, ends[1]);
        assert_eq!(region.position + region.len as u64, ends[9]);
        assert!(p.read_region(40, 100).unwrap().region.is_none());
    }

    /// A partition with 200-byte segments holding ten two-record batches (offsets 0..20).
    fn ten_batches_in_small_segments(dir: &Path) -> (Arc<LogConfig>, Partition) {
        let c = Arc::new(LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        });
        let p = open(dir, Arc::clone(&c), None);
        for _ in 0..10 {
            p.append(&make_batch(2, 1, -1, -1)).unwrap();
        }
        (c, p)
    }

    #[test]
    fn rolls_by_size_and_reads_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (c, p) = ten_batches_in_small_segments(dir.path());
        let logs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count();
        assert!(logs > 1, "expected several segments, got {logs}");
        let mut off = 0;
        while off < 20 {
            let d = p.read(off, 1 << 20).unwrap();
            let (v, _) = BatchView::split_first(&d.records).unwrap().unwrap();
            assert_eq!(v.base_offset(), off);
            off = v.last_offset() + 1;
        }
        p.flush_all().unwrap();
        drop(p);
        let p = open(dir.path(), c, Some(20));
        assert_eq!(p.offsets().1, 20);
        assert!(!p.read(7, 1 << 20).unwrap().records.is_empty());
    }

    #[test]
    fn replay_hands_over_every_record_from_the_log_start_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, p) = ten_batches_in_small_segments(dir.path());
        let mut seen = Vec::new();
        p.replay(|r| seen.push(r.offset)).unwrap();
        assert_eq!(seen, (0..20).collect::<Vec<i64>>());
        // The log start inside a batch (offsets 6..=7): offset 6 is not handed over.
        p.delete_records(7).unwrap();
        let mut seen = Vec::new();
        p.replay(|r| seen.push(r.offset)).unwrap();
        assert_eq!(seen, (7..20).collect::<Vec<i64>>());
    }

    #[test]
    fn retention_and_delete_records_move_the_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(LogConfig {
            segment_bytes: 200,
            retention_ms: 1000,
            ..LogConfig::default()
        });
        let p = open(dir.path(), Arc::clone(&c), None);
        for ts in [10, 20, 30, 40, 50, 5000] {
            p.append(&make_batch(2, ts, -1, -1)).unwrap();
        }
        let segs_before = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count();
        assert!(segs_before > 2);
        // At time 1100 every batch but the last (ts 5000) is older than retention.ms.
        let gone = p.enforce_retention(1100);
        assert!(gone > 0);
        let (start, end, _, _) = p.offsets();
        assert!(start > 0 && start < end, "start {start} end {end}");
        assert!(matches!(p.read(0, 100), Err(ReadError::OutOfRange { .. })));
        assert!(!p.read(start, 1 << 20).unwrap().records.is_empty());
        // DeleteRecords to the high watermark: nothing left to read.
        assert_eq!(p.delete_records(-1).unwrap(), end);
        assert!(p.read(end, 100).unwrap().records.is_empty());
        assert!(matches!(
            p.delete_records(end + 5),
            Err(ReadError::OutOfRange { .. })
        ));
        // The active segment is never deleted.
        assert!(p.enforce_retention(i64::MAX / 2) == 0);
        assert_eq!(
            p.append(&make_batch(1, 6000, -1, -1)).unwrap().base_offset,
            end
        );
    }

    #[test]
    fn a_plausible_but_wrong_index_is_caught_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        // 1,000 one-record batches fill the first segment; the rest go to a second.
        let one = make_batch(1, 1, -1, -1).len() as u64;
        let c = Arc::new(LogConfig {
            segment_bytes: one * 1000,
            ..LogConfig::default()
        });
        let p = open(dir.path(), Arc::clone(&c), None);
        let mut positions = Vec::new();
        while p.offsets().1 < 1200 {
            positions.push(p.size_bytes());
            p.append(&make_batch(1, 1, -1, -1)).unwrap();
        }
        let (rp, _) = p.flush_all().unwrap();
        drop(p);
        let index = dir.path().join("00000000000000000000.index");
        assert!(dir.path().join("00000000000000001000.log").exists());
        // Sorted, in range, and wrong: the entry for offset 700 points at batch 800.
        let mut bytes = Vec::new();
        for (rel, pos) in [(0u32, 0u64), (700, positions[800])] {
            bytes.extend_from_slice(&rel.to_be_bytes());
            bytes.extend_from_slice(&u32::try_from(pos).unwrap().to_be_bytes());
        }
        std::fs::write(&index, &bytes).unwrap();
        let p = open(dir.path(), c, Some(rp));
        for off in [750i64, 700, 799, 800, 0] {
            let d = p.read(off, 1).unwrap();
            let (v, _) = BatchView::split_first(&d.records).unwrap().unwrap();
            assert_eq!(v.base_offset(), off, "a fetch at {off}");
        }
        assert_eq!(p.offset_for_timestamp(1).unwrap(), Some((1, 0)));
        // The rebuilt index is on disk: an entry per 4096 bytes, the first at 0.
        let rebuilt = std::fs::read(&index).unwrap();
        assert!(rebuilt.len() > bytes.len(), "index not rewritten");
        assert_eq!(&rebuilt[..8], &[0u8; 8]);
    }

    #[test]
    fn fsync_mode_advances_hw_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(LogConfig {
            flush_messages: 1,
            ..LogConfig::default()
        });
        let p = open(dir.path(), c, None);
        p.append(&make_batch(4, 1, -1, -1)).unwrap();
        let (_, end, hw, rp) = p.offsets();
        assert_eq!((end, hw, rp), (4, 4, 4));
    }

    #[test]
    fn last_stable_offset_never_passes_a_lagging_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), cfg(), None);
        p.append(&make_batch(1, 1, -1, -1)).unwrap();
        p.append(&crate::log::txn_tests::txn_batch(1, 5, 0, 0))
            .unwrap();
        p.append(&make_batch(1, 1, -1, -1)).unwrap();
        assert_eq!(p.last_stable_offset(), 1);
        // As while `flush.messages` waits for an fsync: the high watermark lags the end,
        // here below the open transaction.
        {
            let mut st = p.lock();
            st.hw = 0;
            st.hw_position = 0;
        }
        p.hw.store(0, Ordering::Release);
        assert_eq!(p.last_stable_offset(), 0);
        assert!(p
            .read_region_committed(0, 1 << 20)
            .unwrap()
            .region
            .is_none());
        assert!(p.read_region(0, 1 << 20).unwrap().region.is_none());
    }

    #[test]
    fn rejects_oversized_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(LogConfig {
            max_message_bytes: 70,
            ..LogConfig::default()
        });
        let p = open(dir.path(), c, None);
        assert!(matches!(
            p.append(&make_batch(3, 1, -1, -1)),
            Err(AppendError::TooLarge { .. })
        ));
        let mut bad = make_batch(1, 1, -1, -1);
        let n = bad.len() - 1;
        bad[n] ^= 1;
        assert!(matches!(p.append(&bad), Err(AppendError::Corrupt(_))));
        assert_eq!(p.high_watermark(), 0);
    }
}
