//! One transactional id's metadata and the pure rules of its state machine, as Kafka's
//! `TransactionMetadata` and `TransactionCoordinator` keep them. No IO here: the coordinator
//! (`txn::Coordinator`) computes the next metadata with these functions, writes it to
//! `__transaction_state`, and only then installs it.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError as Code;

/// "No producer epoch" (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_EPOCH: i16 = -1;
/// "No producer id".
pub const NO_PID: i64 = -1;

/// A transaction's state. The numbers are Kafka's `TransactionState` ids, stored in
/// `__transaction_state`; the names are what DescribeTransactions and ListTransactions say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open (just initialised).
    Empty,
    /// Partitions have been added; records may be written.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort) accepted, or the transaction timed out; markers being written.
    PrepareAbort,
    /// Commit markers written.
    CompleteCommit,
    /// Abort markers written.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// The producer is being fenced; the open transaction will be aborted.
    PrepareEpochFence,
}

impl TxnState {
    /// Kafka's id of the state.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's id `id`.
    pub fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Every state, for matching ListTransactions filters.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];
}

/// A topic partition in a transaction.
pub type TopicPartition = (String, i32);

/// What the coordinator knows of one transactional id (Kafka's `TransactionLogValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    /// The transactional id.
    pub transactional_id: String,
    /// Producer id in use.
    pub producer_id: i64,
    /// Producer id before the last rotation (an exhausted epoch), for retries.
    pub previous_producer_id: i64,
    /// Producer id the next completion rotates to (transaction version 2, exhausted epoch).
    pub next_producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// Epoch before the last bump (lets a retried InitProducerId get the same answer).
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions of the open (or just completed) transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the transaction started (ms), -1 when none.
    pub start_ms: i64,
    /// When this metadata last changed (ms).
    pub last_update_ms: i64,
    /// Transaction version the client used at its last EndTxn (0/1: classic, 2: KIP-890).
    pub client_tv: i16,
}

