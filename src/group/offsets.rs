//! Committed offsets: kept in memory, made durable in the internal `__consumer_offsets` log
//! before a commit is acknowledged, and replayed from it at start-up. Records use Kafka's own
//! key and value layouts (offset-commit key v1, value v3), so the log reads like Kafka's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tracing::{info, warn};

use crate::log::partition::now_ms;
use crate::log::{LogManager, Partition};

/// Name of the internal offsets topic, as Kafka names it.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the record before it, -1 when unknown.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the internal log failed.
    #[error("writing {OFFSETS_TOPIC}: {0}")]
    Append(String),
    /// Opening or replaying the internal log failed.
    #[error("loading {OFFSETS_TOPIC}: {0}")]
    Load(String),
}

type GroupOffsets = HashMap<(String, i32), CommittedOffset>;

/// All groups' committed offsets.
pub struct OffsetStore {
    log: Arc<Partition>,
    map: Mutex<HashMap<String, GroupOffsets>>,
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&s.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
}

fn get_str(b: &mut Bytes) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let len = b.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = usize::try_from(len).ok()?;
    if b.remaining() < len {
        return None;
    }
    String::from_utf8(b.split_to(len).to_vec()).ok()
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + group.len() + topic.len());
    b.put_i16(KEY_VERSION);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

fn encode_value(c: &CommittedOffset) -> Bytes {
    let mut b = BytesMut::with_capacity(32);
    b.put_i16(VALUE_VERSION);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, c.metadata.as_deref().unwrap_or(""));
    b.put_i64(c.commit_timestamp);
    b.freeze()
}

fn decode_key(mut b: Bytes) -> Option<(String, String, i32)> {
    if b.remaining() < 2 || b.get_i16() > 1 {
        // Versions 0 and 1 are offset keys; 2 is group metadata, which Sluice rebuilds.
        return None;
    }
    let group = get_str(&mut b)?;
    let topic = get_str(&mut b)?;
    (b.remaining() >= 4).then(|| (group, topic, b.get_i32()))
}

fn decode_value(mut b: Bytes) -> Option<CommittedOffset> {
    if b.remaining() < 10 {
        return None;
    }
    let version = b.get_i16();
    let offset = b.get_i64();
    let leader_epoch = if version >= 3 && b.remaining() >= 4 {
        b.get_i32()
    } else {
        -1
    };
    let metadata = get_str(&mut b)?;
    let commit_timestamp = if b.remaining() >= 8 { b.get_i64() } else { 0 };
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata: Some(metadata),
        commit_timestamp,
    })
}

impl OffsetStore {
    /// Open (creating if needed) the internal topic and replay it.
    pub fn open(logs: &LogManager) -> Result<Self, Error> {
        let topic = match logs.topic(OFFSETS_TOPIC) {
            Some(t) => t,
            None => {
                let overrides = [("cleanup.policy".to_string(), "compact".to_string())].into();
                logs.create_topic(OFFSETS_TOPIC, 1, overrides, false)
                    .map_err(|e| Error::Load(e.to_string()))?
            }
        };
        let log = topic
            .partitions
            .first()
            .cloned()
            .ok_or_else(|| Error::Load("no partition".into()))?;
        let store = OffsetStore {
            log,
            map: Mutex::new(HashMap::new()),
        };
        store.replay()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GroupOffsets>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replay(&self) -> Result<(), Error> {
        let (mut offset, _, hw, _) = self.log.offsets();
        let mut applied = 0usize;
        let mut map = self.lock();
        while offset < hw {
            let data = self
                .log
                .read(offset, 1 << 20)
                .map_err(|e| Error::Load(e.to_string()))?;
            if data.records.is_empty() {
                break;
            }
            let mut buf = data.records.clone();
            let mut next = offset;
            while buf.has_remaining() {
                let set = match RecordBatchDecoder::decode(&mut buf) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, offset = next, "skipping an undecodable batch in {OFFSETS_TOPIC}");
                        break;
                    }
                };
                for r in set.records {
                    next = next.max(r.offset + 1);
                    let Some(key) = r.key.and_then(decode_key) else {
                        continue;
                    };
                    let (group, topic, partition) = key;
                    match r.value.and_then(decode_value) {
                        Some(v) => {
                            map.entry(group).or_default().insert((topic, partition), v);
                        }
                        None => {
                            if let Some(g) = map.get_mut(&group) {
                                g.remove(&(topic, partition));
                                if g.is_empty() {
                                    map.remove(&group);
                                }
                            }
                        }
                    }
                    applied += 1;
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        info!(
            records = applied,
            groups = map.len(),
            "loaded committed offsets"
        );
        Ok(())
    }

    fn append(&self, records: Vec<(Bytes, Option<Bytes>)>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let recs: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap_or(0),
                // one batch: the encoder splits when offset - sequence changes
                sequence: i32::try_from(i).unwrap_or(0),
                timestamp: now,
                key: Some(k),
                value: v,
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| Error::Append(e.to_string()))?;
        self.log
            .append(&buf)
            .map_err(|e| Error::Append(e.to_string()))?;
        Ok(())
    }

