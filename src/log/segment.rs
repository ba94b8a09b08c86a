//! One log segment: the `.log` file of record batches as producers sent them, its sparse
//! `.index` / `.timeindex`, and its `.txnindex` of aborted transactions. Files are named by
//! the base offset, 20 digits, as Kafka does.
//!
//! A segment is plain synchronous code. Reads use positional `read_at` on a shared handle,
//! so a reader never holds the partition lock while it copies bytes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchView, HEADER_LEN, LOG_OVERHEAD};
use super::index::{Index, OffsetEntry, TimeEntry};
use super::producer::{BatchMeta, LogFact};
use super::txn_index::{self, TxnIndex};
use super::Error;

/// `segment.index.bytes` limits both indexes; Kafka's default is 10 MiB.
pub const DEFAULT_INDEX_BYTES: usize = 10 * 1024 * 1024;

/// Bytes needed from a batch header to know where the batch ends and its last offset.
const SCAN_HEADER: usize = 27;

/// File name stem for a base offset: 20 zero-padded digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// What was found past the valid data when a segment was checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Bytes cut from the end of the file.
    pub bytes: u64,
    /// Offset at which the cut was made (the log end after it).
    pub at_offset: i64,
    /// Why the first cut batch was refused.
    pub reason: String,
}

/// One segment of a partition's log.
#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    index: Index<OffsetEntry>,
    time_index: Index<TimeEntry>,
    txn_index: TxnIndex,
    bytes_since_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    created_ms: i64,
    /// Whether every offset-index entry is known to point at the batch it names: true for an
    /// index built here (by appends or a scan), false for one loaded from disk, whose
    /// entries are then checked against the batch header before each use.
    index_verified: bool,
    /// Whether the `.log` file's directory entry is known to be on disk: false for a file
    /// created here until the partition directory has been fsynced.
    dir_synced: bool,
}

/// Where a fetch should read: a byte range of one segment's file.
#[derive(Debug, Clone)]
pub struct ReadSlice {
    /// Shared handle to the `.log` file.
    pub file: Arc<File>,
    /// Start of the first batch to send.
    pub position: u64,
    /// End (exclusive) of readable data in this segment at the time of the lookup.
    pub end: u64,
    /// Start of a batch at or below `position + max_bytes` (from the offset index), so the
    /// cut to whole batches need not walk every header from `position`.
    pub hint: u64,
}

/// Whole batches of one segment file, below the high watermark, to be sent to a client.
/// The bytes never change: segments are append-only, and a segment that is deleted or
/// replaced by compaction keeps its data for as long as this handle is open.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// Shared handle to the `.log` file.
    pub file: Arc<File>,
    /// Byte position of the first batch.
    pub position: u64,
    /// Length in bytes: a whole number of batches.
    pub len: usize,
}

impl FileRegion {
    /// Copy the region's bytes into memory.
    pub fn load(&self) -> std::io::Result<bytes::Bytes> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(bytes::Bytes::from(buf))
    }
}

