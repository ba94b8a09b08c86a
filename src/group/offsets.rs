//! Committed offsets: kept in memory, made durable in the internal `__consumer_offsets` log
//! before a commit is acknowledged, and replayed from it at start-up. Records use Kafka's own
//! key and value layouts (offset-commit key v1, value v3), so the log reads like Kafka's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tracing::info;

use crate::log::partition::now_ms;
use crate::log::{LogManager, Partition};

/// Name of the internal offsets topic, as Kafka names it.
pub const OFFSETS_TOPIC: &str = crate::log::CONSUMER_OFFSETS_TOPIC;
/// Kafka's `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;
/// Kafka's group-metadata key version, and the value layout version written.
const GROUP_KEY_VERSION: i16 = 2;
const GROUP_VALUE_VERSION: i16 = 3;
/// Sluice's own key version for KIP-848 group snapshots (Kafka uses a family of record
/// types there; Sluice keeps one snapshot per group).
pub const CONSUMER_GROUP_KEY_VERSION: i16 = 0x5100;

/// A classic group as stored in `__consumer_offsets` (Kafka's GroupMetadataValue v3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// `consumer`, `connect`, ...
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When this state was reached (ms).
    pub timestamp: i64,
    /// Members.
    pub members: Vec<MemberRecord>,
}

/// One member of a stored classic group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Metadata of the selected protocol.
    pub subscription: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn get_nullable_str(b: &mut Bytes) -> Option<Option<String>> {
    if b.remaining() < 2 {
        return None;
    }
    let len = i16::from_be_bytes([b[0], b[1]]);
    if len < 0 {
        b.advance(2);
        return Some(None);
    }
    get_str(b).map(Some)
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
    b.put_slice(v);
}

fn get_bytes(b: &mut Bytes) -> Option<Bytes> {
    if b.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(b.get_i32()).unwrap_or(0);
    (b.remaining() >= len).then(|| b.split_to(len))
}

fn group_key(version: i16, group: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + group.len());
    b.put_i16(version);
    put_str(&mut b, group);
    b.freeze()
}

