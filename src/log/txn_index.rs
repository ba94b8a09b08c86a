//! Transaction markers and the aborted-transaction index of a segment.
//!
//! A transaction ends in each partition with a control batch (a "marker") written by the
//! coordinator: one record whose key is Kafka's `ControlRecordType` (i16 version 0, i16
//! type: 0 = ABORT, 1 = COMMIT) and whose value is `EndTxnMarker` (i16 version 0, i32
//! coordinator epoch). Every ABORT that ends a transaction holding data is also recorded
//! in the `.txnindex` of the segment holding the marker, in Kafka's format: entries of 34
//! bytes (i16 version 0, i64 producer id, i64 first offset, i64 last offset = the marker's
//! offset, i64 last stable offset once the transaction completed), so `read_committed`
//! fetches can tell consumers which ranges to drop without reading the log.
//!
//! Here: the marker codec, and [`TxnIndex`] (entries in memory, appended to the file as
//! they come and fsynced with the segment's log). Which transactions are open lives in
//! the producer table (`producer.rs`); rebuilding the index after a crash lives in the
//! partition's recovery.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::EndTxnMarker;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::Error;

/// Bytes per `.txnindex` entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const TXN_ENTRY_BYTES: usize = 34;
/// Version of the `.txnindex` entries and of the control record key and value written.
const CURRENT_VERSION: i16 = 0;
/// `ControlRecordType` of an ABORT marker.
const CONTROL_ABORT: i16 = 0;
/// `ControlRecordType` of a COMMIT marker.
const CONTROL_COMMIT: i16 = 1;
/// A control batch larger than this is not a transaction marker we wrote (ours are under
/// 100 bytes); recovery and compaction do not decode it. Clients cannot write control
/// batches (the validator refuses them), so this only guards against a damaged file.
pub const MAX_CONTROL_BATCH_BYTES: usize = 64 * 1024;

/// One aborted transaction in a partition, as Kafka's `.txnindex` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer whose transaction was aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once this transaction had completed: the first
    /// offset of the earliest transaction still open then, else the marker's offset + 1.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; TXN_ENTRY_BYTES] {
        let mut b = [0u8; TXN_ENTRY_BYTES];
        b[0..2].copy_from_slice(&CURRENT_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// Decode one entry; `None` for an unknown version or a short slice.
    fn decode(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(i64::from_be_bytes)
        };
        let version = i16::from_be_bytes(b.get(0..2)?.try_into().ok()?);
        if version != CURRENT_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The aborted transactions whose ABORT marker lies in one segment, in marker order, and
/// the `.txnindex` file that holds them. Like Kafka, the file is only created when the
/// first entry is written.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Open once the file exists and has been written to or truncated here.
    file: Option<Arc<File>>,
    /// Entries were written since the last fsync.
    unsynced: bool,
    /// Whether the file's directory entry is known to be durable (false once this index
    /// created the file, until the partition directory is fsynced).
    dir_synced: bool,
}

