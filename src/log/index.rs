//! Sparse offset and time indexes, Kafka's on-disk format: `.index` holds
//! (relative offset u32, file position u32) entries of 8 bytes and `.timeindex` holds
//! (timestamp i64, relative offset u32) entries of 12 bytes, both big-endian.
//!
//! Entries live in memory and are appended to the files lazily (on flush, roll and
//! shutdown); a missing or inconsistent index file is rebuilt from the log by recovery.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Error;

/// Bytes per offset-index entry.
pub const OFFSET_ENTRY: usize = 8;
/// Bytes per time-index entry.
pub const TIME_ENTRY: usize = 12;

/// An in-memory sparse index plus the file it mirrors.
#[derive(Debug)]
pub struct Index<E> {
    path: PathBuf,
    entries: Vec<E>,
    persisted: usize,
    max_entries: usize,
}

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset relative to the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of the batch in the `.log` file.
    pub position: u32,
}

/// One time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp seen up to and including this batch.
    pub timestamp: i64,
    /// Offset (relative) of the batch where that timestamp was reached.
    pub rel_offset: u32,
}

/// Encoding of one index entry.
pub trait Entry: Copy {
    /// Entry size in bytes.
    const SIZE: usize;
    /// Append the big-endian encoding.
    fn write(&self, out: &mut Vec<u8>);
    /// Decode from exactly `SIZE` bytes.
    fn read(b: &[u8]) -> Self;
}

impl Entry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn read(b: &[u8]) -> Self {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[0..4]);
        let rel_offset = u32::from_be_bytes(a);
        a.copy_from_slice(&b[4..8]);
        OffsetEntry {
            rel_offset,
            position: u32::from_be_bytes(a),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = TIME_ENTRY;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
    }
    fn read(b: &[u8]) -> Self {
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[0..8]);
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[8..12]);
        TimeEntry {
            timestamp: i64::from_be_bytes(t),
            rel_offset: u32::from_be_bytes(a),
        }
    }
}

impl<E: Entry> Index<E> {
    /// A new, empty index that will be written to `path`; any old file there is replaced.
    pub fn create(path: &Path, max_bytes: usize) -> Result<Self, Error> {
        File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Index {
            path: path.to_path_buf(),
            entries: Vec::new(),
            persisted: 0,
            max_entries: (max_bytes / E::SIZE).max(1),
        })
    }

    /// Load an index file. A trailing partial entry is dropped; the caller checks consistency
    /// against the log.
    pub fn load(path: &Path, max_bytes: usize) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::read).collect();
        let persisted = entries.len();
        Ok(Index {
            path: path.to_path_buf(),
            entries,
            persisted,
            max_entries: (max_bytes / E::SIZE).max(1),
        })
    }

    /// All entries, in order.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Whether no more entries fit (`segment.index.bytes`); the segment must roll.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Add an entry in memory.
    pub fn push(&mut self, e: E) {
        self.entries.push(e);
    }

    /// Drop every entry for which `keep` is false at the tail (used by truncation).
    pub fn truncate_while(&mut self, mut drop_it: impl FnMut(&E) -> bool) {
        while self.entries.last().is_some_and(&mut drop_it) {
            self.entries.pop();
        }
        if self.persisted > self.entries.len() {
            // The file holds entries we dropped: rewrite it whole on the next flush.
            self.persisted = usize::MAX;
        }
    }

    /// Write entries not yet in the file.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let rewrite = self.persisted > self.entries.len();
        let from = if rewrite { 0 } else { self.persisted };
        let mut buf = Vec::with_capacity((self.entries.len() - from) * E::SIZE);
        for e in &self.entries[from..] {
            e.write(&mut buf);
        }
        let mut f = if rewrite {
            File::create(&self.path)
        } else {
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)
        }
        .map_err(|e| Error::io(&self.path, e))?;
        f.write_all(&buf).map_err(|e| Error::io(&self.path, e))?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Replace all entries (after a rebuild) and rewrite the file on the next flush.
    pub fn reset(&mut self, entries: Vec<E>) {
        self.entries = entries;
        self.persisted = usize::MAX;
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Index<OffsetEntry> {
    /// The last entry whose offset is at most `rel`, as (relative offset, position).
    pub fn lookup(&self, rel: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel_offset <= rel);
        i.checked_sub(1).and_then(|i| self.entries.get(i)).copied()
    }
}

impl Index<TimeEntry> {
    /// The first entry whose timestamp is at least `ts`.
    pub fn lookup_first_at_least(&self, ts: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < ts);
        self.entries.get(i).copied()
    }
    /// The last entry whose timestamp is below `ts`: scanning may start there.
    pub fn lookup_last_below(&self, ts: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < ts);
        i.checked_sub(1).and_then(|i| self.entries.get(i)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = Index::<OffsetEntry>::create(&p, 1024).unwrap();
        for i in 0..10u32 {
            idx.push(OffsetEntry {
                rel_offset: i * 10,
                position: i * 100,
            });
        }
        idx.flush().unwrap();
        let loaded = Index::<OffsetEntry>::load(&p, 1024).unwrap();
        assert_eq!(loaded.entries(), idx.entries());
        assert_eq!(loaded.lookup(35).unwrap().position, 300);
        assert_eq!(loaded.lookup(0).unwrap().position, 0);
        assert!(Index::<OffsetEntry>::create(&p, 1024)
            .unwrap()
            .lookup(5)
            .is_none());
    }

    #[test]
    fn truncation_rewrites_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.timeindex");
        let mut idx = Index::<TimeEntry>::create(&p, 1024).unwrap();
        for i in 0..5 {
            idx.push(TimeEntry {
                timestamp: 100 + i64::from(i),
                rel_offset: i,
            });
        }
        idx.flush().unwrap();
        idx.truncate_while(|e| e.rel_offset >= 3);
        idx.flush().unwrap();
        let loaded = Index::<TimeEntry>::load(&p, 1024).unwrap();
        assert_eq!(loaded.entries().len(), 3);
        assert_eq!(loaded.lookup_first_at_least(101).unwrap().rel_offset, 1);
        assert_eq!(loaded.lookup_last_below(101).unwrap().rel_offset, 0);
    }

    #[test]
    fn partial_trailing_entry_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index");
        std::fs::write(&p, [0u8, 0, 0, 1, 0, 0, 0, 2, 9, 9]).unwrap();
        let idx = Index::<OffsetEntry>::load(&p, 64).unwrap();
        assert_eq!(idx.entries().len(), 1);
        assert!(!idx.is_full());
    }
}
