//! Log compaction for topics with `cleanup.policy=compact`: keep only the last record per
//! key in closed segments (never the active one), drop tombstones older than
//! `delete.retention.ms`, keep every surviving record's offset (gaps are normal), and
//! respect `min.compaction.lag.ms`. Each segment is rewritten to `BASE.log.cleaned`,
//! synced, renamed to `BASE.log.swap` (the commit point), then swapped in under the
//! partition lock; recovery completes a committed swap and drops an uncommitted one.
//!
//! Transactions, as Kafka's cleaner handles them: only offsets below the last stable
//! offset are cleaned (open transactions are never touched); the records of aborted
//! transactions (known from the `.txnindex`) are removed and never count as a key's latest
//! value; a COMMIT or ABORT marker is kept while any batch of its transaction remains, and
//! goes once none does and its segment is older than `delete.retention.ms`. A rewritten
//! segment's `.txnindex` keeps the entries of the ABORT markers it keeps whose data was
//! still there (Kafka's `CleanedTransactionMetadata`); it is swapped in with the log
//! (`BASE.txnindex.swap`, renamed before the log's swap commits).
//!
//! Differences from Kafka, by choice: segments are rewritten one for one (small ones are
//! not merged), a tombstone's or marker's age is the newest timestamp of its segment
//! (Kafka uses a delete horizon stamped on the batch), and the last batch of each producer
//! is not kept for its sequence numbers (the producer snapshot holds them).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use tracing::{info, warn};

use super::batch::BatchView;
use super::partition::{Partition, Target};
use super::txn_index::{self, AbortedTxn};
use super::Error;

/// What one pass over a partition did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Segments rewritten.
    pub segments: usize,
    /// Records dropped.
    pub removed: usize,
    /// Bytes before and after.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

fn read_all(t: &Target) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; usize::try_from(t.size).unwrap_or(0)];
    t.file
        .read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io(std::path::Path::new("segment"), e))?;
    Ok(buf)
}

/// Every batch of a segment's bytes, as (header view, decoded records or None for control
/// batches and undecodable ones, which are kept as they are).
fn batches(bytes: &[u8]) -> Vec<(BatchView<'_>, Option<kafka_protocol::records::RecordSet>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((view, tail))) = BatchView::split_first(rest) {
        let decoded = if view.is_control() {
            None
        } else {
            let mut b = Bytes::copy_from_slice(view.bytes());
            RecordBatchDecoder::decode(&mut b).ok()
        };
        out.push((view, decoded));
        rest = tail;
    }
    out
}

/// Transaction state of one walk over the segments in offset order (Kafka's
/// `CleanedTransactionMetadata`): which batches belong to aborted transactions, and which
/// markers still have data of their transaction before them.
struct TxnWalk {
    /// Aborted transactions not reached yet, latest first offset first (popped from the end).
    pending: Vec<AbortedTxn>,
    /// Aborted transactions under way, per producer, and whether a batch of one was seen.
    aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers whose (committed) transaction under way had a batch seen.
    committed: HashSet<i64>,
}

impl TxnWalk {
    fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_unstable_by_key(|t| std::cmp::Reverse(t.first_offset));
        TxnWalk {
            pending: aborted,
            aborted: HashMap::new(),
            committed: HashSet::new(),
        }
    }

    fn reach(&mut self, offset: i64) {
        while let Some(t) = self
            .pending
            .last()
            .copied()
            .filter(|t| t.first_offset <= offset)
        {
            self.pending.pop();
            self.aborted.entry(t.producer_id).or_insert((t, false));
        }
    }

    /// A data batch: whether it belongs to an aborted transaction (and goes).
    fn on_data(&mut self, v: &BatchView<'_>) -> bool {
        self.reach(v.last_offset());
        if !v.is_transactional() {
            return false;
        }
        match self.aborted.get_mut(&v.producer_id()) {
            Some(a) => {
                a.1 = true;
                true
            }
            None => {
                self.committed.insert(v.producer_id());
                false
            }
        }
    }

    /// A control batch: whether no batch of its transaction was seen (so the marker may go
    /// once old enough), and the `.txnindex` entry to keep with it if it is kept.
    fn on_control(&mut self, v: &BatchView<'_>) -> (bool, Option<AbortedTxn>) {
        self.reach(v.last_offset());
        let Some(m) = txn_index::decode_marker(v.bytes()) else {
            // Not a marker we can read: keep it as it is.
            return (false, None);
        };
        let pid = v.producer_id();
        if m.commit {
            (!self.committed.remove(&pid), None)
        } else {
            match self.aborted.remove(&pid) {
                Some((t, true)) => (false, Some(t)),
                _ => (true, None),
            }
        }
    }
}