impl TxnIndex {
    /// An empty index for a new segment; any stale file at `path` is removed.
    pub fn create(path: &Path) -> Result<Self, Error> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        Ok(TxnIndex {
            path: path.to_path_buf(),
            entries: Vec::new(),
            file: None,
            unsynced: false,
            dir_synced: true,
        })
    }

    /// Load the index of an existing segment. A missing file is an empty index. A file
    /// whose tail is not a whole valid entry (a torn write) keeps its valid prefix and is
    /// cut to it, as entries are only ever appended.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut entries: Vec<AbortedTxn> = Vec::new();
        for chunk in bytes.chunks(TXN_ENTRY_BYTES) {
            match AbortedTxn::decode(chunk) {
                Some(t) if chunk.len() == TXN_ENTRY_BYTES => entries.push(t),
                _ => break,
            }
        }
        let mut index = TxnIndex {
            path: path.to_path_buf(),
            entries,
            file: None,
            unsynced: false,
            dir_synced: true,
        };
        if index.entries.len() * TXN_ENTRY_BYTES != bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = index.entries.len(),
                "cutting an unreadable tail off a transaction index"
            );
            index.set_file_len()?;
        }
        Ok(index)
    }

    /// Path of the `.txnindex` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries, in marker order.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    fn open_file(&mut self) -> Result<Arc<File>, Error> {
        if let Some(f) = &self.file {
            return Ok(Arc::clone(f));
        }
        let existed = self.path.exists();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        if !existed {
            self.dir_synced = false;
        }
        let f = Arc::new(f);
        self.file = Some(Arc::clone(&f));
        Ok(f)
    }

    fn set_file_len(&mut self) -> Result<(), Error> {
        let f = self.open_file()?;
        f.set_len((self.entries.len() * TXN_ENTRY_BYTES) as u64)
            .map_err(|e| Error::io(&self.path, e))?;
        self.unsynced = true;
        Ok(())
    }

    /// Append an entry; markers come in offset order, so entries stay sorted by
    /// `last_offset` (Kafka refuses an out-of-order append the same way).
    pub fn append(&mut self, t: AbortedTxn) -> Result<(), Error> {
        if let Some(last) = self.entries.last() {
            if t.last_offset <= last.last_offset {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    msg: format!(
                        "aborted transaction at offset {} is not after the last one at {}",
                        t.last_offset, last.last_offset
                    ),
                });
            }
        }
        let f = self.open_file()?;
        let at = (self.entries.len() * TXN_ENTRY_BYTES) as u64;
        f.write_all_at(&t.encode(), at)
            .map_err(|e| Error::io(&self.path, e))?;
        self.entries.push(t);
        self.unsynced = true;
        Ok(())
    }

    /// Drop the entries whose marker is at or past `offset` (a truncated or re-scanned
    /// tail). Returns how many went.
    pub fn truncate_to(&mut self, offset: i64) -> Result<usize, Error> {
        let keep = self.entries.partition_point(|t| t.last_offset < offset);
        let gone = self.entries.len() - keep;
        if gone > 0 {
            self.entries.truncate(keep);
            self.set_file_len()?;
        }
        Ok(gone)
    }

    /// Add the entries with `last_offset >= from && first_offset < upper` to `out` (Kafka's
    /// `TransactionIndex.collectAbortedTxns`). Returns true once an entry shows that no
    /// later entry can overlap `upper`: its last stable offset is at or past `upper`, so
    /// every transaction that began below `upper` had completed by then.
    pub fn collect(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        let start = self.entries.partition_point(|t| t.last_offset < from);
        for t in &self.entries[start..] {
            if t.first_offset < upper {
                out.push(*t);
            }
            if t.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }

    /// The file handle to fsync, if entries were written since the last sync.
    pub fn unsynced_file(&self) -> Option<Arc<File>> {
        self.unsynced.then(|| self.file.clone()).flatten()
    }

    /// Record a completed fsync of the handle taken from [`Self::unsynced_file`] when the
    /// index held `entries_when_taken` entries; entries appended after that stay unsynced.
    pub fn mark_synced(&mut self, entries_when_taken: usize) {
        if self.entries.len() == entries_when_taken {
            self.unsynced = false;
        }
    }

    /// Number of entries (to pair with [`Self::mark_synced`]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the file's directory entry is known to be durable.
    pub fn dir_synced(&self) -> bool {
        self.dir_synced
    }

    /// Record that the partition directory was fsynced after the file was created.
    pub fn set_dir_synced(&mut self) {
        self.dir_synced = true;
    }

    /// Remove the file (segment deletion).
    pub fn delete_file(&self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}

/// Encode a whole `.txnindex` file's bytes (for a compacted segment's swap file).
pub fn encode_entries(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * TXN_ENTRY_BYTES);
    for t in entries {
        out.extend_from_slice(&t.encode());
    }
    out
}

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// Epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
    /// The control record's timestamp.
    pub timestamp: i64,
}

fn corrupt(msg: String) -> Error {
    Error::Corrupt {
        path: PathBuf::new(),
        msg,
    }
}

