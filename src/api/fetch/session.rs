//! Incremental fetch sessions (KIP-227): the cache of sessions and each session's state
//! machine, as Kafka's `FetchSession.scala` (`FetchManager`, `FetchSessionCache`,
//! `CachedPartition`) defines them.
//!
//! A full fetch (epoch 0) may create a session that remembers its partitions; the client then
//! sends incremental fetches (epoch 1, 2, ...) that list only the partitions whose fetch
//! parameters changed and the ones to forget, and the answer carries only the partitions
//! with something new: records, a moved high watermark, log start or last stable offset, or
//! an error. This module decides which partitions a fetch reads and which of them go into the
//! answer; it reads no logs and builds no responses (`fetch.rs` does both).
//!
//! Sessions are kept in memory only, as in Kafka: a restart forgets them and clients fall
//! back to a full fetch on FETCH_SESSION_ID_NOT_FOUND.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use kafka_protocol::messages::TopicName;
use tracing::{debug, info};
use uuid::Uuid;

use crate::api::Code;

/// Kafka's `max.incremental.fetch.session.cache.slots` default: sessions kept at once.
pub const DEFAULT_CACHE_SLOTS: usize = 1000;
/// Kafka's `min.incremental.fetch.session.eviction.ms` default: a session unused this long
/// may be evicted.
pub const DEFAULT_EVICTION_MS: u64 = 120_000;
/// Kafka's `FetchMetadata.INVALID_SESSION_ID`: "no session".
pub const NO_SESSION: i32 = 0;
/// Kafka's `FetchMetadata.INITIAL_EPOCH`: a full fetch that asks for a session.
const INITIAL_EPOCH: i32 = 0;
/// Kafka's `FetchMetadata.FINAL_EPOCH`: a full fetch that wants no session (and closes the
/// one it names). Fetch v4-v6 have no session fields and decode as this.
const FINAL_EPOCH: i32 = -1;
/// First Fetch version with session fields.
const SESSION_VERSION: i16 = 7;
/// First Fetch version that names topics by id.
pub const TOPIC_ID_VERSION: i16 = 13;

/// Kafka's `FetchMetadata.nextEpoch`: epochs run 1..=i32::MAX and wrap to 1.
fn next_epoch(epoch: i32) -> i32 {
    match epoch {
        e if e < 0 => FINAL_EPOCH,
        i32::MAX => 1,
        e => e + 1,
    }
}

/// How a session names a topic: by id from Fetch v13 on, by name before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// Fetch v13+.
    Id(Uuid),
    /// Fetch v4-v12.
    Name(TopicName),
}

/// One partition as a fetch asks for it (listed in the request, or remembered by a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReq {
    /// Topic.
    pub topic: TopicKey,
    /// Partition index.
    pub partition: i32,
    /// Offset to read from.
    pub fetch_offset: i64,
    /// The client's per-partition byte limit.
    pub max_bytes: i32,
    /// The client's `current_leader_epoch` (-1: not given).
    pub leader_epoch: i32,
}

/// What a fetch found for one partition: the figures the "anything new?" check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionResult {
    /// Bytes of records in the answer.
    pub records: usize,
    /// The answer carries an error code for this partition.
    pub error: bool,
    /// High watermark answered.
    pub high_watermark: i64,
    /// Log start offset answered.
    pub log_start: i64,
    /// Last stable offset answered.
    pub last_stable: i64,
}

/// A session's memory of one partition (Kafka's `CachedPartition`): the fetch parameters
/// last asked for, and the offsets last answered.
#[derive(Debug, Clone)]
struct Cached {
    req: PartitionReq,
    high_watermark: i64,
    log_start: i64,
    last_stable: i64,
}

impl Cached {
    fn new(req: PartitionReq) -> Self {
        // -1 differs from anything a healthy partition answers, so a new partition is sent.
        Cached {
            req,
            high_watermark: -1,
            log_start: -1,
            last_stable: -1,
        }
    }