/// Whether `epoch` can no longer be bumped (Kafka: `Short.MaxValue - 1`).
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMeta {
    /// A new transactional id holding producer id `pid` (epoch not yet assigned).
    pub fn new(transactional_id: &str, pid: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMeta {
            transactional_id: transactional_id.to_string(),
            producer_id: pid,
            previous_producer_id: NO_PID,
            next_producer_id: NO_PID,
            producer_epoch: NO_EPOCH,
            last_producer_epoch: NO_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            client_tv: 0,
        }
    }

    /// Whether the metadata allows InitProducerId with this expected id/epoch (KIP-360).
    fn valid_expected(&self, expected: Option<(i64, i16)>) -> bool {
        match expected {
            None => true,
            Some((pid, epoch)) => {
                self.producer_epoch == NO_EPOCH
                    || pid == self.producer_id
                    || (pid == self.previous_producer_id && epoch_exhausted(epoch))
            }
        }
    }

    /// InitProducerId on a transaction that is not open: the next metadata, or the error.
    /// `new_pid` is called when the epoch is exhausted and a fresh producer id is needed.
    pub fn init_producer_id(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        new_pid: impl FnOnce() -> Result<i64, Code>,
    ) -> Result<TxnMeta, Code> {
        if !self.valid_expected(expected) {
            return Err(Code::ProducerFenced);
        }
        match self.state {
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
            // The caller aborts an open transaction first; these are transient.
            _ => return Err(Code::ConcurrentTransactions),
        }
        let mut next = self.clone();
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now;
        if epoch_exhausted(self.producer_epoch)
            && expected.is_none_or(|(_, e)| e == self.producer_epoch)
        {
            // Kafka's prepareProducerIdRotation.
            next.previous_producer_id = if expected.is_some() {
                self.producer_id
            } else {
                NO_PID
            };
            next.producer_id = new_pid()?;
            next.producer_epoch = 0;
            next.last_producer_epoch = NO_EPOCH;
            return Ok(next);
        }
        // Kafka's prepareIncrementProducerEpoch.
        let bumped = if self.producer_epoch == NO_EPOCH {
            0
        } else {
            self.producer_epoch + 1
        };
        match expected.map(|(_, e)| e) {
            None => {
                next.producer_epoch = bumped;
                next.last_producer_epoch = NO_EPOCH;
            }
            Some(e) if e == NO_EPOCH || e == self.producer_epoch => {
                next.producer_epoch = bumped;
                next.last_producer_epoch = self.producer_epoch;
            }
            // A retry of a bump whose answer was lost: the same answer again.
            Some(e) if e == self.last_producer_epoch => {}
            Some(_) => return Err(Code::ProducerFenced),
        }
        Ok(next)
    }

    /// Check a client's producer id and epoch against the metadata (AddPartitionsToTxn,
    /// AddOffsetsToTxn, TxnOffsetCommit, transactional Produce).
    pub fn check_producer(&self, pid: i64, epoch: i16) -> Result<(), Code> {
        if self.producer_id != pid {
            Err(Code::InvalidProducerIdMapping)
        } else if self.producer_epoch != epoch {
            Err(Code::ProducerFenced)
        } else if matches!(
            self.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        ) {
            Err(Code::ConcurrentTransactions)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn: `Ok(None)` when nothing changes, `Ok(Some(next))` to write.
    pub fn add_partitions(
        &self,
        pid: i64,
        epoch: i16,
        parts: &[TopicPartition],
        now: i64,
    ) -> Result<Option<TxnMeta>, Code> {
        self.check_producer(pid, epoch)?;
        if self.state == TxnState::Dead {
            return Err(Code::InvalidProducerIdMapping);
        }
        if self.state == TxnState::Ongoing && parts.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if self.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now;
            next.state = TxnState::Ongoing;
        }
        next.partitions.extend(parts.iter().cloned());
        next.last_update_ms = now;
        Ok(Some(next))
    }

    /// Whether an EndTxn of transaction version 2 is a retry of one that already bumped the
    /// epoch (Kafka's `endTxnEpochBumped`).
    fn retried_after_bump(&self, epoch: i16) -> bool {
        self.client_tv >= 2 && epoch != NO_EPOCH && self.producer_epoch == epoch.wrapping_add(1)
    }

    /// EndTxn's checks (Kafka's `endTransaction` before the append). Returns what to do.
    pub fn end_txn(&self, pid: i64, epoch: i16, commit: bool, tv2: bool) -> EndTxnPlan {
        let tv2_meta = self.client_tv >= 2;
        let retry_on_overflow = tv2_meta
            && self.previous_producer_id == pid
            && epoch == i16::MAX - 1
            && self.producer_epoch == 0;
        if self.producer_id != pid && !retry_on_overflow {
            return EndTxnPlan::Fail(Code::InvalidProducerIdMapping);
        }
        // Kafka 4.3.1 (read off it with a probe, 2026-12-05; its 4.0 source did not yet):
        // with transaction version 2 an abort at the current epoch after a finished
        // transaction is an abort of an empty one, answered NONE with the epoch bumped.
        // franz-go relies on it to clear what a dropped batch may have registered.
        let completed = matches!(
            self.state,
            TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        if tv2 && completed && !commit && epoch == self.producer_epoch && self.producer_id == pid {
            return EndTxnPlan::AbortEmpty;
        }
        let valid_epoch = if tv2_meta {
            match self.state {
                TxnState::Ongoing | TxnState::Empty | TxnState::Dead => {
                    epoch == self.producer_epoch
                }
                TxnState::PrepareEpochFence => epoch == self.producer_epoch,
                TxnState::PrepareCommit | TxnState::PrepareAbort => self.retried_after_bump(epoch),
                TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    self.retried_after_bump(epoch) || retry_on_overflow
                }
            }
        } else {
            epoch == self.producer_epoch
        };
        if !valid_epoch {
            return EndTxnPlan::Fail(Code::ProducerFenced);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => EndTxnPlan::Complete,
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                EndTxnPlan::AlreadyDone
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                EndTxnPlan::Fail(Code::ConcurrentTransactions)
            }
            // Transaction version 2: a producer that never reached a partition may still
            // abort (it cannot know whether its first produce added one); the epoch is bumped
            // as for any other end of a transaction.
            (TxnState::Empty, false) if tv2 => EndTxnPlan::AbortEmpty,
            _ => EndTxnPlan::Fail(Code::InvalidTxnState),
        }
    }

    /// The Prepare* metadata of an EndTxn (or of a timeout abort): for transaction version 2
    /// the epoch is bumped now, so the markers carry the new epoch and fence late writes of
    /// the old one; an exhausted epoch rotates to `next_pid` once the markers are written.
    pub fn prepare_end(
        &self,
        commit: bool,
        tv2: bool,
        fence: bool,
        now: i64,
        next_pid: impl FnOnce() -> Result<i64, Code>,
    ) -> Result<TxnMeta, Code> {
        let mut next = self.clone();
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        next.last_update_ms = now;
        if fence {
            // Kafka's prepareFenceProducerEpoch: one bump, which fences the current producer.
            if !epoch_exhausted(self.producer_epoch) {
                next.last_producer_epoch = self.producer_epoch;
                next.producer_epoch = self.producer_epoch + 1;
            }
        } else if tv2 {
            next.client_tv = 2;
            if epoch_exhausted(self.producer_epoch) {
                next.next_producer_id = next_pid()?;
            } else {
                next.last_producer_epoch = self.producer_epoch;
                next.producer_epoch = self.producer_epoch + 1;
            }
        } else {
            next.client_tv = 1;
        }
        Ok(next)
    }

    /// The Complete* metadata after the markers of a Prepare* state are written.
    pub fn complete(&self, now: i64) -> TxnMeta {
        let mut next = self.clone();
        next.state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now;
        if self.next_producer_id != NO_PID {
            next.previous_producer_id = self.producer_id;
            next.producer_id = self.next_producer_id;
            next.next_producer_id = NO_PID;
            next.producer_epoch = 0;
            next.last_producer_epoch = NO_EPOCH;
        }
        next
    }
}

