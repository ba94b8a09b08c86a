//! One share partition (Kafka's `SharePartition`): the records of a topic partition that a
//! share group has in flight, between the share-partition start offset (SPSO, everything
//! below it is settled) and end offset (SPEO, the first offset never handed out).
//!
//! Each in-flight offset is AVAILABLE, ACQUIRED (by one member, under a lock with a
//! deadline), ACKNOWLEDGED or ARCHIVED, with the number of times it was delivered. Pure
//! state and rules only: reading the log, persisting and waking fetchers live in
//! [`super`].

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as Code;

/// Kafka's `group.share.partition.max.record.locks` default (2000): how far the SPEO may
/// run ahead of the SPSO, so one stuck record cannot make the in-flight window unbounded.
pub const MAX_IN_FLIGHT: i64 = 2000;

/// Acknowledgement types on the wire (KIP-932).
pub const ACK_GAP: i8 = 0;
/// The record was processed.
pub const ACK_ACCEPT: i8 = 1;
/// Hand the record to a consumer again.
pub const ACK_RELEASE: i8 = 2;
/// The record could not be processed: never deliver it again.
pub const ACK_REJECT: i8 = 3;

/// The state of one in-flight record, Kafka's `RecordState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// May be acquired by any member.
    Available,
    /// Acquired by a member until its lock deadline.
    Acquired,
    /// Accepted: done.
    Acknowledged,
    /// Rejected, past the delivery limit, a gap or an aborted/control record: done.
    Archived,
}

