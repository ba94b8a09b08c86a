//! The share-group coordinator (KIP-932, "queues for Kafka"), beside the group and
//! transaction coordinators.
//!
//! - [`group`]: share groups, their members and the broker-side partition assignment
//!   (ShareGroupHeartbeat, ShareGroupDescribe).
//! - [`partition`]: one share partition's in-flight records (Kafka's `SharePartition`):
//!   acquisition under a lock, acknowledgements, delivery counts, the start offset.
//! - [`records`]: the layout of the share state in `__share_group_state`.
//! - this file: [`Coordinator`], which owns the groups, the share partitions and the share
//!   sessions, writes each acknowledged change to `__share_group_state` before it is
//!   answered, releases the records of members that leave, close their session or let
//!   their locks expire, and replays the state at start-up.
//!
//! Kafka splits this between a group coordinator, the share-partition leader and a share
//! coordinator that owns `__share_group_state`; on one node they are one object. Group
//! membership is not persisted: after a restart the members join again, as Kafka's do
//! when their coordinator moves. The share partitions are: after a crash, acknowledged
//! records are never handed out again; acquired but unacknowledged ones are (at least
//! once, as in Kafka), and their delivery count may be lower than it was.
//!
//! What does not live here: the wire handlers (`api::share`), reading the log (there too)
//! and the group configs (`group::configs`).

pub mod group;
pub mod partition;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::Notify;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::group::configs::ShareGroupConfig;
use crate::group::consumer::Catalog;
use crate::log::partition::now_ms;
use crate::log::{LogManager, Partition};
use group::{Heartbeat, HeartbeatReply, ShareGroup};
use kafka_protocol::error::ResponseError as Code;
use partition::{Acquired, BatchInfo, SharePartition, Snapshot};
use records::Key;

/// Name of the internal share-state topic, as Kafka names it.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Kafka's `group.share.max.share.sessions` default: share sessions per broker. A new
/// session beyond it gets SHARE_SESSION_LIMIT_REACHED, as in Kafka.
pub const MAX_SESSIONS: usize = 2000;

/// How long a share session of a client that is not (or no longer) a group member is kept
/// without use: the default share session timeout.
const IDLE_SESSION_MS: i64 = 45_000;

/// One member's share session (Kafka's `ShareSession`).
#[derive(Debug, Clone)]
struct Session {
    /// The epoch the next request must carry.
    epoch: i32,
    /// The partitions the session fetches.
    partitions: BTreeSet<(Uuid, i32)>,
    /// When it was last used (ms since the epoch).
    last_used: i64,
}

/// Why the coordinator could not open.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or creating `__share_group_state` failed.
    #[error("loading {SHARE_STATE_TOPIC}: {0}")]
    Load(String),
}

#[derive(Default)]
struct Inner {
    groups: BTreeMap<String, ShareGroup>,
    parts: BTreeMap<Key, SharePartition>,
    sessions: HashMap<(String, String), Session>,
}

impl Inner {
    /// Release `member`'s records in every partition of `group`; whether any came back.
    fn release_member(&mut self, group: &str, member: &str, limit: i16) -> bool {
        let mut any = false;
        for (k, p) in self.parts.iter_mut() {
            if k.0 == group {
                any |= p.release_member(member, limit);
            }
        }
        any
    }

    fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group) || self.parts.keys().any(|k| k.0 == group)
    }
}

/// The next session epoch after `e` (Kafka's `ShareRequestMetadata.nextEpoch`: it wraps to
/// 1, never to 0 or -1).
fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

/// Acknowledgements of one share partition: (first, last, types).
pub type Acks = Vec<(i64, i64, Vec<i8>)>;