/// Build the control batch of a transaction marker (base offset 0; the append assigns the
/// real one), as Kafka's `MemoryRecords.withEndTransactionMarker` does: transactional and
/// control, sequence -1, one record keyed by the control type.
pub fn encode_marker(producer_id: i64, producer_epoch: i16, m: Marker) -> Result<Vec<u8>, Error> {
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    let kind = if m.commit {
        CONTROL_COMMIT
    } else {
        CONTROL_ABORT
    };
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    EndTxnMarker::default()
        .with_coordinator_epoch(m.coordinator_epoch)
        .encode(&mut value, 0)
        .map_err(|e| corrupt(format!("cannot encode a transaction marker: {e}")))?;
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: m.timestamp,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| corrupt(format!("cannot encode a transaction marker: {e}")))?;
    Ok(out.to_vec())
}

/// Read the marker out of a control batch (its whole bytes). `None` when the batch is not
/// a COMMIT or ABORT marker we can read: empty (Kafka's cleaner leaves empty control
/// batches), of an unknown control type, or undecodable.
pub fn decode_marker(batch: &[u8]) -> Option<Marker> {
    if batch.len() > MAX_CONTROL_BATCH_BYTES {
        return None;
    }
    let mut buf = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    let r = set.records.first()?;
    if !r.control {
        return None;
    }
    let key = r.key.as_ref()?;
    let kind = i16::from_be_bytes([*key.get(2)?, *key.get(3)?]);
    let commit = match kind {
        CONTROL_COMMIT => true,
        CONTROL_ABORT => false,
        _ => return None,
    };
    let value = r.value.as_ref()?;
    // Kafka reads any version >= 0 as version 0 (later versions only add fields).
    let version = i16::from_be_bytes([*value.first()?, *value.get(1)?]);
    if version < 0 {
        return None;
    }
    let mut rest = value.slice(2..);
    let v0 = EndTxnMarker::decode(&mut rest, 0).ok()?;
    Some(Marker {
        commit,
        coordinator_epoch: v0.coordinator_epoch,
        timestamp: r.timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchView, ATTR_CONTROL, ATTR_TRANSACTIONAL};

    #[test]
    fn markers_decode_as_control_and_transactional() {
        for commit in [true, false] {
            let m = Marker {
                commit,
                coordinator_epoch: 7,
                timestamp: 1234,
            };
            let b = encode_marker(42, 3, m).unwrap();
            let (v, rest) = BatchView::split_first(&b).unwrap().unwrap();
            assert!(rest.is_empty());
            v.validate().unwrap();
            assert_eq!(
                v.attributes() & (ATTR_CONTROL | ATTR_TRANSACTIONAL),
                ATTR_CONTROL | ATTR_TRANSACTIONAL
            );
            assert_eq!((v.producer_id(), v.producer_epoch()), (42, 3));
            assert_eq!((v.base_sequence(), v.records_count()), (-1, 1));
            // A client's decoder sees one control record with the control-type key.
            let mut buf = Bytes::copy_from_slice(&b);
            let set = RecordBatchDecoder::decode(&mut buf).unwrap();
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, u8::from(commit)][..]));
            assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
            assert_eq!(decode_marker(&b), Some(m));
        }
    }

    #[test]
    fn index_appends_truncates_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut ix = TxnIndex::create(&path).unwrap();
        assert!(!path.exists(), "created lazily");
        let t = |pid, first, last, lso| AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        };
        ix.append(t(1, 0, 5, 6)).unwrap();
        ix.append(t(2, 3, 9, 10)).unwrap();
        ix.append(t(3, 12, 20, 21)).unwrap();
        assert!(ix.append(t(4, 1, 20, 21)).is_err());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 34);
        let mut out = Vec::new();
        assert!(ix.collect(6, 10, &mut out));
        assert_eq!(out, vec![t(2, 3, 9, 10)]);
        assert_eq!(ix.truncate_to(9).unwrap(), 2);
        drop(ix);
        // A torn tail: half an entry after the one that remains.
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 34);
        bytes.extend_from_slice(&[0u8; 20]);
        std::fs::write(&path, &bytes).unwrap();
        let ix = TxnIndex::load(&path).unwrap();
        assert_eq!(ix.entries(), &[t(1, 0, 5, 6)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
        assert_eq!(encode_entries(ix.entries()), std::fs::read(&path).unwrap());
    }
}
