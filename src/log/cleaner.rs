//! Log compaction for topics with `cleanup.policy=compact`: keep only the last record per
//! key in closed segments (never the active one), drop tombstones older than
//! `delete.retention.ms`, keep every surviving record's offset (gaps are normal), and
//! respect `min.compaction.lag.ms`. Each segment is rewritten to `BASE.log.cleaned`,
//! synced, renamed to `BASE.log.swap` (the commit point), then swapped in under the
//! partition lock; recovery completes a committed swap and drops an uncommitted one.
//!
//! Differences from Kafka, by choice: segments are rewritten one for one (small ones are
//! not merged), and a tombstone's age is the newest timestamp of its segment (Kafka uses a
//! delete horizon stamped on the batch).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use tracing::{info, warn};

use super::batch::{BatchView, ATTR_CONTROL};
use super::partition::Partition;
use super::Error;

/// A closed segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base offset.
    pub base: i64,
    /// Base offset of the next segment.
    pub end: i64,
    /// Shared handle of the `.log` file.
    pub file: Arc<File>,
    /// Size in bytes.
    pub size: u64,
    /// Newest record timestamp in the segment.
    pub max_timestamp: i64,
}

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

/// Every batch of a segment's bytes, as (raw bytes, decoded records or None for control
/// batches and undecodable ones, which are kept as they are).
fn batches(bytes: &[u8]) -> Vec<(&[u8], Option<kafka_protocol::records::RecordSet>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((view, tail))) = BatchView::split_first(rest) {
        let raw = view.bytes();
        let decoded = if view.attributes() & ATTR_CONTROL != 0 {
            None
        } else {
            let mut b = Bytes::copy_from_slice(raw);
            RecordBatchDecoder::decode(&mut b).ok()
        };
        out.push((raw, decoded));
        rest = tail;
    }
    out
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
    // Pass 1: the latest offset of every key.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    let mut contents = Vec::with_capacity(targets.len());
    for t in &targets {
        let bytes = read_all(t)?;
        for (_, set) in batches(&bytes) {
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
    for (t, bytes) in targets.iter().zip(contents) {
        let tombstones_expire = now.saturating_sub(t.max_timestamp) > config.delete_retention_ms;
        let mut out = BytesMut::with_capacity(bytes.len());
        let mut removed = 0usize;
        for (raw, set) in batches(&bytes) {
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