    /// Kafka's `maybeUpdateResponseData`: whether the partition goes into an incremental
    /// answer, remembering what it answered. Kafka compares records, high watermark, log
    /// start and errors; the last stable offset is compared too, so a read_committed
    /// consumer hears of a commit that moved only the LSO. Aborted transactions come only
    /// with records, which are always sent.
    fn must_respond(&mut self, r: &PartitionResult) -> bool {
        let mut respond = r.records > 0;
        if self.high_watermark != r.high_watermark {
            respond = true;
            self.high_watermark = r.high_watermark;
        }
        if self.log_start != r.log_start {
            respond = true;
            self.log_start = r.log_start;
        }
        if self.last_stable != r.last_stable {
            respond = true;
            self.last_stable = r.last_stable;
        }
        if r.error {
            // As Kafka: forget the high watermark so the partition is sent again once the
            // error is gone.
            self.high_watermark = -1;
            respond = true;
        }
        respond
    }
}

/// One session: its partitions in fetch order. Partitions that returned records move to the
/// end (Kafka does the same), so a `max_bytes` too small for all of them does not starve the
/// ones at the back.
#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    epoch: i32,
    uses_topic_ids: bool,
    created_ms: u64,
    last_used_ms: u64,
    /// Fetch order: sequence number → partition.
    order: BTreeMap<u64, Cached>,
    /// (topic, partition) → sequence number in `order`.
    index: HashMap<(TopicKey, i32), u64>,
    next_seq: u64,
}

impl Session {
    fn new(uses_topic_ids: bool, now_ms: u64) -> Self {
        Session {
            epoch: next_epoch(INITIAL_EPOCH),
            uses_topic_ids,
            created_ms: now_ms,
            last_used_ms: now_ms,
            order: BTreeMap::new(),
            index: HashMap::new(),
            next_seq: 0,
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn push(&mut self, c: Cached) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(old) = self
            .index
            .insert((c.req.topic.clone(), c.req.partition), seq)
        {
            self.order.remove(&old);
        }
        self.order.insert(seq, c);
    }

    fn remove(&mut self, topic: &TopicKey, partition: i32) -> bool {
        match self.index.remove(&(topic.clone(), partition)) {
            Some(seq) => self.order.remove(&seq).is_some(),
            None => false,
        }
    }

    /// Kafka's `FetchSession.update`: add or update the listed partitions, drop the
    /// forgotten ones. Returns (added, updated, removed) counts for the log.
    fn update(
        &mut self,
        listed: Vec<PartitionReq>,
        forgotten: &[(TopicKey, i32)],
    ) -> (usize, usize, usize) {
        let (mut added, mut updated, mut removed) = (0, 0, 0);
        for req in listed {
            let key = (req.topic.clone(), req.partition);
            match self.index.get(&key).and_then(|seq| self.order.get_mut(seq)) {
                Some(c) => {
                    c.req = req;
                    updated += 1;
                }
                None => {
                    self.push(Cached::new(req));
                    added += 1;
                }
            }
        }
        for (topic, partition) in forgotten {
            if self.remove(topic, *partition) {
                removed += 1;
            }
        }
        (added, updated, removed)
    }

    fn partitions(&self) -> Vec<PartitionReq> {
        self.order.values().map(|c| c.req.clone()).collect()
    }
}

/// What a Fetch request is, once its session fields are checked (Kafka's `FetchContext`).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Read these partitions and answer them all with session id 0: an old version, a
    /// final fetch (epoch -1), or an incremental fetch that forgot every partition.
    Sessionless(Vec<PartitionReq>),
    /// A full fetch (epoch 0): read and answer these partitions, then offer a session
    /// ([`SessionCache::finish_full`]).
    Full(Vec<PartitionReq>),
    /// An incremental fetch: read every partition of the session (in its order), then keep
    /// only the changed ones ([`SessionCache::finish_incremental`]).
    Incremental {
        /// Session id.
        id: i32,
        /// The epoch the request carried.
        epoch: i32,
        /// The session's partitions, in fetch order.
        partitions: Vec<PartitionReq>,
    },
    /// Answer only this top-level error, with session id 0.
    Error(Code),
}