/// The share-group coordinator of this broker.
pub struct Coordinator {
    log: Arc<Partition>,
    inner: Mutex<Inner>,
    /// Woken when records become available again (released, lock expired, member gone),
    /// so long-polling ShareFetch requests look again.
    pub released: Notify,
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> Code {
    error!(error = %e, "{what}");
    // Kafka answers a failed share-state write with the persister's error, which the
    // client retries; UNKNOWN_SERVER_ERROR is the generic form of it.
    Code::UnknownServerError
}

fn run_blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Several (key, optional value) records as one non-transactional batch.
fn batch_of(records: &[(Bytes, Option<Bytes>)]) -> Result<BytesMut, String> {
    let now = now_ms();
    let recs: Vec<Record> = records
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
            offset: i64::try_from(i).unwrap_or(0),
            sequence: -1,
            timestamp: now,
            key: Some(k.clone()),
            value: v.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(buf)
}

impl Coordinator {
    /// Open `__share_group_state` (creating it) and replay it.
    pub fn open(logs: &LogManager) -> Result<Self, Error> {
        let topic = match logs.topic(SHARE_STATE_TOPIC) {
            Some(t) => t,
            None => {
                let overrides = [("cleanup.policy".to_string(), "compact".to_string())].into();
                logs.create_topic(SHARE_STATE_TOPIC, 1, overrides, false)
                    .map_err(|e| Error::Load(e.to_string()))?
            }
        };
        let log = topic
            .partitions
            .first()
            .cloned()
            .ok_or_else(|| Error::Load("no partition".into()))?;
        let loaded = replay(&log)?;
        info!(share_partitions = loaded.len(), "loaded share-group state");
        let parts = loaded
            .into_iter()
            .map(|(k, s)| (k, SharePartition::restore(&s)))
            .collect();
        Ok(Coordinator {
            log,
            inner: Mutex::new(Inner {
                parts,
                ..Inner::default()
            }),
            released: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write share-partition states (`None` deletes) to `__share_group_state`. Blocking.
    fn persist(&self, entries: &[(Key, Option<Snapshot>)]) -> Result<(), Code> {
        if entries.is_empty() {
            return Ok(());
        }
        let recs: Vec<(Bytes, Option<Bytes>)> = entries
            .iter()
            .map(|(k, s)| {
                (
                    records::encode_key(k),
                    s.as_ref().map(records::encode_value),
                )
            })
            .collect();
        let batch = batch_of(&recs).map_err(|e| storage_error("encoding share state failed", e))?;
        run_blocking(|| self.log.append(&batch))
            .map(|_| ())
            .map_err(|e| storage_error("writing __share_group_state failed", e))
    }

    /// Whether `group` is a share group (with members or with share state).
    pub fn is_share_group(&self, group: &str) -> bool {
        self.lock().has_group(group)
    }

    /// ShareGroupHeartbeat. A member that leaves has its records released and its share
    /// session closed.
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        catalog: &Catalog,
        config: &ShareGroupConfig,
    ) -> Result<HeartbeatReply, Code> {
        let mut inner = self.lock();
        if hb.epoch != 0 && !inner.groups.contains_key(group_id) {
            return Err(Code::UnknownMemberId);
        }
        let member = hb.member_id.clone();
        let leaving = hb.epoch == -1;
        let g = inner
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| ShareGroup::new(group_id));
        let reply = g.heartbeat(hb, catalog, now_ms(), i64::from(config.session_timeout_ms))?;
        if leaving {
            info!(group = group_id, member, "share group member left");
            inner
                .sessions
                .remove(&(group_id.to_string(), member.clone()));
            let limit = i16::try_from(config.delivery_count_limit).unwrap_or(i16::MAX);
            if inner.release_member(group_id, &member, limit) {
                self.released.notify_waiters();
            }
        }
        Ok(reply)
    }

    /// A share group's membership, if it exists (an empty group known only by its share
    /// state has no members).
    pub fn describe(&self, group_id: &str) -> Option<ShareGroup> {
        let inner = self.lock();
        match inner.groups.get(group_id) {
            Some(g) => Some(g.clone()),
            None if inner.has_group(group_id) => Some(ShareGroup::new(group_id)),
            None => None,
        }
    }

    /// Every share group: (id, state name).
    pub fn list(&self) -> Vec<(String, &'static str)> {
        let inner = self.lock();
        let mut ids: BTreeSet<&String> = inner.groups.keys().collect();
        ids.extend(inner.parts.keys().map(|k| &k.0));
        ids.into_iter()
            .map(|id| {
                let st = inner.groups.get(id).map_or("Empty", |g| g.state_name());
                (id.clone(), st)
            })
            .collect()
    }

    /// The share session step of a ShareFetch (Kafka's `newContext`): epoch 0 opens a new
    /// session with `add`, a positive epoch must be the session's next and updates it
    /// with `add` and `forget`, -1 is the final request (acknowledgements only; the caller
    /// closes the session after them). Answers the partitions to fetch.
    pub fn fetch_session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[(Uuid, i32)],
        forget: &[(Uuid, i32)],
        has_acks: bool,
    ) -> Result<Vec<(Uuid, i32)>, Code> {
        let mut inner = self.lock();
        let key = (group.to_string(), member.to_string());
        match epoch {
            0 => {
                if has_acks {
                    return Err(Code::InvalidRequest);
                }
                if !inner.sessions.contains_key(&key) && inner.sessions.len() >= MAX_SESSIONS {
                    return Err(Code::ShareSessionLimitReached);
                }
                let s = Session {
                    epoch: 1,
                    partitions: add.iter().copied().collect(),
                    last_used: now_ms(),
                };
                let parts = s.partitions.iter().copied().collect();
                inner.sessions.insert(key, s);
                Ok(parts)
            }
            -1 => {
                // The final request only acknowledges: its partitions carry acks and are
                // not fetched (v1 has no per-partition max bytes to say "fetch nothing").
                if !inner.sessions.contains_key(&key) {
                    return Err(Code::ShareSessionNotFound);
                }
                Ok(Vec::new())
            }
            e => {
                let s = inner
                    .sessions
                    .get_mut(&key)
                    .ok_or(Code::ShareSessionNotFound)?;
                if s.epoch != e {
                    return Err(Code::InvalidShareSessionEpoch);
                }
                s.epoch = next_epoch(s.epoch);
                s.last_used = now_ms();
                for p in forget {
                    s.partitions.remove(p);
                }
                s.partitions.extend(add.iter().copied());
                Ok(s.partitions.iter().copied().collect())
            }
        }
    }