/// What EndTxn must do, decided from the metadata alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndTxnPlan {
    /// Write Prepare*, the markers, then Complete*.
    Complete,
    /// A retry of an EndTxn that completed: answer success with the current id and epoch.
    AlreadyDone,
    /// Transaction version 2 abort with nothing added: bump the epoch, write CompleteAbort.
    AbortEmpty,
    /// Refuse with this error.
    Fail(Code),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> TxnMeta {
        TxnMeta::new("t", 7, 60_000, 1)
            .init_producer_id(60_000, None, 2, || Ok(99))
            .unwrap()
    }

    #[test]
    fn init_assigns_epoch_zero_then_bumps() {
        let m = fresh();
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (7, 0, TxnState::Empty)
        );
        let m2 = m.init_producer_id(60_000, None, 3, || Ok(99)).unwrap();
        assert_eq!(m2.producer_epoch, 1);
        // KIP-360: the producer names its id and epoch; a retry after a lost answer gets the
        // same epoch again, a stranger's is fenced.
        let m3 = m2
            .init_producer_id(60_000, Some((7, 1)), 4, || Ok(99))
            .unwrap();
        assert_eq!((m3.producer_epoch, m3.last_producer_epoch), (2, 1));
        let retry = m3
            .init_producer_id(60_000, Some((7, 1)), 5, || Ok(99))
            .unwrap();
        assert_eq!(retry.producer_epoch, 2);
        assert_eq!(
            m3.init_producer_id(60_000, Some((8, 0)), 5, || Ok(99)),
            Err(Code::ProducerFenced)
        );
    }

    #[test]
    fn exhausted_epoch_rotates_the_producer_id() {
        let mut m = fresh();
        m.producer_epoch = i16::MAX - 1;
        let n = m.init_producer_id(60_000, None, 3, || Ok(99)).unwrap();
        assert_eq!((n.producer_id, n.producer_epoch), (99, 0));
    }

    #[test]
    fn add_partitions_opens_the_transaction_and_checks_the_producer() {
        let m = fresh();
        let parts = vec![("a".to_string(), 0), ("a".to_string(), 1)];
        let n = m.add_partitions(7, 0, &parts, 10).unwrap().unwrap();
        assert_eq!(
            (n.state, n.start_ms, n.partitions.len()),
            (TxnState::Ongoing, 10, 2)
        );
        assert_eq!(n.add_partitions(7, 0, &parts[..1], 11), Ok(None));
        assert_eq!(
            n.add_partitions(7, 1, &parts, 11),
            Err(Code::ProducerFenced)
        );
        assert_eq!(
            n.add_partitions(8, 0, &parts, 11),
            Err(Code::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn end_txn_follows_kafka_for_each_state() {
        let m = fresh();
        assert_eq!(
            m.end_txn(7, 0, true, false),
            EndTxnPlan::Fail(Code::InvalidTxnState)
        );
        assert_eq!(m.end_txn(7, 0, false, true), EndTxnPlan::AbortEmpty);
        let parts = vec![("a".to_string(), 0)];
        let on = m.add_partitions(7, 0, &parts, 10).unwrap().unwrap();
        assert_eq!(on.end_txn(7, 0, true, false), EndTxnPlan::Complete);
        assert_eq!(
            on.end_txn(7, 1, true, false),
            EndTxnPlan::Fail(Code::ProducerFenced)
        );
        // Version 1: the epoch stays, a retry of the same result succeeds, the other fails.
        let done = on
            .prepare_end(true, false, false, 11, || Ok(99))
            .unwrap()
            .complete(12);
        assert_eq!(
            (done.state, done.producer_epoch),
            (TxnState::CompleteCommit, 0)
        );
        assert_eq!(done.end_txn(7, 0, true, false), EndTxnPlan::AlreadyDone);
        assert_eq!(
            done.end_txn(7, 0, false, false),
            EndTxnPlan::Fail(Code::InvalidTxnState)
        );
        // Version 2: the epoch is bumped by EndTxn; the retry carries the old epoch.
        let p2 = on.prepare_end(false, true, false, 11, || Ok(99)).unwrap();
        assert_eq!(p2.producer_epoch, 1);
        let d2 = p2.complete(12);
        assert_eq!(d2.end_txn(7, 0, false, true), EndTxnPlan::AlreadyDone);
        // Kafka 4.3.1: after a version 2 completion, an abort at the current epoch is an
        // empty abort (epoch bumped); a commit there is fenced; the old epoch is a retry.
        assert_eq!(d2.end_txn(7, 1, false, true), EndTxnPlan::AbortEmpty);
        assert_eq!(
            d2.end_txn(7, 1, true, true),
            EndTxnPlan::Fail(Code::ProducerFenced)
        );
        assert_eq!(
            d2.end_txn(7, 2, false, true),
            EndTxnPlan::Fail(Code::ProducerFenced)
        );
    }

    #[test]
    fn version_2_rotates_an_exhausted_producer_at_completion() {
        let mut m = fresh();
        m.producer_epoch = i16::MAX - 1;
        let on = m
            .add_partitions(7, i16::MAX - 1, &[("a".to_string(), 0)], 10)
            .unwrap()
            .unwrap();
        let p = on.prepare_end(true, true, false, 11, || Ok(99)).unwrap();
        assert_eq!((p.producer_id, p.next_producer_id), (7, 99));
        let d = p.complete(12);
        assert_eq!(
            (d.producer_id, d.producer_epoch, d.previous_producer_id),
            (99, 0, 7)
        );
        assert_eq!(
            d.end_txn(7, i16::MAX - 1, true, true),
            EndTxnPlan::AlreadyDone
        );
    }

    #[test]
    fn a_fence_bumps_once_and_aborts() {
        let m = fresh();
        let on = m
            .add_partitions(7, 0, &[("a".to_string(), 0)], 10)
            .unwrap()
            .unwrap();
        let p = on.prepare_end(false, true, true, 11, || Ok(99)).unwrap();
        assert_eq!((p.state, p.producer_epoch), (TxnState::PrepareAbort, 1));
        let d = p.complete(12);
        assert_eq!(d.check_producer(7, 0), Err(Code::ProducerFenced));
    }
}