/// A Fetch request's session fields.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Fetch version.
    pub version: i16,
    /// `session_id`.
    pub session_id: i32,
    /// `session_epoch`.
    pub session_epoch: i32,
}

impl Meta {
    fn is_full(&self) -> bool {
        self.version < SESSION_VERSION
            || self.session_epoch == INITIAL_EPOCH
            || self.session_epoch == FINAL_EPOCH
    }
}

/// Counters of what the cache did, for the log at shutdown and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sessions created.
    pub created: AtomicU64,
    /// Full fetches that asked for a session and got none (cache full or disabled).
    pub refused: AtomicU64,
    /// Incremental fetches served.
    pub incremental: AtomicU64,
    /// Partitions left out of incremental answers as unchanged.
    pub partitions_omitted: AtomicU64,
    /// Sessions closed by their client (final fetch, full fetch naming it, or emptied).
    pub closed: AtomicU64,
    /// Sessions evicted to make room, or expired.
    pub evicted: AtomicU64,
    /// Incremental fetches answered FETCH_SESSION_ID_NOT_FOUND.
    pub not_found: AtomicU64,
    /// Incremental fetches answered INVALID_FETCH_SESSION_EPOCH.
    pub bad_epoch: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The broker's fetch sessions (Kafka's `FetchSessionCache` and `FetchManager`). One lock
/// guards them all: each operation is a short, non-blocking pass over one session, never
/// held across an await.
pub struct SessionCache {
    slots: usize,
    eviction_ms: u64,
    started: Instant,
    sessions: Mutex<HashMap<i32, Session>>,
    /// What the cache did so far.
    pub stats: Stats,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("slots", &self.slots)
            .field("eviction_ms", &self.eviction_ms)
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// A cache of at most `slots` sessions (0 disables sessions: every fetch is full, as
    /// Kafka with `max.incremental.fetch.session.cache.slots=0`); a session unused for
    /// `eviction_ms` may be evicted.
    pub fn new(slots: usize, eviction_ms: u64) -> Self {
        SessionCache {
            slots,
            eviction_ms,
            started: Instant::now(),
            sessions: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        }
    }

    /// Milliseconds on this cache's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        // A panic while holding the lock leaves at worst a stale session; keep serving.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sessions in the cache now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No session in the cache.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kafka's `FetchManager.newContext`: check the request's session fields against the
    /// cache, apply an incremental request's changes to its session, and say which
    /// partitions to read.
    pub fn plan(
        &self,
        meta: Meta,
        listed: Vec<PartitionReq>,
        forgotten: &[(TopicKey, i32)],
        now_ms: u64,
    ) -> Plan {
        let uses_topic_ids = meta.version >= TOPIC_ID_VERSION;
        if meta.is_full() {
            if meta.version >= SESSION_VERSION && meta.session_id != NO_SESSION {
                // Any session a full fetch names is closed.
                if self.lock().remove(&meta.session_id).is_some() {
                    bump(&self.stats.closed, 1);
                    debug!(
                        session = meta.session_id,
                        "fetch session closed by a full fetch"
                    );
                }
            }
            return if meta.version < SESSION_VERSION || meta.session_epoch == FINAL_EPOCH {
                Plan::Sessionless(listed)
            } else {
                Plan::Full(listed)
            };
        }
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(&meta.session_id) else {
            bump(&self.stats.not_found, 1);
            debug!(session = meta.session_id, "fetch session not found");
            return Plan::Error(Code::FetchSessionIdNotFound);
        };
        if s.epoch != meta.session_epoch {
            bump(&self.stats.bad_epoch, 1);
            debug!(
                session = meta.session_id,
                expected = s.epoch,
                got = meta.session_epoch,
                "fetch session epoch mismatch"
            );
            return Plan::Error(Code::InvalidFetchSessionEpoch);
        }
        if s.uses_topic_ids != uses_topic_ids {
            // Kafka: a session made with topic ids cannot go on by name, nor the reverse.
            return Plan::Error(Code::FetchSessionTopicIdError);
        }
        let (added, updated, removed) = s.update(listed.clone(), forgotten);
        if s.len() == 0 {
            // Nothing left to remember: Kafka closes the session and answers sessionless.
            sessions.remove(&meta.session_id);
            bump(&self.stats.closed, 1);
            debug!(
                session = meta.session_id,
                "fetch session emptied and closed"
            );
            return Plan::Sessionless(listed);
        }
        s.last_used_ms = now_ms;
        s.epoch = next_epoch(s.epoch);
        bump(&self.stats.incremental, 1);
        debug!(
            session = meta.session_id,
            epoch = meta.session_epoch,
            added,
            updated,
            removed,
            size = s.len(),
            "incremental fetch"
        );
        Plan::Incremental {
            id: meta.session_id,
            epoch: meta.session_epoch,
            partitions: s.partitions(),
        }
    }