    /// The share session step of a ShareAcknowledge (Kafka's `acknowledgeSessionUpdate`).
    pub fn acknowledge_session(&self, group: &str, member: &str, epoch: i32) -> Result<(), Code> {
        if epoch == 0 {
            return Err(Code::InvalidShareSessionEpoch);
        }
        let mut inner = self.lock();
        let s = inner
            .sessions
            .get_mut(&(group.to_string(), member.to_string()))
            .ok_or(Code::ShareSessionNotFound)?;
        if epoch == -1 {
            return Ok(());
        }
        if s.epoch != epoch {
            return Err(Code::InvalidShareSessionEpoch);
        }
        s.epoch = next_epoch(s.epoch);
        s.last_used = now_ms();
        Ok(())
    }

    /// Close `member`'s share session and release the records it holds in `group`.
    pub fn close_session(&self, group: &str, member: &str, config: &ShareGroupConfig) {
        let mut inner = self.lock();
        inner
            .sessions
            .remove(&(group.to_string(), member.to_string()));
        let limit = i16::try_from(config.delivery_count_limit).unwrap_or(i16::MAX);
        if inner.release_member(group, member, limit) {
            self.released.notify_waiters();
        }
    }

    /// Apply acknowledgements, per share partition, and persist every partition they
    /// changed before answering. One result per entry of `acks`, in order.
    pub fn acknowledge(
        &self,
        group: &str,
        member: &str,
        acks: Vec<((Uuid, i32), Acks)>,
        config: &ShareGroupConfig,
    ) -> Vec<Result<(), Code>> {
        let limit = i16::try_from(config.delivery_count_limit).unwrap_or(i16::MAX);
        let mut inner = self.lock();
        let mut results = Vec::with_capacity(acks.len());
        let mut changed: Vec<(Key, SharePartition)> = Vec::new();
        for ((topic, index), batches) in acks {
            let key = (group.to_string(), topic, index);
            // Applied to a copy first: the change takes effect once it is written.
            let current = changed
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| p.clone())
                .or_else(|| inner.parts.get(&key).cloned());
            let Some(mut p) = current else {
                results.push(Err(Code::InvalidRecordState));
                continue;
            };
            match p.acknowledge(member, &batches, limit) {
                Ok(true) => {
                    changed.push((key, p));
                    results.push(Ok(()));
                }
                Ok(false) => results.push(Ok(())),
                Err(code) => results.push(Err(code)),
            }
        }
        let entries: Vec<(Key, Option<Snapshot>)> = changed
            .iter()
            .map(|(k, p)| (k.clone(), Some(p.snapshot())))
            .collect();
        if let Err(code) = self.persist(&entries) {
            return results.into_iter().map(|_| Err(code)).collect();
        }
        let any = !changed.is_empty();
        for (k, p) in changed {
            inner.parts.insert(k, p);
        }
        if any {
            // Released records are available to every member again.
            self.released.notify_waiters();
        }
        results
    }