impl Segment {
    /// Create an empty segment in `dir`.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        now_ms: i64,
    ) -> Result<Self, Error> {
        let stem = file_stem(base_offset);
        let log_path = dir.join(format!("{stem}.log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        Ok(Segment {
            base_offset,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            index: Index::create(&dir.join(format!("{stem}.index")), index_bytes)?,
            time_index: Index::create(&dir.join(format!("{stem}.timeindex")), index_bytes)?,
            txn_index: TxnIndex::create(&dir.join(format!("{stem}.txnindex")))?,
            log_path,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms: now_ms,
            index_verified: true,
            dir_synced: false,
        })
    }

    /// Open an existing segment: scan every batch header to rebuild the offset and time
    /// indexes, validating batch by batch from `validate_from` on and cutting at the first
    /// bad batch. Returns the producer facts (idempotent batches, transaction markers) of
    /// the batches from `validate_from` on, for the partition to replay. The `.txnindex`
    /// is loaded as it is; the partition rebuilds the part it replays.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        validate_from: Option<i64>,
        now_ms: i64,
    ) -> Result<(Self, Option<Truncation>, Vec<LogFact>), Error> {
        let stem = file_stem(base_offset);
        let log_path = dir.join(format!("{stem}.log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(&log_path, e))?;
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(now_ms))
            .unwrap_or(now_ms);
        let index_path = dir.join(format!("{stem}.index"));
        let time_path = dir.join(format!("{stem}.timeindex"));
        let load = |p: &Path| p.exists();
        let mut seg = Segment {
            base_offset,
            size: meta.len(),
            next_offset: base_offset,
            index: if load(&index_path) {
                Index::load(&index_path, index_bytes)?
            } else {
                Index::create(&index_path, index_bytes)?
            },
            time_index: if load(&time_path) {
                Index::load(&time_path, index_bytes)?
            } else {
                Index::create(&time_path, index_bytes)?
            },
            txn_index: TxnIndex::load(&dir.join(format!("{stem}.txnindex")))?,
            file: Arc::new(file),
            log_path,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms,
            index_verified: true,
            dir_synced: true,
        };
        let (truncation, producers) = seg.scan(validate_from)?;
        Ok((seg, truncation, producers))
    }

    /// Open a closed segment that lies wholly below the recovery point: trust its index
    /// files if they are consistent with the log, else rebuild them with a header scan.
    pub fn open_closed(
        dir: &Path,
        base_offset: i64,
        next_base: i64,
        index_bytes: usize,
        now_ms: i64,
    ) -> Result<Self, Error> {
        let stem = file_stem(base_offset);
        let paths_ok = dir.join(format!("{stem}.index")).exists()
            && dir.join(format!("{stem}.timeindex")).exists();
        if paths_ok {
            let log_path = dir.join(format!("{stem}.log"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&log_path)
                .map_err(|e| Error::io(&log_path, e))?;
            let size = file.metadata().map_err(|e| Error::io(&log_path, e))?.len();
            let index: Index<OffsetEntry> =
                Index::load(&dir.join(format!("{stem}.index")), index_bytes)?;
            let time_index: Index<TimeEntry> =
                Index::load(&dir.join(format!("{stem}.timeindex")), index_bytes)?;
            let span = u64::try_from(next_base - base_offset).unwrap_or(0);
            let sane = (size == 0 || index.entries().first().is_some_and(|e| e.position == 0))
                && index
                    .entries()
                    .windows(2)
                    .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
                && index.entries().iter().all(|e| {
                    u64::from(e.position) < size.max(1) && u64::from(e.rel_offset) < span.max(1)
                })
                && time_index
                    .entries()
                    .windows(2)
                    .all(|w| w[0].timestamp <= w[1].timestamp);
            if sane {
                let (max_timestamp, offset_of_max_timestamp) =
                    time_index.entries().last().map_or((-1, -1), |e| {
                        (e.timestamp, base_offset + i64::from(e.rel_offset))
                    });
                return Ok(Segment {
                    base_offset,
                    log_path,
                    file: Arc::new(file),
                    size,
                    next_offset: next_base,
                    index,
                    time_index,
                    txn_index: TxnIndex::load(&dir.join(format!("{stem}.txnindex")))?,
                    bytes_since_index: 0,
                    max_timestamp,
                    offset_of_max_timestamp,
                    created_ms: now_ms,
                    // Plausible is not right: an entry may name the wrong batch, and a
                    // fetch would then skip records. Each entry is checked when used.
                    index_verified: false,
                    dir_synced: true,
                });
            }
        }
        let (seg, _, _) = Segment::open(dir, base_offset, index_bytes, None, now_ms)?;
        Ok(seg)
    }

    /// Called when the segment stops being the active one: make sure the time index ends with
    /// the segment's max timestamp, so a later open can trust it.
    pub fn seal(&mut self) -> Result<(), Error> {
        let last_ts = self.time_index.entries().last().map_or(-1, |e| e.timestamp);
        if self.max_timestamp > last_ts {
            self.time_index.push(TimeEntry {
                timestamp: self.max_timestamp,
                rel_offset: u32::try_from(self.offset_of_max_timestamp - self.base_offset)
                    .unwrap_or(0),
            });
        }
        self.flush_indexes()
    }

    /// Walk every batch header, rebuilding the indexes and the segment's end offset and max
    /// timestamp. Batches at or past `validate_from` are CRC-checked too; at the first bad or
    /// short batch the file is truncated there.
    fn scan(
        &mut self,
        validate_from: Option<i64>,
    ) -> Result<(Option<Truncation>, Vec<LogFact>), Error> {
        let mut producers = Vec::new();
        let mut pos: u64 = 0;
        let mut entries = Vec::new();
        let mut time_entries: Vec<TimeEntry> = Vec::new();
        let mut since_index: u64 = 0;
        let mut next_offset = self.base_offset;
        let mut max_ts = -1i64;
        let mut max_ts_off = -1i64;
        let mut header = [0u8; HEADER_LEN];
        let mut cut: Option<String> = None;
        while pos < self.size {
            let remaining = self.size - pos;
            if remaining < HEADER_LEN as u64 {
                cut = Some(format!(
                    "{remaining} trailing bytes are shorter than a batch header"
                ));
                break;
            }
            self.file
                .read_exact_at(&mut header, pos)
                .map_err(|e| Error::io(&self.log_path, e))?;
            let Some((base, len)) = batch::peek_offset_and_len(&header) else {
                cut = Some("unreadable header".into());
                break;
            };
            let total = match u64::try_from(len) {
                Ok(l) if l + LOG_OVERHEAD as u64 >= HEADER_LEN as u64 => l + LOG_OVERHEAD as u64,
                _ => {
                    cut = Some(format!("invalid batch length {len}"));
                    break;
                }
            };
            if total > remaining {
                cut = Some(format!(
                    "batch of {total} bytes but only {remaining} remain"
                ));
                break;
            }
            if base < next_offset {
                cut = Some(format!(
                    "batch offset {base} goes backwards (expected >= {next_offset})"
                ));
                break;
            }
            let view_hdr = header;
            let check_crc = validate_from.is_some_and(|from| {
                let last = base.saturating_add(i64::from(last_delta(&view_hdr)));
                last >= from
            });
            if check_crc || header[16] != 2 {
                let mut buf = vec![0u8; usize::try_from(total).unwrap_or(0)];
                self.file
                    .read_exact_at(&mut buf, pos)
                    .map_err(|e| Error::io(&self.log_path, e))?;
                match BatchView::split_first(&buf) {
                    Ok(Some((v, _))) => {
                        if let Err(e) = v.validate() {
                            cut = Some(e.to_string());
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        cut = Some(e.to_string());
                        break;
                    }
                }
            }
            let last = base.saturating_add(i64::from(last_delta(&header)));
            if validate_from.is_some_and(|from| last >= from) {
                if let Some(p) = producer_batch(&header) {
                    producers.push(p);
                } else if let Some(m) = self.marker_at(&header, pos, total)? {
                    producers.push(m);
                }
            }
            let batch_max_ts = i64::from_be_bytes(header[35..43].try_into().unwrap_or([0; 8]));
            let rel = u32::try_from(base - self.base_offset).unwrap_or(u32::MAX);
            if entries.is_empty() || since_index >= super::INDEX_INTERVAL_BYTES as u64 {
                entries.push(OffsetEntry {
                    rel_offset: rel,
                    position: u32::try_from(pos).unwrap_or(u32::MAX),
                });
                since_index = 0;
                if batch_max_ts > max_ts {
                    time_entries.push(TimeEntry {
                        timestamp: batch_max_ts,
                        rel_offset: rel,
                    });
                }
            }
            since_index += total;
            if batch_max_ts > max_ts {
                max_ts = batch_max_ts;
                max_ts_off = base;
            }
            next_offset = last + 1;
            pos += total;
        }
        self.index.reset(entries);
        self.time_index.reset(time_entries);
        self.bytes_since_index = since_index;
        self.next_offset = next_offset;
        self.max_timestamp = max_ts;
        self.offset_of_max_timestamp = max_ts_off;
        let truncation = match cut {
            Some(reason) => {
                let bytes = self.size - pos;
                self.file
                    .set_len(pos)
                    .map_err(|e| Error::io(&self.log_path, e))?;
                self.size = pos;
                Some(Truncation {
                    bytes,
                    at_offset: next_offset,
                    reason,
                })
            }
            None => None,
        };
        Ok((truncation, producers))
    }

    /// The transaction marker of the control batch at `pos` whose header is `h`, as a
    /// fact to replay; `None` for any other batch. Control batches are tiny, so reading
    /// the whole batch to get at its control record's key costs nothing.
    fn marker_at(
        &self,
        h: &[u8; HEADER_LEN],
        pos: u64,
        total: u64,
    ) -> Result<Option<LogFact>, Error> {
        let attrs = i16::from_be_bytes([h[21], h[22]]);
        if attrs & batch::ATTR_CONTROL == 0 {
            return Ok(None);
        }
        let Some(len) = usize::try_from(total)
            .ok()
            .filter(|&l| l <= txn_index::MAX_CONTROL_BATCH_BYTES)
        else {
            tracing::warn!(path = %self.log_path.display(), pos, "skipping an oversized control batch");
            return Ok(None);
        };
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io(&self.log_path, e))?;
        let Ok(Some((v, _))) = BatchView::split_first(&buf) else {
            return Ok(None);
        };
        Ok(
            txn_index::decode_marker(&buf).map(|marker| LogFact::Marker {
                pid: v.producer_id(),
                epoch: v.producer_epoch(),
                offset: v.base_offset(),
                marker,
            }),
        )
    }

    /// The aborted transactions whose marker is in this segment.
    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }
    /// The aborted-transaction index, to append to or cut.
    pub fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.txn_index
    }

    /// Base offset (the file name).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Offset the next batch appended here would get.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Bytes in the `.log` file.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Largest batch max-timestamp, -1 when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// Base offset of the batch holding the largest timestamp.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    /// When the segment was created (ms since the epoch), for `segment.ms` rolls.
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }
    /// Whether an index is full and the segment must roll.
    pub fn index_full(&self) -> bool {
        self.index.is_full() || self.time_index.is_full()
    }
    /// Whether the `.log` file's directory entry is known to be durable.
    pub fn dir_synced(&self) -> bool {
        self.dir_synced
    }
    /// Record that the partition directory was fsynced after this file was created.
    pub fn set_dir_synced(&mut self) {
        self.dir_synced = true;
    }
    /// The shared file handle.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    /// Path of the `.log` file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Append already-offset-patched batches covering `[first, last]`.
    pub fn append(
        &mut self,
        bytes: &[u8],
        first: i64,
        last: i64,
        max_ts: i64,
        index_interval: u64,
    ) -> Result<(), Error> {
        self.file
            .write_all_at(bytes, self.size)
            .map_err(|e| Error::io(&self.log_path, e))?;
        let rel = u32::try_from(first - self.base_offset).unwrap_or(u32::MAX);
        if self.size == 0 || self.bytes_since_index >= index_interval {
            self.index.push(OffsetEntry {
                rel_offset: rel,
                position: u32::try_from(self.size).unwrap_or(u32::MAX),
            });
            if max_ts > self.max_timestamp {
                self.time_index.push(TimeEntry {
                    timestamp: max_ts,
                    rel_offset: rel,
                });
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += bytes.len() as u64;
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.offset_of_max_timestamp = first;
        }
        self.size += bytes.len() as u64;
        self.next_offset = last + 1;
        Ok(())
    }

    /// Check an offset-index entry loaded from disk against the batch header it points at:
    /// a batch must start there, with the base offset the entry names. `Err(BadIndex)` when
    /// it does not; the caller rebuilds the index ([`Segment::rebuild_indexes`]).
    fn check_entry(&self, e: OffsetEntry) -> Result<(), Error> {
        if self.index_verified {
            return Ok(());
        }
        let want = self.base_offset + i64::from(e.rel_offset);
        let pos = u64::from(e.position);
        let bad = |msg: String| {
            Err(Error::BadIndex {
                path: self.index.path().to_path_buf(),
                msg: format!("entry for offset {want} at byte {pos}: {msg}"),
            })
        };
        if pos + SCAN_HEADER as u64 > self.size {
            return bad(format!("past the end of the log ({} bytes)", self.size));
        }
        let mut hdr = [0u8; SCAN_HEADER];
        self.file
            .read_exact_at(&mut hdr, pos)
            .map_err(|e| Error::io(&self.log_path, e))?;
        match batch::peek_offset_and_len(&hdr) {
            Some((base, len))
                if base == want
                    && hdr[16] == 2
                    && u64::try_from(len)
                        .is_ok_and(|l| pos + l + LOG_OVERHEAD as u64 <= self.size) =>
            {
                Ok(())
            }
            Some((base, _)) if hdr[16] == 2 => bad(format!("the batch there starts at {base}")),
            _ => bad("no batch header there".into()),
        }
    }

    /// Rebuild both indexes from the batch headers of the log and write them out; from then
    /// on they are trusted. Returns what had to be cut from the log, if anything.
    pub fn rebuild_indexes(&mut self) -> Result<Option<Truncation>, Error> {
        let (truncation, _) = self.scan(None)?;
        self.index_verified = true;
        self.flush_indexes()?;
        Ok(truncation)
    }

    /// Find the position of the batch containing `offset` (or the first batch after it, for
    /// compacted gaps). `None` when the offset is at or past this segment's end.
    pub fn find(&self, offset: i64) -> Result<Option<(u64, i64)>, Error> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let rel = u32::try_from((offset - self.base_offset).max(0)).unwrap_or(u32::MAX);
        let entry = self.index.lookup(rel);
        if let Some(e) = entry {
            self.check_entry(e)?;
        }
        let mut pos = entry.map_or(0, |e| u64::from(e.position));
        let mut hdr = [0u8; SCAN_HEADER];
        while pos + SCAN_HEADER as u64 <= self.size {
            self.file
                .read_exact_at(&mut hdr, pos)
                .map_err(|e| Error::io(&self.log_path, e))?;
            let Some((base, len)) = batch::peek_offset_and_len(&hdr) else {
                break;
            };
            let last = base.saturating_add(i64::from(last_delta(&hdr)));
            if last >= offset {
                return Ok(Some((pos, base)));
            }
            let total =
                u64::try_from(len).map_err(|_| Error::BadBatchLength(len))? + LOG_OVERHEAD as u64;
            pos += total;
        }
        Ok(None)
    }

    /// A read slice from the batch containing `offset` up to `end` (bytes).
    /// `max_bytes` is what the caller may send; it only sets [`ReadSlice::hint`].
    pub fn slice(
        &self,
        offset: i64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Option<ReadSlice>, Error> {
        let Some((position, _)) = self.find(offset)? else {
            return Ok(None);
        };
        let limit = position
            .saturating_add(u64::try_from(max_bytes).unwrap_or(u64::MAX))
            .min(end);
        // Index entries point at batch starts; the last one within the limit is a safe
        // place to resume the walk over batch headers, once checked.
        let entries = self.index.entries();
        let i = entries.partition_point(|e| u64::from(e.position) <= limit);
        let hint = match i.checked_sub(1).and_then(|i| entries.get(i)) {
            Some(e) if u64::from(e.position) > position => {
                self.check_entry(*e)?;
                u64::from(e.position)
            }
            _ => position,
        };
        Ok((position < end).then(|| ReadSlice {
            file: Arc::clone(&self.file),
            position,
            end,
            hint,
        }))
    }

    /// First batch position whose max timestamp is at least `ts`, scanning from the time
    /// index. Returns the batch's position.
    pub fn find_by_timestamp(&self, ts: i64) -> Result<Option<u64>, Error> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let start_rel = self
            .time_index
            .lookup_last_below(ts)
            .map_or(0, |e| e.rel_offset);
        let start = self.base_offset + i64::from(start_rel);
        let Some((mut pos, _)) = self.find(start)? else {
            return Ok(None);
        };
        let mut hdr = [0u8; 43];
        while pos + 43 <= self.size {
            self.file
                .read_exact_at(&mut hdr, pos)
                .map_err(|e| Error::io(&self.log_path, e))?;
            let Some((_, len)) = batch::peek_offset_and_len(&hdr) else {
                break;
            };
            let batch_max = i64::from_be_bytes(hdr[35..43].try_into().unwrap_or([0; 8]));
            if batch_max >= ts {
                return Ok(Some(pos));
            }
            pos +=
                u64::try_from(len).map_err(|_| Error::BadBatchLength(len))? + LOG_OVERHEAD as u64;
        }
        Ok(None)
    }

    /// Read one whole batch at `pos`.
    pub fn read_batch_at(&self, pos: u64) -> Result<Vec<u8>, Error> {
        let mut hdr = [0u8; LOG_OVERHEAD];
        self.file
            .read_exact_at(&mut hdr, pos)
            .map_err(|e| Error::io(&self.log_path, e))?;
        let (_, len) = batch::peek_offset_and_len(&hdr).ok_or(Error::BadBatchLength(-1))?;
        let total = usize::try_from(len).map_err(|_| Error::BadBatchLength(len))? + LOG_OVERHEAD;
        let mut buf = vec![0u8; total];
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io(&self.log_path, e))?;
        Ok(buf)
    }

    /// Write pending index entries to their files.
    pub fn flush_indexes(&mut self) -> Result<(), Error> {
        self.index.flush()?;
        self.time_index.flush()
    }

    /// fsync the log file's data.
    pub fn sync(&self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.log_path, e))
    }

    /// Remove the segment's files.
    pub fn delete_files(&self) -> Result<(), Error> {
        for p in [
            self.log_path.clone(),
            self.index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        Ok(())
    }
}