impl RecordState {
    /// Kafka's persisted state codes (`RecordState.id`): 0 available, 1 acquired,
    /// 2 acknowledged, 4 archived.
    pub fn code(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    /// The state of a persisted code; an acquired record comes back available, because
    /// its lock died with the broker.
    pub fn from_code(c: i8) -> Option<Self> {
        match c {
            0 | 1 => Some(RecordState::Available),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    fn settled(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

#[derive(Debug, Clone)]
struct Rec {
    state: RecordState,
    deliveries: i16,
    owner: String,
    deadline: i64,
}

impl Rec {
    fn available(deliveries: i16) -> Self {
        Rec {
            state: RecordState::Available,
            deliveries,
            owner: String::new(),
            deadline: 0,
        }
    }
    fn archived() -> Self {
        Rec {
            state: RecordState::Archived,
            ..Rec::available(0)
        }
    }
}

/// What the share partition needs to know of one batch read from the log (its header
/// only).
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo {
    /// First offset.
    pub base: i64,
    /// Last offset.
    pub last: i64,
    /// A control batch (transaction marker): never handed to a consumer.
    pub control: bool,
    /// Part of an aborted transaction (read_committed only): archived, never handed out.
    pub aborted: bool,
}

/// One persisted range of records in the same state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// State.
    pub state: RecordState,
    /// Deliveries so far.
    pub deliveries: i16,
}

/// The durable part of a share partition: what survives a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The share-partition start offset.
    pub start: i64,
    /// Ranges above it that are settled or were delivered before.
    pub batches: Vec<StateBatch>,
}

/// A range of acquired records, all delivered the same number of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// Deliveries, counting this one.
    pub deliveries: i16,
}

/// The in-flight records of one (group, topic, partition).
#[derive(Debug, Clone, Default)]
pub struct SharePartition {
    start: i64,
    end: i64,
    /// Every offset in `[start, end)`.
    recs: BTreeMap<i64, Rec>,
}

impl SharePartition {
    /// A share partition that starts reading at `offset`.
    pub fn new(offset: i64) -> Self {
        SharePartition {
            start: offset,
            end: offset,
            recs: BTreeMap::new(),
        }
    }

    /// Rebuild from a snapshot: offsets it does not mention are available.
    pub fn restore(s: &Snapshot) -> Self {
        let mut p = SharePartition::new(s.start);
        let end = s
            .batches
            .iter()
            .map(|b| b.last.saturating_add(1))
            .max()
            .unwrap_or(s.start)
            .clamp(s.start, s.start.saturating_add(MAX_IN_FLIGHT));
        for o in s.start..end {
            p.recs.insert(o, Rec::available(0));
        }
        p.end = end;
        for b in &s.batches {
            for o in b.first.max(s.start)..=b.last.min(end - 1) {
                if let Some(r) = p.recs.get_mut(&o) {
                    r.state = b.state;
                    r.deliveries = b.deliveries;
                }
            }
        }
        p.advance();
        p
    }

    /// The durable view: the start offset and the ranges worth keeping (settled, or
    /// delivered at least once; an acquired record is kept as available).
    pub fn snapshot(&self) -> Snapshot {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (&o, r) in &self.recs {
            let state = match r.state {
                RecordState::Acquired => RecordState::Available,
                s => s,
            };
            if state == RecordState::Available && r.deliveries == 0 {
                continue;
            }
            match batches.last_mut() {
                Some(b) if b.last + 1 == o && b.state == state && b.deliveries == r.deliveries => {
                    b.last = o
                }
                _ => batches.push(StateBatch {
                    first: o,
                    last: o,
                    state,
                    deliveries: r.deliveries,
                }),
            }
        }
        Snapshot {
            start: self.start,
            batches,
        }
    }

    /// The share-partition start offset.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The share-partition end offset.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Where a fetch should read the log from: the first available in-flight record, else
    /// the end offset; `None` when nothing could be acquired (the window is full and
    /// nothing in it is available).
    pub fn read_from(&self) -> Option<i64> {
        if let Some((&o, _)) = self
            .recs
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
        {
            return Some(o);
        }
        (self.end < self.start.saturating_add(MAX_IN_FLIGHT)).then_some(self.end)
    }

    /// The log start moved past records still in flight (retention, DeleteRecords): they
    /// are gone, as Kafka archives them.
    pub fn truncate_below(&mut self, log_start: i64) {
        if log_start <= self.start {
            return;
        }
        self.recs = self.recs.split_off(&log_start);
        self.start = log_start;
        if self.end < log_start {
            self.end = log_start;
        }
    }

    /// Acquire for `member` the available and new records of `batches` (read from the log
    /// in offset order), at most `limit` of them. Control batches, aborted records and
    /// offsets missing from the log (compaction) become archived without being handed out.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[BatchInfo],
        limit: usize,
        deadline: i64,
    ) -> Vec<Acquired> {
        let mut out: Vec<Acquired> = Vec::new();
        let mut n = 0usize;
        let cap = self.start.saturating_add(MAX_IN_FLIGHT);
        'batches: for b in batches {
            for o in b.base.max(self.start)..=b.last {
                if n >= limit {
                    break 'batches;
                }
                if o < self.end {
                    let Some(r) = self.recs.get_mut(&o) else {
                        continue;
                    };
                    if r.state != RecordState::Available {
                        continue;
                    }
                    if b.control || b.aborted {
                        r.state = RecordState::Archived;
                        continue;
                    }
                    r.state = RecordState::Acquired;
                    r.deliveries = r.deliveries.saturating_add(1);
                    r.owner = member.to_string();
                    r.deadline = deadline;
                    push(&mut out, o, r.deliveries);
                    n += 1;
                    continue;
                }
                if o >= cap {
                    break 'batches;
                }
                // Offsets between the end and this batch are not in the log.
                for gap in self.end..o {
                    self.recs.insert(gap, Rec::archived());
                }
                self.end = o + 1;
                if b.control || b.aborted {
                    self.recs.insert(o, Rec::archived());
                    continue;
                }
                self.recs.insert(
                    o,
                    Rec {
                        state: RecordState::Acquired,
                        deliveries: 1,
                        owner: member.to_string(),
                        deadline,
                    },
                );
                push(&mut out, o, 1);
                n += 1;
            }
        }
        self.advance();
        out
    }