    /// Kafka's `FullFetchContext.updateAndGenerateResponseData`: offer the answered full
    /// fetch a session that remembers `partitions` and what was answered for them. Returns
    /// the session id for the answer, or 0 when the cache has no room (or is disabled).
    pub fn finish_full(
        &self,
        uses_topic_ids: bool,
        partitions: &[PartitionReq],
        results: &[PartitionResult],
        now_ms: u64,
    ) -> i32 {
        if self.slots == 0 {
            bump(&self.stats.refused, 1);
            return NO_SESSION;
        }
        let mut sessions = self.lock();
        self.expire(&mut sessions, now_ms);
        if sessions.len() >= self.slots && !self.try_evict(&mut sessions, partitions.len(), now_ms)
        {
            bump(&self.stats.refused, 1);
            debug!(size = partitions.len(), "no room for a new fetch session");
            return NO_SESSION;
        }
        let mut s = Session::new(uses_topic_ids, now_ms);
        for (req, r) in partitions.iter().zip(results) {
            s.push(Cached {
                req: req.clone(),
                high_watermark: if r.error { -1 } else { r.high_watermark },
                log_start: r.log_start,
                last_stable: r.last_stable,
            });
        }
        let id = new_session_id(&sessions);
        debug!(session = id, size = s.len(), "fetch session created");
        sessions.insert(id, s);
        bump(&self.stats.created, 1);
        id
    }

    /// Kafka's `IncrementalFetchContext.updateAndGenerateResponseData`: which of the
    /// session's partitions (`partitions`, as `plan` gave them, with what was read) go into
    /// the answer, remembering what they answered. Partitions that returned records move
    /// to the back of the session. An error when the session changed under the fetch: a
    /// duplicate request moved its epoch (INVALID_FETCH_SESSION_EPOCH, as Kafka) or it was
    /// evicted meanwhile (FETCH_SESSION_ID_NOT_FOUND; the client fetches in full).
    pub fn finish_incremental(
        &self,
        id: i32,
        req_epoch: i32,
        partitions: &[PartitionReq],
        results: &[PartitionResult],
    ) -> Result<Vec<bool>, Code> {
        let mut sessions = self.lock();
        let Some(s) = sessions.get_mut(&id) else {
            bump(&self.stats.not_found, 1);
            return Err(Code::FetchSessionIdNotFound);
        };
        if s.epoch != next_epoch(req_epoch) {
            bump(&self.stats.bad_epoch, 1);
            return Err(Code::InvalidFetchSessionEpoch);
        }
        let mut keep = Vec::with_capacity(partitions.len());
        let mut moved = Vec::new();
        for (req, r) in partitions.iter().zip(results) {
            let key = (req.topic.clone(), req.partition);
            let respond = match s.index.get(&key).and_then(|seq| s.order.get_mut(seq)) {
                Some(c) => {
                    let respond = c.must_respond(r);
                    if r.records > 0 {
                        moved.push(key);
                    }
                    respond
                }
                // Cannot happen while the epoch matches; sending it is harmless.
                None => true,
            };
            keep.push(respond);
        }
        for (topic, partition) in moved {
            if let Some(c) = s
                .index
                .get(&(topic.clone(), partition))
                .copied()
                .and_then(|seq| s.order.remove(&seq))
            {
                s.push(c);
            }
        }
        let omitted = keep.iter().filter(|k| !**k).count();
        bump(
            &self.stats.partitions_omitted,
            u64::try_from(omitted).unwrap_or(0),
        );
        Ok(keep)
    }