    /// Before a fetch of one share partition: create it at `initial()` if the group has
    /// none (persisted at once, so a restart does not move a `latest` start), drop records
    /// below the log start, expire locks, and answer where to read the log from (`None`:
    /// nothing can be acquired now).
    pub fn prepare_fetch(
        &self,
        key: &Key,
        log_start: i64,
        initial: impl FnOnce() -> i64,
        config: &ShareGroupConfig,
    ) -> Result<Option<i64>, Code> {
        let limit = i16::try_from(config.delivery_count_limit).unwrap_or(i16::MAX);
        let mut inner = self.lock();
        if !inner.parts.contains_key(key) {
            let p = SharePartition::new(initial().max(log_start));
            self.persist(&[(key.clone(), Some(p.snapshot()))])?;
            inner.parts.insert(key.clone(), p);
        }
        let Some(p) = inner.parts.get_mut(key) else {
            return Ok(None);
        };
        p.truncate_below(log_start);
        p.expire_locks(now_ms(), limit);
        Ok(p.read_from())
    }

    /// Acquire for `member` the records of `batches` it may have, at most `limit`.
    pub fn acquire(
        &self,
        key: &Key,
        member: &str,
        batches: &[BatchInfo],
        limit: usize,
        config: &ShareGroupConfig,
    ) -> Vec<Acquired> {
        let deadline = now_ms().saturating_add(i64::from(config.record_lock_duration_ms));
        match self.lock().parts.get_mut(key) {
            Some(p) => p.acquire(member, batches, limit, deadline),
            None => Vec::new(),
        }
    }