    /// Apply `member`'s acknowledgements: each is (first, last, types) with one type for
    /// the whole range or one per offset. Every offset must be acquired by the member (a
    /// gap may also be already archived), else nothing is applied and the answer is
    /// INVALID_RECORD_STATE, as Kafka's. Answers whether anything changed.
    pub fn acknowledge(
        &mut self,
        member: &str,
        acks: &[(i64, i64, Vec<i8>)],
        delivery_limit: i16,
    ) -> Result<bool, Code> {
        let mut plan: Vec<(i64, i8)> = Vec::new();
        for (first, last, types) in acks {
            if last < first || types.is_empty() {
                return Err(Code::InvalidRequest);
            }
            // Offsets come from the client: no arithmetic on them may overflow.
            let span = last
                .checked_sub(*first)
                .and_then(|d| d.checked_add(1))
                .ok_or(Code::InvalidRequest)?;
            let per_offset = types.len() > 1;
            if per_offset && i64::try_from(types.len()) != Ok(span) {
                return Err(Code::InvalidRequest);
            }
            if span > MAX_IN_FLIGHT.saturating_mul(2) {
                return Err(Code::InvalidRecordState);
            }
            for (i, o) in (*first..=*last).enumerate() {
                let t = if per_offset {
                    types.get(i).copied().unwrap_or(ACK_GAP)
                } else {
                    types.first().copied().unwrap_or(ACK_GAP)
                };
                if !(ACK_GAP..=ACK_REJECT).contains(&t) {
                    return Err(Code::InvalidRequest);
                }
                let ok = match self.recs.get(&o) {
                    Some(r) if r.state == RecordState::Acquired && r.owner == member => true,
                    Some(r) if t == ACK_GAP && r.state == RecordState::Archived => true,
                    None if t == ACK_GAP && o < self.start => true,
                    _ => false,
                };
                if !ok {
                    return Err(Code::InvalidRecordState);
                }
                plan.push((o, t));
            }
        }
        let mut changed = false;
        for (o, t) in plan {
            let Some(r) = self.recs.get_mut(&o) else {
                continue;
            };
            if r.state != RecordState::Acquired {
                continue;
            }
            changed = true;
            r.owner.clear();
            r.state = match t {
                ACK_ACCEPT => RecordState::Acknowledged,
                ACK_RELEASE if r.deliveries < delivery_limit => RecordState::Available,
                _ => RecordState::Archived,
            };
        }
        self.advance();
        Ok(changed)
    }

    /// Put back the records `member` holds (it left, or closed its share session).
    /// Answers whether any became available.
    pub fn release_member(&mut self, member: &str, delivery_limit: i16) -> bool {
        self.release_where(delivery_limit, |r| r.owner == member)
    }

    /// Put back the records whose lock expired by `now`. Answers whether any did.
    pub fn expire_locks(&mut self, now: i64, delivery_limit: i16) -> bool {
        self.release_where(delivery_limit, |r| r.deadline <= now)
    }

    fn release_where(&mut self, delivery_limit: i16, pick: impl Fn(&Rec) -> bool) -> bool {
        let mut any = false;
        for r in self.recs.values_mut() {
            if r.state == RecordState::Acquired && pick(r) {
                any = true;
                r.owner.clear();
                // Kafka archives a record that has used up its deliveries instead of
                // offering it again.
                r.state = if r.deliveries >= delivery_limit {
                    RecordState::Archived
                } else {
                    RecordState::Available
                };
            }
        }
        if any {
            self.advance();
        }
        any
    }

    /// Records currently acquired by anyone.
    pub fn acquired_count(&self) -> usize {
        self.recs
            .values()
            .filter(|r| r.state == RecordState::Acquired)
            .count()
    }

    /// Move the start past the settled records at the bottom of the window.
    fn advance(&mut self) {
        while let Some(entry) = self.recs.first_entry() {
            if !entry.get().state.settled() {
                break;
            }
            entry.remove();
            self.start += 1;
        }
        if self.recs.is_empty() {
            self.start = self.end.max(self.start);
            self.end = self.start;
        }
    }
}