    /// Drop sessions unused for longer than the eviction time, so clients that went away
    /// do not hold memory. Kafka leaves them until a new session needs the slot; either
    /// way their client gets FETCH_SESSION_ID_NOT_FOUND and starts over with a full fetch.
    fn expire(&self, sessions: &mut HashMap<i32, Session>, now_ms: u64) {
        let before = sessions.len();
        sessions.retain(|_, s| now_ms.saturating_sub(s.last_used_ms) <= self.eviction_ms);
        let gone = before - sessions.len();
        if gone > 0 {
            bump(&self.stats.evicted, u64::try_from(gone).unwrap_or(0));
            debug!(count = gone, "fetch sessions expired");
        }
    }

    /// Kafka's `tryEvict` for a new consumer session of `size` partitions: evict the least
    /// recently used session if it is stale; otherwise the smallest session (then the lowest
    /// id) that is older than the eviction time, if the new one has more partitions.
    /// Followers' sessions, which Kafka privileges, do not exist on one node.
    fn try_evict(&self, sessions: &mut HashMap<i32, Session>, size: usize, now_ms: u64) -> bool {
        let lru = sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used_ms, **id))
            .map(|(id, s)| (*id, s.last_used_ms));
        let Some((lru_id, lru_used)) = lru else {
            return false;
        };
        let victim = if now_ms.saturating_sub(lru_used) > self.eviction_ms {
            Some(lru_id)
        } else {
            sessions
                .iter()
                .filter(|(_, s)| now_ms.saturating_sub(s.created_ms) > self.eviction_ms)
                .min_by_key(|(id, s)| (s.len(), **id))
                .filter(|(_, s)| size > s.len())
                .map(|(id, _)| *id)
        };
        match victim {
            Some(id) => {
                sessions.remove(&id);
                bump(&self.stats.evicted, 1);
                debug!(session = id, "fetch session evicted");
                true
            }
            None => false,
        }
    }

    /// Log what the cache did since start (at shutdown).
    pub fn log_stats(&self) {
        let s = &self.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        info!(
            created = g(&s.created),
            incremental = g(&s.incremental),
            partitions_omitted = g(&s.partitions_omitted),
            refused = g(&s.refused),
            closed = g(&s.closed),
            evicted = g(&s.evicted),
            not_found = g(&s.not_found),
            bad_epoch = g(&s.bad_epoch),
            open = self.len(),
            "fetch sessions"
        );
    }
}