/// Idempotence facts of a data batch found on disk.
fn producer_batch(h: &[u8; HEADER_LEN]) -> Option<LogFact> {
    let i64_at = |a: usize| {
        h.get(a..a + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(i64::from_be_bytes)
    };
    let i32_at = |a: usize| {
        h.get(a..a + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(i32::from_be_bytes)
    };
    let pid = i64_at(43)?;
    let seq = i32_at(53)?;
    if pid < 0 || seq < 0 {
        return None;
    }
    let epoch = i16::from_be_bytes([h[51], h[52]]);
    let attrs = i16::from_be_bytes([h[21], h[22]]);
    if attrs & batch::ATTR_CONTROL != 0 {
        return None;
    }
    let base = i64_at(0)?;
    let delta = last_delta(h);
    let last_seq =
        i32::try_from((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)).ok()?;
    Some(LogFact::Data {
        pid,
        epoch,
        meta: BatchMeta {
            first_seq: seq,
            last_seq,
            base_offset: base,
            last_offset: base.saturating_add(i64::from(delta)),
            max_timestamp: i64_at(35)?,
        },
        transactional: attrs & batch::ATTR_TRANSACTIONAL != 0,
    })
}

fn last_delta(hdr: &[u8]) -> i32 {
    hdr.get(23..27)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, i32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn append_n(seg: &mut Segment, n: i32, ts: i64) -> i64 {
        let mut b = make_batch(n, ts, -1, -1);
        let first = seg.next_offset();
        batch::assign_offset(&mut b, first, 0);
        let last = first + i64::from(n) - 1;
        seg.append(&b, first, last, ts, 0).unwrap();
        first
    }

    #[test]
    fn append_find_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 100, 4096, 0).unwrap();
        append_n(&mut seg, 3, 10);
        append_n(&mut seg, 2, 20);
        assert_eq!(seg.next_offset(), 105);
        let (pos, base) = seg.find(104).unwrap().unwrap();
        assert_eq!(base, 103);
        assert!(pos > 0);
        assert!(seg.find(105).unwrap().is_none());
        seg.flush_indexes().unwrap();
        let size = seg.size();
        drop(seg);
        let (seg, trunc, _) = Segment::open(dir.path(), 100, 4096, None, 0).unwrap();
        assert!(trunc.is_none());
        assert_eq!(seg.next_offset(), 105);
        assert_eq!(seg.size(), size);
        assert_eq!(seg.find_by_timestamp(15).unwrap(), Some(pos));
        assert_eq!(seg.max_timestamp(), 20);
    }

    #[test]
    fn garbage_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 4096, 0).unwrap();
        append_n(&mut seg, 2, 1);
        append_n(&mut seg, 2, 2);
        let good = seg.size();
        drop(seg);
        let path = dir.path().join("00000000000000000000.log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0xde; 100]);
        std::fs::write(&path, &bytes).unwrap();
        let (seg, trunc, _) = Segment::open(dir.path(), 0, 4096, Some(0), 0).unwrap();
        let t = trunc.unwrap();
        assert_eq!(t.bytes, 100);
        assert_eq!(t.at_offset, 4);
        assert_eq!(seg.size(), good);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    }

    #[test]
    fn corrupt_batch_is_cut_with_everything_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 4096, 0).unwrap();
        append_n(&mut seg, 1, 1);
        let first_end = seg.size();
        append_n(&mut seg, 1, 2);
        append_n(&mut seg, 1, 3);
        drop(seg);
        let path = dir.path().join("00000000000000000000.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let i = usize::try_from(first_end).unwrap() + 65;
        bytes[i] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (seg, trunc, _) = Segment::open(dir.path(), 0, 4096, Some(0), 0).unwrap();
        assert_eq!(trunc.unwrap().at_offset, 1);
        assert_eq!(seg.next_offset(), 1);
    }
}