/// Compact one partition if it is due. Blocking.
pub fn clean_partition(p: &Partition, now: i64) -> Result<Option<Stats>, Error> {
    let Some((config, targets)) = p.cleanable() else {
        return Ok(None);
    };
    let lag_cutoff = now.saturating_sub(config.min_compaction_lag_ms);
    // Only segments entirely older than the compaction lag take part.
    let targets: Vec<Target> = targets
        .into_iter()
        .take_while(|t| t.max_timestamp <= lag_cutoff)
        .collect();
    let Some(last) = targets.last() else {
        return Ok(None);
    };
    let cleaned_to = last.end;
    let first = targets.first().map_or(0, |t| t.base);
    let aborted = p.aborted_txns(first, cleaned_to)?;
    // Pass 1: the latest offset of every key, not counting aborted records.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    let mut contents = Vec::with_capacity(targets.len());
    let mut walk = TxnWalk::new(aborted.clone());
    for t in &targets {
        let bytes = read_all(t)?;
        for (view, set) in batches(&bytes) {
            if view.is_control() {
                walk.on_control(&view);
                continue;
            }
            if walk.on_data(&view) {
                continue;
            }
            for r in set.iter().flat_map(|s| s.records.iter()) {
                if let Some(k) = &r.key {
                    latest.insert(k.clone(), r.offset);
                }
            }
        }
        contents.push(bytes);
    }
    // Pass 2: rewrite segments that lose something.
    let mut stats = Stats::default();
    let mut walk = TxnWalk::new(aborted);
    for (t, bytes) in targets.iter().zip(contents) {
        let tombstones_expire = now.saturating_sub(t.max_timestamp) > config.delete_retention_ms;
        let mut out = BytesMut::with_capacity(bytes.len());
        let mut removed = 0usize;
        let mut txn_entries = Vec::new();
        for (view, set) in batches(&bytes) {
            let raw = view.bytes();
            let count = usize::try_from(view.records_count()).unwrap_or(0);
            if view.is_control() {
                let (no_data_left, entry) = walk.on_control(&view);
                if no_data_left && tombstones_expire {
                    removed += count.max(1);
                } else {
                    out.extend_from_slice(raw);
                    txn_entries.extend(entry);
                }
                continue;
            }
            if walk.on_data(&view) {
                removed += count.max(1);
                continue;
            }
            let Some(set) = set else {
                out.extend_from_slice(raw);
                continue;
            };
            let keep: Vec<_> = set
                .records
                .iter()
                .filter(|r| match &r.key {
                    Some(k) => {
                        latest.get(k) == Some(&r.offset)
                            && !(r.value.is_none() && tombstones_expire)
                    }
                    None => true,
                })
                .cloned()
                .collect();
            removed += set.records.len() - keep.len();
            if keep.len() == set.records.len() {
                out.extend_from_slice(raw);
            } else if !keep.is_empty() {
                let opts = RecordEncodeOptions {
                    version: set.version,
                    compression: set.compression,
                };
                if let Err(e) = RecordBatchEncoder::encode(&mut out, &keep, &opts) {
                    warn!(error = %e, base = t.base, "could not re-encode a batch; keeping it whole");
                    out.extend_from_slice(raw);
                }
            }
        }
        if removed == 0 {
            continue;
        }
        let dir = p.dir();
        let stem = super::segment::file_stem(t.base);
        // The index goes first: a `.txnindex.swap` without a `.log.swap` is dropped at
        // start-up, and with one it replaces the old index.
        let txn_cleaned = dir.join(format!("{stem}.txnindex.cleaned"));
        let txn_swap = dir.join(format!("{stem}.txnindex.swap"));
        std::fs::write(&txn_cleaned, txn_index::encode_entries(&txn_entries))
            .map_err(|e| Error::io(&txn_cleaned, e))?;
        File::open(&txn_cleaned)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&txn_cleaned, e))?;
        std::fs::rename(&txn_cleaned, &txn_swap).map_err(|e| Error::io(&txn_swap, e))?;
        let cleaned = dir.join(format!("{stem}.log.cleaned"));
        let swap = dir.join(format!("{stem}.log.swap"));
        std::fs::write(&cleaned, &out).map_err(|e| Error::io(&cleaned, e))?;
        File::open(&cleaned)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&cleaned, e))?;
        std::fs::rename(&cleaned, &swap).map_err(|e| Error::io(&swap, e))?;
        if p.swap_cleaned(t.base, &swap)? {
            stats.segments += 1;
            stats.removed += removed;
            stats.bytes_before += t.size;
            stats.bytes_after += out.len() as u64;
        }
    }
    p.set_first_dirty(cleaned_to);
    if stats.segments > 0 {
        info!(
            topic = p.topic(),
            partition = p.index(),
            segments = stats.segments,
            removed = stats.removed,
            before = stats.bytes_before,
            after = stats.bytes_after,
            "compacted"
        );
    }
    Ok(Some(stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use kafka_protocol::records::{Compression, Record, TimestampType};
    use std::sync::Arc;

    fn batch(recs: &[(&str, Option<&str>)], ts: i64) -> Vec<u8> {
        let records: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap(),
                sequence: i32::try_from(i).unwrap(),
                timestamp: ts,
                key: Some(Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Gzip,
            },
        )
        .unwrap();
        b.to_vec()
    }

    /// An uncompressed batch of one record per entry, transactional from `pid` when
    /// `pid >= 0`.
    fn txn_batch(recs: &[(&str, &str)], pid: i64, seq: i32) -> Vec<u8> {
        let records: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: pid >= 0,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap(),
                sequence: if pid >= 0 {
                    seq + i32::try_from(i).unwrap()
                } else {
                    -1
                },
                timestamp: 10,
                key: Some(Bytes::copy_from_slice(k.as_bytes())),
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.to_vec()
    }

    /// Every record up to the high watermark, control records as `(offset, "marker", "")`.
    fn everything(p: &Partition) -> Vec<(i64, String, String)> {
        let (mut off, _, hw, _) = p.offsets();
        let mut out = Vec::new();
        // A read returns batches of one segment: read on from the last one seen.
        while off < hw {
            let mut b = p.read(off, 1 << 20).unwrap().records;
            let mut next = off + 1;
            while !b.is_empty() {
                for r in RecordBatchDecoder::decode(&mut b).unwrap().records {
                    let text = |x: Option<Bytes>| String::from_utf8(x.unwrap().to_vec()).unwrap();
                    next = r.offset + 1;
                    if r.control {
                        out.push((r.offset, "marker".into(), String::new()));
                    } else {
                        out.push((r.offset, text(r.key), text(r.value)));
                    }
                }
            }
            off = next.max(off + 1);
        }
        out
    }

    fn offsets_of(v: &[(i64, String, String)]) -> Vec<i64> {
        v.iter().map(|r| r.0).collect()
    }

    #[test]
    fn aborted_records_go_and_markers_stay_while_their_data_does() {
        let dir = tempfile::tempdir().unwrap();
        // One batch per segment.
        let c = Arc::new(LogConfig {
            segment_bytes: 100,
            cleanup_policy: "compact".into(),
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        });
        let p = Partition::open("t".into(), 0, dir.path(), Arc::clone(&c), None, None).unwrap();
        p.append(&txn_batch(&[("a", "1"), ("b", "1")], 1, 0))
            .unwrap(); // 0..=1
        p.append(&txn_batch(&[("a", "2")], 2, 0)).unwrap(); // 2
        p.append_marker(1, 0, false, 0).unwrap(); // 3
        p.append_marker(2, 0, true, 0).unwrap(); // 4
        p.append(&txn_batch(&[("c", "1")], -1, 0)).unwrap(); // 5
        p.append(&txn_batch(&[("a", "3")], 3, 0)).unwrap(); // 6, open
        p.append(&txn_batch(&[("z", "1")], -1, 0)).unwrap(); // 7, active
        assert_eq!(p.last_stable_offset(), 6);
        // Markers carry the wall-clock time they were written at.
        let now = crate::log::partition::now_ms();
        // The aborted records go; a=2 is the latest committed value below the LSO (the
        // open a=3 is not cleaned); both markers stay (their data was still there).
        let s = clean_partition(&p, now).unwrap().unwrap();
        assert_eq!(s.removed, 2, "{s:?}");
        assert_eq!(offsets_of(&everything(&p)), vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(p.aborted_txns(0, 100).unwrap().len(), 1);
        // Pid 3 commits; with everything older than delete.retention.ms by now, the abort
        // marker (no data left) goes with its index entry, and a=2 gives way to a=3, but
        // pid 2's commit marker stays this time, as its batch was still there.
        p.append_marker(3, 0, true, 0).unwrap(); // 8
        p.append(&txn_batch(&[("y", "1")], -1, 0)).unwrap(); // 9
        p.append(&txn_batch(&[("x", "1")], -1, 0)).unwrap(); // 10, active
        let later = crate::log::partition::now_ms() + 5000;
        clean_partition(&p, later).unwrap().unwrap();
        assert_eq!(offsets_of(&everything(&p)), vec![4, 5, 6, 7, 8, 9, 10]);
        assert!(p.aborted_txns(0, 100).unwrap().is_empty());
        // Next time it has no data either: it goes. Pid 3's stays with a=3.
        p.append(&txn_batch(&[("w", "1")], -1, 0)).unwrap(); // 11
        clean_partition(&p, later).unwrap().unwrap();
        let all = everything(&p);
        assert_eq!(offsets_of(&all), vec![5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(all[1], (6, "a".to_string(), "3".to_string()));
        // read_committed sees the same; a restart too, with no leftovers.
        let r = p.read_committed(0, 1 << 20).unwrap();
        assert!(r.aborted.is_empty());
        p.flush_all().unwrap();
        drop(p);
        let leftover = dir.path().join("00000000000000000005.txnindex.swap");
        std::fs::write(&leftover, b"").unwrap();
        let p = Partition::open("t".into(), 0, dir.path(), c, None, None).unwrap();
        assert!(!leftover.exists());
        assert_eq!(offsets_of(&everything(&p)), vec![5, 6, 7, 8, 9, 10, 11]);
        assert!(p.aborted_txns(0, 100).unwrap().is_empty());
        assert_eq!(p.last_stable_offset(), 12);
    }

    #[test]
    fn an_aborted_value_never_hides_the_committed_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(LogConfig {
            segment_bytes: 100,
            cleanup_policy: "compact".into(),
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        });
        let p = Partition::open("t".into(), 0, dir.path(), c, None, None).unwrap();
        p.append(&txn_batch(&[("k", "good")], -1, 0)).unwrap(); // 0
        p.append(&txn_batch(&[("k", "bad")], 1, 0)).unwrap(); // 1
        p.append_marker(1, 0, false, 0).unwrap(); // 2
        p.append(&txn_batch(&[("z", "1")], -1, 0)).unwrap(); // 3, active
        clean_partition(&p, crate::log::partition::now_ms())
            .unwrap()
            .unwrap();
        let all = everything(&p);
        assert_eq!(all[0], (0, "k".to_string(), "good".to_string()));
        assert_eq!(offsets_of(&all), vec![0, 2, 3]);
    }

    fn read_everything(p: &Partition) -> Vec<(i64, String, Option<String>)> {
        let (mut off, _, hw, _) = p.offsets();
        let mut out = Vec::new();
        while off < hw {
            let d = p.read(off, 1 << 20).unwrap();
            let mut b = d.records.clone();
            let mut next = off;
            while !b.is_empty() {
                let set = RecordBatchDecoder::decode(&mut b).unwrap();
                for r in set.records {
                    next = r.offset + 1;
                    if r.offset >= off {
                        out.push((
                            r.offset,
                            String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                            r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                        ));
                    }
                }
            }
            off = next.max(off + 1);
        }
        out
    }

    #[test]
    fn keeps_last_value_per_key_and_drops_old_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(LogConfig {
            segment_bytes: 150,
            cleanup_policy: "compact".into(),
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        });
        let p = Partition::open("t".into(), 0, dir.path(), c, None, None).unwrap();
        p.append(&batch(&[("a", Some("1")), ("b", Some("1"))], 10))
            .unwrap();
        p.append(&batch(&[("a", Some("2")), ("c", Some("1"))], 10))
            .unwrap();
        p.append(&batch(&[("b", None), ("a", Some("3"))], 10))
            .unwrap();
        p.append(&batch(&[("z", Some("active"))], 10)).unwrap();
        let before = read_everything(&p);
        assert_eq!(before.len(), 7);
        // Tombstones are young (now = 500): b's tombstone stays.
        let s = clean_partition(&p, 500).unwrap().unwrap();
        assert!(s.removed >= 3, "{s:?}");
        let after = read_everything(&p);
        let keys: Vec<(String, Option<String>)> = after
            .iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("c".to_string(), Some("1".to_string())),
                ("b".to_string(), None),
                ("a".to_string(), Some("3".to_string())),
                ("z".to_string(), Some("active".to_string())),
            ]
        );
        // Offsets are preserved and increasing.
        let offs: Vec<i64> = after.iter().map(|(o, _, _)| *o).collect();
        assert_eq!(offs, vec![3, 4, 5, 6]);
        // Nothing new is dirty: no pass.
        assert!(clean_partition(&p, 500).unwrap().is_none());
        // New data rolls segments; with the tombstone older than delete.retention.ms by
        // now, the next pass drops it too.
        p.append(&batch(&[("y", Some("1")), ("y", Some("2"))], 10))
            .unwrap();
        p.append(&batch(&[("x", Some("1"))], 10)).unwrap();
        clean_partition(&p, 5000).unwrap().unwrap();
        let keys: Vec<String> = read_everything(&p).into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, vec!["c", "a", "z", "y", "x"]);
        // A restart reads the compacted segments back.
        p.flush_all().unwrap();
        drop(p);
        let c = Arc::new(LogConfig {
            cleanup_policy: "compact".into(),
            ..LogConfig::default()
        });
        let p = Partition::open("t".into(), 0, dir.path(), c, None, None).unwrap();
        let keys: Vec<String> = read_everything(&p).into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, vec!["c", "a", "z", "y", "x"]);
        assert_eq!(p.offsets().1, 10);
    }
}