/// A random positive id no live session has (Kafka draws them at random too, so a client
/// that kept an id across a restart is unlikely to land on someone else's session).
fn new_session_id(sessions: &HashMap<i32, Session>) -> i32 {
    loop {
        let b = Uuid::new_v4().into_bytes();
        let id = i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
        if id != NO_SESSION && !sessions.contains_key(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: i32, offset: i64) -> PartitionReq {
        PartitionReq {
            topic: TopicKey::Name(TopicName("t".into())),
            partition: p,
            fetch_offset: offset,
            max_bytes: 1024,
            leader_epoch: -1,
        }
    }

    fn res(records: usize, hw: i64) -> PartitionResult {
        PartitionResult {
            records,
            error: false,
            high_watermark: hw,
            log_start: 0,
            last_stable: hw,
        }
    }

    fn meta(id: i32, epoch: i32) -> Meta {
        Meta {
            version: 12,
            session_id: id,
            session_epoch: epoch,
        }
    }

    /// A session over partitions 0..n, all answered with high watermark 10.
    fn open(cache: &SessionCache, n: i32, now: u64) -> i32 {
        let parts: Vec<_> = (0..n).map(|p| req(p, 0)).collect();
        let plan = cache.plan(meta(0, 0), parts.clone(), &[], now);
        assert_eq!(plan, Plan::Full(parts.clone()));
        let results: Vec<_> = parts.iter().map(|_| res(10, 10)).collect();
        let id = cache.finish_full(false, &parts, &results, now);
        assert_ne!(id, NO_SESSION);
        id
    }

    fn incremental(plan: Plan) -> (i32, i32, Vec<PartitionReq>) {
        match plan {
            Plan::Incremental {
                id,
                epoch,
                partitions,
            } => (id, epoch, partitions),
            other => panic!("expected an incremental plan, got {other:?}"),
        }
    }

    #[test]
    fn full_fetch_creates_session_and_incremental_reads_all_its_partitions() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 3, 0);
        // Epoch 1 lists only partition 1 at a new offset; the read covers all three.
        let (sid, epoch, parts) = incremental(c.plan(meta(id, 1), vec![req(1, 10)], &[], 1));
        assert_eq!((sid, epoch), (id, 1));
        assert_eq!(parts, vec![req(0, 0), req(1, 10), req(2, 0)]);
        // Only partition 2 has news (records); the others answer what they answered before.
        let keep = c
            .finish_incremental(id, 1, &parts, &[res(0, 10), res(0, 10), res(5, 10)])
            .unwrap();
        assert_eq!(keep, vec![false, false, true]);
        assert_eq!(c.stats.partitions_omitted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn high_watermark_log_start_lso_and_errors_are_news() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 4, 0);
        let (_, _, parts) = incremental(c.plan(meta(id, 1), vec![], &[], 1));
        let mut results = vec![res(0, 11), res(0, 10), res(0, 10), res(0, 10)];
        results[1].log_start = 3;
        results[2].last_stable = 8;
        results[3].error = true;
        let keep = c.finish_incremental(id, 1, &parts, &results).unwrap();
        assert_eq!(keep, vec![true, true, true, true]);
        // The same figures again are no news, except the error, which is always sent.
        let (_, _, parts) = incremental(c.plan(meta(id, 2), vec![], &[], 2));
        let keep = c.finish_incremental(id, 2, &parts, &results).unwrap();
        assert_eq!(keep, vec![false, false, false, true]);
        // Once the error is gone the partition is sent again (its cached HW was reset).
        results[3].error = false;
        let (_, _, parts) = incremental(c.plan(meta(id, 3), vec![], &[], 3));
        let keep = c.finish_incremental(id, 3, &parts, &results).unwrap();
        assert_eq!(keep, vec![false, false, false, true]);
    }

    #[test]
    fn partitions_with_records_move_to_the_back() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 3, 0);
        let (_, _, parts) = incremental(c.plan(meta(id, 1), vec![], &[], 1));
        c.finish_incremental(id, 1, &parts, &[res(1, 10), res(0, 10), res(0, 10)])
            .unwrap();
        let (_, _, parts) = incremental(c.plan(meta(id, 2), vec![], &[], 2));
        let order: Vec<i32> = parts.iter().map(|p| p.partition).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn forgotten_partitions_leave_and_new_ones_join() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 2, 0);
        let forget = [(TopicKey::Name(TopicName("t".into())), 0)];
        let (_, _, parts) = incremental(c.plan(meta(id, 1), vec![req(7, 3)], &forget, 1));
        assert_eq!(parts, vec![req(1, 0), req(7, 3)]);
        // The new partition has no cached figures yet, so it is answered.
        let keep = c
            .finish_incremental(id, 1, &parts, &[res(0, 10), res(0, 3)])
            .unwrap();
        assert_eq!(keep, vec![false, true]);
    }

    #[test]
    fn forgetting_everything_closes_the_session() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 1, 0);
        let forget = [(TopicKey::Name(TopicName("t".into())), 0)];
        assert_eq!(
            c.plan(meta(id, 1), vec![], &forget, 1),
            Plan::Sessionless(vec![])
        );
        assert!(c.is_empty());
    }

    #[test]
    fn wrong_epoch_and_unknown_id_are_errors() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 1, 0);
        assert_eq!(
            c.plan(meta(id, 2), vec![], &[], 1),
            Plan::Error(Code::InvalidFetchSessionEpoch)
        );
        assert_eq!(
            c.plan(meta(id.wrapping_add(1).max(1), 1), vec![], &[], 1),
            Plan::Error(Code::FetchSessionIdNotFound)
        );
        // An incremental fetch with no session id names no session.
        assert_eq!(
            c.plan(meta(0, 1), vec![], &[], 1),
            Plan::Error(Code::FetchSessionIdNotFound)
        );
        // The right epoch still works after the errors.
        incremental(c.plan(meta(id, 1), vec![], &[], 1));
    }

    #[test]
    fn a_duplicate_request_loses_to_the_epoch_check() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 1, 0);
        let (_, _, parts) = incremental(c.plan(meta(id, 1), vec![], &[], 1));
        // A second request with epoch 2 is planned before the first is answered.
        incremental(c.plan(meta(id, 2), vec![], &[], 1));
        assert_eq!(
            c.finish_incremental(id, 1, &parts, &[res(0, 10)]),
            Err(Code::InvalidFetchSessionEpoch)
        );
    }

    #[test]
    fn final_epoch_and_full_fetch_close_the_named_session() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 1, 0);
        assert_eq!(
            c.plan(meta(id, -1), vec![req(0, 1)], &[], 1),
            Plan::Sessionless(vec![req(0, 1)])
        );
        assert!(c.is_empty());
        let id = open(&c, 1, 0);
        assert_eq!(
            c.plan(meta(id, 0), vec![req(0, 1)], &[], 1),
            Plan::Full(vec![req(0, 1)])
        );
        assert!(c.is_empty());
    }

    #[test]
    fn old_versions_are_sessionless() {
        let c = SessionCache::new(10, 1000);
        let m = Meta {
            version: 6,
            session_id: 0,
            session_epoch: -1,
        };
        assert_eq!(c.plan(m, vec![], &[], 0), Plan::Sessionless(vec![]));
    }

    #[test]
    fn topic_ids_and_names_do_not_mix_in_one_session() {
        let c = SessionCache::new(10, 1000);
        let id = open(&c, 1, 0);
        let m = Meta {
            version: 13,
            session_id: id,
            session_epoch: 1,
        };
        assert_eq!(
            c.plan(m, vec![], &[], 1),
            Plan::Error(Code::FetchSessionTopicIdError)
        );
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
    }

    #[test]
    fn zero_slots_disable_sessions() {
        let c = SessionCache::new(0, 1000);
        assert_eq!(c.finish_full(false, &[req(0, 0)], &[res(0, 1)], 0), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_cache_evicts_stale_then_smaller_old_sessions() {
        let c = SessionCache::new(2, 100);
        let a = open(&c, 5, 0);
        let b = open(&c, 1, 0);
        // Both fresh and recently used: a new session finds no room.
        let parts = vec![req(0, 0), req(1, 0), req(2, 0)];
        let results = vec![res(0, 1); 3];
        assert_eq!(c.finish_full(false, &parts, &results, 50), NO_SESSION);
        // Keep both in use past their eviction age; now the smaller old one (b) gives way
        // to a bigger newcomer, but not to a smaller one.
        for (id, at) in [(a, 150), (b, 150)] {
            let (_, e, p) = incremental(c.plan(meta(id, 1), vec![], &[], at));
            c.finish_incremental(id, e, &p, &vec![res(0, 10); p.len()])
                .unwrap();
        }
        assert_eq!(c.finish_full(false, &parts[..1], &results[..1], 160), 0);
        let d = c.finish_full(false, &parts, &results, 160);
        assert_ne!(d, NO_SESSION);
        assert_eq!(
            c.plan(meta(b, 2), vec![], &[], 160),
            Plan::Error(Code::FetchSessionIdNotFound)
        );
        incremental(c.plan(meta(a, 2), vec![], &[], 160));
        assert_eq!(c.stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn idle_sessions_expire() {
        let c = SessionCache::new(10, 100);
        let a = open(&c, 1, 0);
        // Another client's full fetch after the eviction time sweeps the idle session out.
        open(&c, 1, 101);
        assert_eq!(
            c.plan(meta(a, 1), vec![], &[], 102),
            Plan::Error(Code::FetchSessionIdNotFound)
        );
    }
}