    /// Make commits durable in the log, then visible. Blocking: call from the blocking pool.
    pub fn commit(
        &self,
        group: &str,
        entries: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), Error> {
        let records = entries
            .iter()
            .map(|((t, p), c)| (encode_key(group, t, *p), Some(encode_value(c))))
            .collect();
        self.append(records)?;
        let mut map = self.lock();
        let g = map.entry(group.to_string()).or_default();
        for (k, v) in entries {
            g.insert(k, v);
        }
        Ok(())
    }

    /// Delete some (or, with `None`, all) of a group's offsets with tombstones.
    pub fn delete(&self, group: &str, parts: Option<&[(String, i32)]>) -> Result<usize, Error> {
        let keys: Vec<(String, i32)> = {
            let map = self.lock();
            let Some(g) = map.get(group) else {
                return Ok(0);
            };
            match parts {
                Some(ps) => ps.iter().filter(|k| g.contains_key(*k)).cloned().collect(),
                None => g.keys().cloned().collect(),
            }
        };
        self.append(
            keys.iter()
                .map(|(t, p)| (encode_key(group, t, *p), None))
                .collect(),
        )?;
        let mut map = self.lock();
        if let Some(g) = map.get_mut(group) {
            for k in &keys {
                g.remove(k);
            }
            if g.is_empty() {
                map.remove(group);
            }
        }
        Ok(keys.len())
    }

    /// One committed offset.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)))
            .cloned()
    }

    /// All of a group's offsets, sorted.
    pub fn group(&self, group: &str) -> Vec<((String, i32), CommittedOffset)> {
        let mut v: Vec<_> = self
            .lock()
            .get(group)
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Groups that have offsets.
    pub fn groups(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Offsets committed before `cutoff` (ms), per group: for retention.
    pub fn older_than(&self, cutoff: i64) -> Vec<(String, Vec<(String, i32)>)> {
        self.lock()
            .iter()
            .map(|(g, offs)| {
                (
                    g.clone(),
                    offs.iter()
                        .filter(|(_, c)| c.commit_timestamp < cutoff)
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, ks)| !ks.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;

    #[test]
    fn commits_survive_reopen_and_tombstones_delete() {
        let dir = tempfile::tempdir().unwrap();
        {
            let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
            let s = OffsetStore::open(&logs).unwrap();
            let c = |o| CommittedOffset {
                offset: o,
                leader_epoch: 0,
                metadata: Some("meta".into()),
                commit_timestamp: 5,
            };
            s.commit(
                "g",
                vec![(("t".into(), 0), c(10)), (("t".into(), 1), c(20))],
            )
            .unwrap();
            s.commit("g", vec![(("t".into(), 0), c(11))]).unwrap();
            s.commit("h", vec![(("u".into(), 0), c(1))]).unwrap();
            assert_eq!(s.delete("h", None).unwrap(), 1);
            logs.checkpoint().unwrap();
        }
        let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let s = OffsetStore::open(&logs).unwrap();
        assert_eq!(s.get("g", "t", 0).unwrap().offset, 11);
        assert_eq!(
            s.get("g", "t", 1).unwrap().metadata.as_deref(),
            Some("meta")
        );
        assert!(s.get("h", "u", 0).is_none());
        assert_eq!(s.groups(), vec!["g".to_string()]);
    }

    #[test]
    fn key_and_value_round_trip() {
        let k = encode_key("grp", "topic", 7);
        assert_eq!(decode_key(k), Some(("grp".into(), "topic".into(), 7)));
        let v = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: Some("m".into()),
            commit_timestamp: 99,
        };
        assert_eq!(decode_value(encode_value(&v)), Some(v));
    }
}