/// Encode a classic group in Kafka's GroupMetadataValue v3 layout.
pub fn encode_group(g: &GroupRecord) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable_str(&mut b, g.protocol.as_deref());
    put_nullable_str(&mut b, g.leader.as_deref());
    b.put_i64(g.timestamp);
    b.put_i32(i32::try_from(g.members.len()).unwrap_or(0));
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Decode a GroupMetadataValue (v3 layout; older versions are skipped).
pub fn decode_group(mut b: Bytes) -> Option<GroupRecord> {
    if b.remaining() < 2 || b.get_i16() != GROUP_VALUE_VERSION {
        return None;
    }
    let protocol_type = get_str(&mut b)?;
    if b.remaining() < 4 {
        return None;
    }
    let generation = b.get_i32();
    let protocol = get_nullable_str(&mut b)?;
    let leader = get_nullable_str(&mut b)?;
    if b.remaining() < 12 {
        return None;
    }
    let timestamp = b.get_i64();
    let n = usize::try_from(b.get_i32()).unwrap_or(0);
    let mut members = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let member_id = get_str(&mut b)?;
        let instance_id = get_nullable_str(&mut b)?;
        let client_id = get_str(&mut b)?;
        let client_host = get_str(&mut b)?;
        if b.remaining() < 8 {
            return None;
        }
        let rebalance_timeout_ms = b.get_i32();
        let session_timeout_ms = b.get_i32();
        let subscription = get_bytes(&mut b)?;
        let assignment = get_bytes(&mut b)?;
        members.push(MemberRecord {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupRecord {
        protocol_type,
        generation,
        protocol,
        leader,
        timestamp,
        members,
    })
}

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
/// Offsets written by TxnOffsetCommit, by producer id, until the transaction's marker:
/// (group, (topic, partition), offset), in commit order.
type PendingTxnOffsets = HashMap<i64, Vec<(String, (String, i32), CommittedOffset)>>;

pub struct OffsetStore {
    log: Arc<Partition>,
    map: Mutex<HashMap<String, GroupOffsets>>,
    /// Transactional offsets not yet committed or aborted: OffsetFetch does not see them.
    pending: Mutex<PendingTxnOffsets>,
    /// Group metadata found at start-up: classic groups and KIP-848 snapshots, by id.
    loaded_groups: Mutex<HashMap<String, GroupRecord>>,
    loaded_consumer_groups: Mutex<HashMap<String, Bytes>>,
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

/// A control record's key (version, type): whether it is a COMMIT (type 1) or ABORT (0).
fn control_is_commit(mut b: Bytes) -> Option<bool> {
    if b.remaining() < 4 {
        return None;
    }
    let _version = b.get_i16();
    match b.get_i16() {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

fn decode_group_key(mut b: Bytes) -> Option<(i16, String)> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version != GROUP_KEY_VERSION && version != CONSUMER_GROUP_KEY_VERSION {
        return None;
    }
    get_str(&mut b).map(|g| (version, g))
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
            pending: Mutex::new(HashMap::new()),
            loaded_groups: Mutex::new(HashMap::new()),
            loaded_consumer_groups: Mutex::new(HashMap::new()),
        };
        store.replay()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GroupOffsets>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replay(&self) -> Result<(), Error> {
        let mut applied = 0usize;
        let mut map = self.lock();
        self.log
            .replay(|r| {
                if r.control {
                    // A transaction marker: its offsets become committed, or are dropped.
                    if let Some(commit) = r.key.clone().and_then(control_is_commit) {
                        self.complete_pending(&mut map, r.producer_id, commit);
                    }
                    return;
                }
                if r.transactional {
                    if let (Some((group, topic, partition)), Some(v)) = (
                        r.key.clone().and_then(decode_key),
                        r.value.clone().and_then(decode_value),
                    ) {
                        self.pending_lock().entry(r.producer_id).or_default().push((
                            group,
                            (topic, partition),
                            v,
                        ));
                        applied += 1;
                    }
                    return;
                }
                if let Some((version, group)) = r.key.clone().and_then(decode_group_key) {
                    if version == GROUP_KEY_VERSION {
                        let mut loaded =
                            self.loaded_groups.lock().unwrap_or_else(|p| p.into_inner());
                        match r.value.and_then(decode_group) {
                            Some(g) => loaded.insert(group, g),
                            None => loaded.remove(&group),
                        };
                    } else {
                        let mut loaded = self
                            .loaded_consumer_groups
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        match r.value {
                            Some(v) => loaded.insert(group, v),
                            None => loaded.remove(&group),
                        };
                    }
                    applied += 1;
                    return;
                }
                let Some(key) = r.key.and_then(decode_key) else {
                    return;
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
            })
            .map_err(|e| Error::Load(e.to_string()))?;
        info!(
            records = applied,
            groups = map.len(),
            "loaded committed offsets"
        );
        Ok(())
    }

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, PendingTxnOffsets> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply (commit) or drop (abort) the pending transactional offsets of `pid`.
    fn complete_pending(&self, map: &mut HashMap<String, GroupOffsets>, pid: i64, commit: bool) {
        let Some(entries) = self.pending_lock().remove(&pid) else {
            return;
        };
        if commit {
            for (group, key, v) in entries {
                map.entry(group).or_default().insert(key, v);
            }
        }
    }

    /// TxnOffsetCommit: write the offsets as a transactional batch of producer `pid` at
    /// `epoch`; they stay invisible to OffsetFetch until the transaction's COMMIT marker.
    /// Blocking.
    pub fn commit_txn(
        &self,
        group: &str,
        pid: i64,
        epoch: i16,
        entries: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), Error> {
        let records = entries
            .iter()
            .map(|((t, p), c)| (encode_key(group, t, *p), Some(encode_value(c))))
            .collect();
        // The log checks producer sequences as for any idempotent batch: continue the
        // producer's sequence at this epoch (0 after a new epoch).
        let seq = self
            .log
            .producer_infos()
            .iter()
            .find(|i| i.producer_id == pid && i.producer_epoch == epoch)
            .map_or(0, |i| i.last_sequence.saturating_add(1).max(0));
        self.append_as(records, Some((pid, epoch, seq)))?;
        let mut pending = self.pending_lock();
        let list = pending.entry(pid).or_default();
        for (k, v) in entries {
            list.push((group.to_string(), k, v));
        }
        Ok(())
    }

    /// Write a transaction's COMMIT or ABORT marker for producer `pid` to the offsets log,
    /// then make its pending offsets visible (commit) or drop them. Blocking.
    pub fn write_marker(&self, pid: i64, epoch: i16, commit: bool) -> Result<(), Error> {
        match self
            .log
            .append_marker(pid, epoch, commit, crate::log::COORDINATOR_EPOCH)
        {
            Ok(_) | Err(crate::log::AppendError::Fenced) => {}
            Err(e) => return Err(Error::Append(e.to_string())),
        }
        let mut map = self.lock();
        self.complete_pending(&mut map, pid, commit);
        Ok(())
    }

    /// Whether a transaction holds uncommitted offsets for this group's partition (an
    /// OffsetFetch with `require_stable` gets UNSTABLE_OFFSET_COMMIT, as from Kafka).
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_lock().values().any(|l| {
            l.iter()
                .any(|(g, (t, p), _)| g == group && t == topic && *p == partition)
        })
    }

    fn append(&self, records: Vec<(Bytes, Option<Bytes>)>) -> Result<(), Error> {
        self.append_as(records, None)
    }

    /// Append records, as a transactional batch of `(pid, epoch, first sequence)` when given.
    fn append_as(
        &self,
        records: Vec<(Bytes, Option<Bytes>)>,
        txn: Option<(i64, i16, i32)>,
    ) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let recs: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: txn.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: txn.map_or(-1, |t| t.0),
                producer_epoch: txn.map_or(-1, |t| t.1),
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap_or(0),
                // One batch: the encoder splits when offset - sequence changes.
                sequence: i32::try_from(i)
                    .unwrap_or(0)
                    .saturating_add(txn.map_or(0, |t| t.2)),
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

    /// Store (or, with `None`, delete) a classic group's metadata. Blocking.
    pub fn store_group(&self, group: &str, record: Option<&GroupRecord>) -> Result<(), Error> {
        self.append(vec![(
            group_key(GROUP_KEY_VERSION, group),
            record.map(encode_group),
        )])
    }

    /// Store (or delete) a KIP-848 group snapshot. Blocking.
    pub fn store_consumer_group(&self, group: &str, snapshot: Option<Bytes>) -> Result<(), Error> {
        self.append(vec![(
            group_key(CONSUMER_GROUP_KEY_VERSION, group),
            snapshot,
        )])
    }

    /// Classic groups found at start-up (taken once).
    pub fn take_loaded_groups(&self) -> HashMap<String, GroupRecord> {
        std::mem::take(&mut *self.loaded_groups.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// KIP-848 group snapshots found at start-up (taken once).
    pub fn take_loaded_consumer_groups(&self) -> HashMap<String, Bytes> {
        std::mem::take(
            &mut *self
                .loaded_consumer_groups
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
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

    /// Every committed offset as (group, topic, partition, offset), copied under one short
    /// lock: the metrics page computes consumer lag from it.
    pub fn all(&self) -> Vec<(String, String, i32, i64)> {
        let map = self.lock();
        let mut out = Vec::with_capacity(map.values().map(HashMap::len).sum());
        for (g, offs) in map.iter() {
            for ((t, p), c) in offs {
                out.push((g.clone(), t.clone(), *p, c.offset));
            }
        }
        out
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
    fn group_metadata_round_trips_and_replays() {
        let g = GroupRecord {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            timestamp: 5,
            members: vec![MemberRecord {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group(encode_group(&g)), Some(g.clone()));
        let dir = tempfile::tempdir().unwrap();
        {
            let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
            let s = OffsetStore::open(&logs).unwrap();
            s.store_group("a", Some(&g)).unwrap();
            s.store_group("b", Some(&g)).unwrap();
            s.store_group("b", None).unwrap();
            s.store_consumer_group("k", Some(Bytes::from_static(b"snap")))
                .unwrap();
            logs.checkpoint().unwrap();
        }
        let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
        let s = OffsetStore::open(&logs).unwrap();
        let loaded = s.take_loaded_groups();
        assert_eq!(loaded.get("a"), Some(&g));
        assert!(!loaded.contains_key("b"));
        assert_eq!(
            s.take_loaded_consumer_groups().get("k").map(|b| b.as_ref()),
            Some(&b"snap"[..])
        );
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