    /// The start offsets of a group's share partitions.
    pub fn start_offsets(&self, group: &str) -> Vec<(Uuid, i32, i64)> {
        self.lock()
            .parts
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, p)| (k.1, k.2, p.start()))
            .collect()
    }

    /// AlterShareGroupOffsets: set start offsets of an empty group's share partitions
    /// (creating the group's state as needed), forgetting their in-flight records.
    pub fn alter_offsets(&self, group: &str, offsets: &[((Uuid, i32), i64)]) -> Result<(), Code> {
        let mut inner = self.lock();
        if inner
            .groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Code::NonEmptyGroup);
        }
        let entries: Vec<(Key, Option<Snapshot>)> = offsets
            .iter()
            .map(|((t, p), o)| {
                (
                    (group.to_string(), *t, *p),
                    Some(SharePartition::new(*o).snapshot()),
                )
            })
            .collect();
        self.persist(&entries)?;
        for ((t, p), o) in offsets {
            inner
                .parts
                .insert((group.to_string(), *t, *p), SharePartition::new(*o));
        }
        Ok(())
    }

    /// DeleteShareGroupOffsets: forget an empty group's share state for `topics`.
    pub fn delete_offsets(&self, group: &str, topics: &[Uuid]) -> Result<(), Code> {
        let mut inner = self.lock();
        if !inner.has_group(group) {
            return Err(Code::GroupIdNotFound);
        }
        if inner
            .groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Code::NonEmptyGroup);
        }
        let keys: Vec<Key> = inner
            .parts
            .keys()
            .filter(|k| k.0 == group && topics.contains(&k.1))
            .cloned()
            .collect();
        let entries: Vec<(Key, Option<Snapshot>)> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        self.persist(&entries)?;
        for k in keys {
            inner.parts.remove(&k);
        }
        Ok(())
    }

    /// DeleteGroups for a share group: it must have no members; its share state goes.
    pub fn delete_group(&self, group: &str) -> Result<(), Code> {
        let mut inner = self.lock();
        if !inner.has_group(group) {
            return Err(Code::GroupIdNotFound);
        }
        if inner
            .groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(Code::NonEmptyGroup);
        }
        let keys: Vec<Key> = inner
            .parts
            .keys()
            .filter(|k| k.0 == group)
            .cloned()
            .collect();
        let entries: Vec<(Key, Option<Snapshot>)> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        self.persist(&entries)?;
        for k in keys {
            inner.parts.remove(&k);
        }
        inner.groups.remove(group);
        inner.sessions.retain(|(g, _), _| g != group);
        info!(group, "deleted share group");
        Ok(())
    }

    /// Timer work: members past their session timeout leave (their records are released
    /// and their sessions closed), sessions of clients that are not members go once idle,
    /// and acquisition locks past their deadline expire.
    pub fn tick(&self, config: impl Fn(&str) -> ShareGroupConfig) {
        let now = now_ms();
        let mut inner = self.lock();
        let mut any = false;
        let mut gone: Vec<(String, String)> = Vec::new();
        for g in inner.groups.values_mut() {
            for m in g.expire(now) {
                gone.push((g.id.clone(), m));
            }
        }
        for (g, m) in &gone {
            warn!(group = %g, member = %m, "share group member session expired");
            inner.sessions.remove(&(g.clone(), m.clone()));
            let limit = i16::try_from(config(g).delivery_count_limit).unwrap_or(i16::MAX);
            any |= inner.release_member(g, m, limit);
        }
        let Inner {
            groups, sessions, ..
        } = &mut *inner;
        sessions.retain(|(g, m), s| {
            groups.get(g).is_some_and(|g| g.members.contains_key(m))
                || now.saturating_sub(s.last_used) < IDLE_SESSION_MS
        });
        let mut limits: HashMap<String, i16> = HashMap::new();
        for (k, p) in inner.parts.iter_mut() {
            let limit = *limits.entry(k.0.clone()).or_insert_with(|| {
                i16::try_from(config(&k.0).delivery_count_limit).unwrap_or(i16::MAX)
            });
            any |= p.expire_locks(now, limit);
        }
        if any {
            self.released.notify_waiters();
        }
    }
}

/// Read every record of `__share_group_state`: the last value of each key wins.
fn replay(log: &Partition) -> Result<HashMap<Key, Snapshot>, Error> {
    let mut out: HashMap<Key, Snapshot> = HashMap::new();
    log.replay(|r| {
        if r.control {
            return;
        }
        let Some(key) = r.key.and_then(records::decode_key) else {
            return;
        };
        match r.value.and_then(records::decode_value) {
            Some(s) => {
                out.insert(key, s);
            }
            None => {
                out.remove(&key);
            }
        }
    })
    .map_err(|e| Error::Load(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