fn push(out: &mut Vec<Acquired>, o: i64, deliveries: i16) {
    match out.last_mut() {
        Some(a) if a.last + 1 == o && a.deliveries == deliveries => a.last = o,
        _ => out.push(Acquired {
            first: o,
            last: o,
            deliveries,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, last: i64) -> BatchInfo {
        BatchInfo {
            base,
            last,
            control: false,
            aborted: false,
        }
    }

    #[test]
    fn acquire_accept_moves_the_start() {
        let mut p = SharePartition::new(0);
        let got = p.acquire("a", &[batch(0, 4)], 100, 1000);
        assert_eq!(
            got,
            vec![Acquired {
                first: 0,
                last: 4,
                deliveries: 1
            }]
        );
        assert_eq!(p.read_from(), Some(5));
        assert!(p.acknowledge("a", &[(0, 2, vec![1])], 5).unwrap());
        assert_eq!(p.start(), 3);
        // b does not own 3..4
        assert_eq!(
            p.acknowledge("b", &[(3, 4, vec![1])], 5),
            Err(Code::InvalidRecordState)
        );
    }

    #[test]
    fn released_records_go_to_others_until_the_delivery_limit() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 1)], 100, 1000);
        p.acknowledge("a", &[(0, 1, vec![2, 3])], 2).unwrap();
        // 0 released, 1 rejected
        assert_eq!(p.read_from(), Some(0));
        let got = p.acquire("b", &[batch(0, 1)], 100, 1000);
        assert_eq!(
            got,
            vec![Acquired {
                first: 0,
                last: 0,
                deliveries: 2
            }]
        );
        // second release reaches the limit of 2: archived
        p.acknowledge("b", &[(0, 0, vec![2])], 2).unwrap();
        assert_eq!(p.start(), 2);
        assert_eq!(p.read_from(), Some(2));
    }

    #[test]
    fn absurd_ranges_are_refused_without_overflow() {
        let mut p = SharePartition::new(0);
        assert_eq!(
            p.acknowledge("a", &[(i64::MIN, i64::MAX, vec![1])], 5),
            Err(Code::InvalidRequest)
        );
        assert_eq!(
            p.acknowledge("a", &[(0, 10_000_000, vec![1])], 5),
            Err(Code::InvalidRecordState)
        );
        assert_eq!(
            p.acknowledge("a", &[(0, 1, vec![1, 2, 3])], 5),
            Err(Code::InvalidRequest)
        );
    }

    #[test]
    fn lock_expiry_and_member_release() {
        let mut p = SharePartition::new(10);
        p.acquire("a", &[batch(10, 12)], 2, 50);
        assert_eq!(p.end(), 12);
        assert!(!p.expire_locks(49, 5));
        assert!(p.expire_locks(50, 5));
        assert_eq!(p.acquired_count(), 0);
        p.acquire("b", &[batch(10, 12)], 10, 100);
        assert_eq!(p.acquired_count(), 3);
        assert!(p.release_member("b", 5));
        assert_eq!(p.read_from(), Some(10));
    }

    #[test]
    fn control_gaps_and_aborted_are_archived() {
        let mut p = SharePartition::new(0);
        let got = p.acquire(
            "a",
            &[
                batch(0, 0),
                BatchInfo {
                    base: 1,
                    last: 2,
                    control: false,
                    aborted: true,
                },
                BatchInfo {
                    base: 3,
                    last: 3,
                    control: true,
                    aborted: false,
                },
                batch(6, 6),
            ],
            100,
            1000,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].first, 6);
        p.acknowledge("a", &[(0, 0, vec![1])], 5).unwrap();
        assert_eq!(p.start(), 6);
    }

    #[test]
    fn snapshots_restore_settled_and_delivered_records() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 5)], 100, 1000);
        p.acknowledge("a", &[(1, 1, vec![1]), (3, 3, vec![2])], 5)
            .unwrap();
        let s = p.snapshot();
        let q = SharePartition::restore(&s);
        assert_eq!(q.start(), 0);
        assert_eq!(q.snapshot(), s);
        let mut q = q;
        // 1 stays acknowledged: never acquired again
        let got = q.acquire("b", &[batch(0, 5)], 100, 1000);
        assert!(got.iter().all(|a| !(a.first..=a.last).contains(&1)));
        let three = got
            .iter()
            .find(|a| (a.first..=a.last).contains(&3))
            .unwrap();
        assert_eq!(three.deliveries, 2);
    }
}
