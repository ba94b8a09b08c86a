//! Idempotent and transactional producer state of one partition: for each producer id,
//! its epoch, the sequence ranges of its last five batches, as Kafka keeps them
//! (`max.in.flight.requests.per.connection` is at most 5 for idempotence), and the first
//! offset of its open transaction here, which bounds the last stable offset (Kafka's
//! `ProducerStateManager` / `ProducerAppendInfo`).

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::batch::BatchView;
use super::txn_index::Marker;

/// Batches remembered per producer for duplicate detection (Kafka: 5).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// First sequence number.
    pub first_seq: i32,
    /// Last sequence number.
    pub last_seq: i32,
    /// Offset the batch was written at.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub max_timestamp: i64,
}

/// What a producer has written to this partition.
#[derive(Debug, Clone)]
pub struct ProducerEntry {
    /// Current epoch (-1 before anything was seen, as Kafka's `NO_PRODUCER_EPOCH`).
    pub epoch: i16,
    /// Last batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
    /// Coordinator epoch of the last marker, -1 when none.
    pub coordinator_epoch: i32,
    /// Timestamp of the last batch or marker, -1 when none.
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction in this partition.
    pub txn_first_offset: Option<i64>,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: -1,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            txn_first_offset: None,
        }
    }
}

/// What DescribeProducers reports per producer of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Last sequence written, -1 when no batch is remembered.
    pub last_sequence: i32,
    /// Timestamp of the last batch or marker, -1 when none.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker, -1 when none.
    pub coordinator_epoch: i32,
    /// First offset of the open transaction, -1 when none.
    pub current_txn_start_offset: i64,
}

/// A transaction that a marker ended (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first batch here.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether the marker was an ABORT.
    pub aborted: bool,
}

/// A producer fact found in the log by recovery, replayed in offset order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFact {
    /// An idempotent data batch.
    Data {
        /// Producer id.
        pid: i64,
        /// Producer epoch.
        epoch: i16,
        /// Sequence range and offsets.
        meta: BatchMeta,
        /// Whether it belongs to a transaction.
        transactional: bool,
    },
    /// A transaction marker.
    Marker {
        /// Producer id.
        pid: i64,
        /// Producer epoch of the marker.
        epoch: i16,
        /// Offset of the marker.
        offset: i64,
        /// What it says.
        marker: Marker,
    },
}

impl LogFact {
    /// First offset of the batch the fact came from.
    pub fn offset(&self) -> i64 {
        match self {
            LogFact::Data { meta, .. } => meta.base_offset,
            LogFact::Marker { offset, .. } => *offset,
        }
    }
}

/// Outcome of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Not idempotent, or the next expected sequence: append.
    Append,
    /// Already written: answer with the original offsets, write nothing.
    Duplicate(BatchMeta),
    /// The epoch is older than the producer's current one.
    FencedEpoch,
    /// A non-transactional batch from a producer whose transaction is open here (Kafka's
    /// ProducerAppendInfo refuses it with INVALID_TXN_STATE).
    InvalidTxnState,
    /// A gap or a sequence from the past that is not a known duplicate.
    OutOfOrder {
        /// The sequence the broker expected.
        expected: i32,
    },
}

/// Per-partition producer table.
#[derive(Debug, Default, Clone)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
    /// `(first offset, producer id)` of every open transaction, so the earliest is at hand.
    ongoing: BTreeSet<(i64, i64)>,
}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

impl ProducerState {
    /// Check a batch before it is appended, following Kafka's `ProducerAppendInfo`.
    pub fn check(&self, b: &BatchView<'_>) -> SeqCheck {
        let pid = b.producer_id();
        if pid < 0 || b.base_sequence() < 0 {
            return SeqCheck::Append;
        }
        let epoch = b.producer_epoch();
        let first = b.base_sequence();
        let Some(entry) = self.producers.get(&pid) else {
            // Kafka: a producer it has no state for must start at sequence 0.
            return if first == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder { expected: 0 }
            };
        };
        if epoch < entry.epoch {
            return SeqCheck::FencedEpoch;
        }
        if epoch > entry.epoch {
            return if first == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder { expected: 0 }
            };
        }
        let last = b.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|m| m.first_seq == first && m.last_seq == last)
        {
            return SeqCheck::Duplicate(*dup);
        }
        if !b.is_transactional() && entry.txn_first_offset.is_some() {
            return SeqCheck::InvalidTxnState;
        }
        let expected = entry.batches.back().map_or(0, |m| next_seq(m.last_seq));
        if first == expected {
            SeqCheck::Append
        } else {
            SeqCheck::OutOfOrder { expected }
        }
    }

    /// Record a data batch that was appended: its sequences, and the transaction it opens
    /// if it is transactional and its producer has none open here.
    pub fn record(&mut self, b: &BatchView<'_>) {
        let pid = b.producer_id();
        if pid < 0 || b.base_sequence() < 0 || b.is_control() {
            return;
        }
        self.record_data(
            pid,
            b.producer_epoch(),
            BatchMeta {
                first_seq: b.base_sequence(),
                last_seq: b.last_sequence(),
                base_offset: b.base_offset(),
                last_offset: b.last_offset(),
                max_timestamp: b.max_timestamp(),
            },
            b.is_transactional(),
        );
    }

    /// Record a non-transactional batch by its facts; see [`Self::record_data`].
    pub fn record_meta(&mut self, pid: i64, epoch: i16, meta: BatchMeta) {
        self.record_data(pid, epoch, meta, false);
    }

    /// Record a data batch by its facts; a batch already known (same offsets) is not added
    /// twice, so replaying a snapshot and then the log tail is safe. A transactional batch
    /// from a producer with no open transaction here begins one at its base offset.
    pub fn record_data(&mut self, pid: i64, epoch: i16, meta: BatchMeta, transactional: bool) {
        let entry = self.producers.entry(pid).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry
            .batches
            .iter()
            .any(|m| m.base_offset == meta.base_offset)
        {
            return;
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(meta);
        entry.last_timestamp = meta.max_timestamp;
        if transactional && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(meta.base_offset);
            self.ongoing.insert((meta.base_offset, pid));
        }
    }

    /// Whether a marker from `pid` at `epoch`, written by a coordinator at
    /// `coordinator_epoch`, may be appended. Kafka refuses an older producer epoch
    /// (InvalidProducerEpoch) and an older coordinator epoch (a zombie coordinator:
    /// TransactionCoordinatorFenced).
    pub fn marker_allowed(&self, pid: i64, epoch: i16, coordinator_epoch: i32) -> bool {
        self.producers
            .get(&pid)
            .is_none_or(|e| epoch >= e.epoch && coordinator_epoch >= e.coordinator_epoch)
    }

    /// Apply a marker at `offset`: end the producer's open transaction, and take on the
    /// marker's epoch (a higher one, as transaction version 2 bumps it at every end,
    /// forgets the remembered sequences: the producer restarts at 0). Returns the
    /// transaction it ended, if one was open (a marker without one changes nothing else,
    /// as in Kafka).
    pub fn apply_marker(
        &mut self,
        pid: i64,
        epoch: i16,
        offset: i64,
        m: Marker,
    ) -> Option<CompletedTxn> {
        let entry = self.producers.entry(pid).or_default();
        let done = entry.txn_first_offset.take().map(|first| CompletedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: offset,
            aborted: !m.commit,
        });
        if let Some(t) = &done {
            self.ongoing.remove(&(t.first_offset, pid));
        }
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = m.coordinator_epoch;
        entry.last_timestamp = m.timestamp;
        done
    }

    /// Replay one fact found in the log.
    pub fn apply(&mut self, f: &LogFact) -> Option<CompletedTxn> {
        match *f {
            LogFact::Data {
                pid,
                epoch,
                meta,
                transactional,
            } => {
                self.record_data(pid, epoch, meta, transactional);
                None
            }
            LogFact::Marker {
                pid,
                epoch,
                offset,
                marker,
            } => self.apply_marker(pid, epoch, offset, marker),
        }
    }

    /// Whether no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// First offset of the earliest open transaction (Kafka's first unstable offset).
    pub fn first_unstable(&self) -> Option<i64> {
        self.ongoing.first().map(|&(o, _)| o)
    }

    /// The producers remembered here, for DescribeProducers.
    pub fn infos(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(&pid, e)| ProducerInfo {
                producer_id: pid,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |m| m.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_unstable_by_key(|i| i.producer_id);
        out
    }

    /// Serialise for a snapshot taken when the log ended at `offset`: a line
    /// `offset N`, then per producer a line
    /// `producer pid epoch coordinator_epoch last_timestamp txn_first_offset(-1: none)`
    /// followed by its batches as `pid epoch first last base last_offset ts`. Versions
    /// that know only the batch lines skip the others (they do not have seven numbers).
    pub fn to_snapshot(&self, offset: i64) -> String {
        let mut out = format!("offset {offset}\n");
        for (pid, e) in &self.producers {
            out.push_str(&format!(
                "producer {pid} {} {} {} {}\n",
                e.epoch,
                e.coordinator_epoch,
                e.last_timestamp,
                e.txn_first_offset.unwrap_or(-1)
            ));
            for m in &e.batches {
                out.push_str(&format!(
                    "{pid} {} {} {} {} {} {}\n",
                    e.epoch, m.first_seq, m.last_seq, m.base_offset, m.last_offset, m.max_timestamp
                ));
            }
        }
        out
    }

    /// Parse a snapshot written by [`Self::to_snapshot`] (or by older versions, which wrote
    /// only batch lines); malformed lines are skipped (the state is rebuilt as well as it
    /// can be, not refused). Returns the state and the log end offset it was taken at,
    /// when the snapshot says.
    pub fn from_snapshot(text: &str) -> (Self, Option<i64>) {
        let mut s = ProducerState::default();
        let mut at = None;
        let mut producer_lines = Vec::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let first = words.next();
            let nums = |w: std::str::SplitWhitespace<'_>| -> Vec<i64> {
                w.filter_map(|x| x.parse().ok()).collect()
            };
            match first {
                Some("offset") => {
                    if let [o] = nums(words)[..] {
                        at = Some(o);
                    }
                    continue;
                }
                Some("producer") => {
                    producer_lines.push(nums(words));
                    continue;
                }
                _ => {}
            }
            let f = nums(line.split_whitespace());
            let [pid, epoch, first, last, base, last_off, ts] = f[..] else {
                continue;
            };
            let (Ok(epoch), Ok(first), Ok(last)) = (
                i16::try_from(epoch),
                i32::try_from(first),
                i32::try_from(last),
            ) else {
                continue;
            };
            s.record_meta(
                pid,
                epoch,
                BatchMeta {
                    first_seq: first,
                    last_seq: last,
                    base_offset: base,
                    last_offset: last_off,
                    max_timestamp: ts,
                },
            );
        }
        // After the batch lines, so the producer's own last timestamp and epoch win.
        for f in producer_lines {
            let [pid, epoch, coordinator_epoch, last_ts, txn_first] = f[..] else {
                continue;
            };
            let (Ok(epoch), Ok(coordinator_epoch)) =
                (i16::try_from(epoch), i32::try_from(coordinator_epoch))
            else {
                continue;
            };
            let e = s.producers.entry(pid).or_default();
            e.epoch = epoch;
            e.coordinator_epoch = coordinator_epoch;
            e.last_timestamp = last_ts;
            if let Some(old) = e.txn_first_offset.take() {
                s.ongoing.remove(&(old, pid));
            }
            if txn_first >= 0 {
                e.txn_first_offset = Some(txn_first);
                s.ongoing.insert((txn_first, pid));
            }
        }
        (s, at)
    }

    /// Forget what lies at or past `offset` (after a truncation): batches, and transactions
    /// that began there. Producers that still have a batch, an open transaction or an
    /// epoch learnt from a marker are kept, so fencing survives.
    pub fn truncate_to(&mut self, offset: i64) {
        for (pid, e) in self.producers.iter_mut() {
            e.batches.retain(|m| m.last_offset < offset);
            if let Some(first) = e.txn_first_offset.filter(|&f| f >= offset) {
                e.txn_first_offset = None;
                self.ongoing.remove(&(first, *pid));
            }
        }
        self.producers.retain(|_, e| {
            !e.batches.is_empty() || e.txn_first_offset.is_some() || e.coordinator_epoch >= 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{assign_offset, tests::make_batch};

    fn view(buf: &[u8]) -> BatchView<'_> {
        BatchView::split_first(buf).unwrap().unwrap().0
    }

    #[test]
    fn sequence_rules() {
        let mut st = ProducerState::default();
        let mut b0 = make_batch(3, 1, 7, 0);
        assert_eq!(st.check(&view(&b0)), SeqCheck::Append);
        assign_offset(&mut b0, 10, 0);
        st.record(&view(&b0));
        // same batch again: duplicate with original offsets
        match st.check(&view(&b0)) {
            SeqCheck::Duplicate(m) => assert_eq!(m.base_offset, 10),
            other => panic!("{other:?}"),
        }
        // gap
        let gap = make_batch(1, 1, 7, 5);
        assert_eq!(st.check(&view(&gap)), SeqCheck::OutOfOrder { expected: 3 });
        let next = make_batch(1, 1, 7, 3);
        assert_eq!(st.check(&view(&next)), SeqCheck::Append);
        // unknown producer must start at 0
        let fresh = make_batch(1, 1, 8, 4);
        assert_eq!(
            st.check(&view(&fresh)),
            SeqCheck::OutOfOrder { expected: 0 }
        );
        // snapshot round trip keeps the duplicate
        let (back, at) = ProducerState::from_snapshot(&st.to_snapshot(13));
        assert_eq!(at, Some(13));
        assert!(matches!(back.check(&view(&b0)), SeqCheck::Duplicate(_)));
    }

    fn meta(base: i64, seq: i32) -> BatchMeta {
        BatchMeta {
            first_seq: seq,
            last_seq: seq,
            base_offset: base,
            last_offset: base,
            max_timestamp: 100 + base,
        }
    }

    fn marker(commit: bool) -> Marker {
        Marker {
            commit,
            coordinator_epoch: 2,
            timestamp: 999,
        }
    }

    #[test]
    fn transactions_open_and_end_and_survive_a_snapshot() {
        let mut st = ProducerState::default();
        st.record_data(1, 0, meta(10, 0), true);
        st.record_data(2, 0, meta(11, 0), true);
        st.record_data(1, 0, meta(12, 1), true);
        assert_eq!(st.first_unstable(), Some(10));
        let done = st.apply_marker(1, 0, 13, marker(false)).unwrap();
        assert_eq!(
            (done.first_offset, done.last_offset, done.aborted),
            (10, 13, true)
        );
        assert_eq!(st.first_unstable(), Some(11));
        // A marker with nothing open ends nothing but sets the epoch.
        assert_eq!(st.apply_marker(3, 4, 14, marker(true)), None);
        let (back, at) = ProducerState::from_snapshot(&st.to_snapshot(15));
        assert_eq!(at, Some(15));
        assert_eq!(back.infos(), st.infos());
        assert_eq!(back.first_unstable(), Some(11));
        let p1 = back.infos()[0];
        assert_eq!(
            (
                p1.producer_id,
                p1.last_sequence,
                p1.last_timestamp,
                p1.coordinator_epoch
            ),
            (1, 1, 999, 2)
        );
        // An older version's snapshot (batch lines only) still loads.
        let old = "1 0 0 0 10 10 110\n1 0 1 1 12 12 112\n";
        let (back, at) = ProducerState::from_snapshot(old);
        assert_eq!(at, None);
        let p1 = back.infos()[0];
        assert_eq!((p1.last_sequence, p1.coordinator_epoch), (1, -1));
        assert_eq!(p1.current_txn_start_offset, -1);
    }

    #[test]
    fn truncation_drops_later_transactions_but_keeps_fenced_epochs() {
        let mut st = ProducerState::default();
        st.record_data(1, 0, meta(10, 0), true);
        st.record_data(2, 0, meta(20, 0), true);
        st.apply_marker(3, 7, 5, marker(true));
        st.record_meta(4, 0, meta(30, 0));
        st.truncate_to(15);
        assert_eq!(st.first_unstable(), Some(10));
        let ids: Vec<i64> = st.infos().iter().map(|i| i.producer_id).collect();
        // Pid 2's only batch and transaction were past the cut, pid 4's batch too; pid 3
        // knows its epoch from a marker only.
        assert_eq!(ids, vec![1, 3]);
        assert!(!st.marker_allowed(3, 6, 2));
        assert!(st.marker_allowed(3, 7, 2));
    }
}

/// Hands out producer ids that stay unique across restarts: ids are reserved in blocks
/// recorded in `DATA/producer-id-block` before any id of the block is used, as Kafka's
/// controller allocates blocks of 1000.
#[derive(Debug)]
pub struct ProducerIdAllocator {
    path: std::path::PathBuf,
    state: std::sync::Mutex<(i64, i64)>,
}

/// Ids reserved per write of the block file (Kafka: 1000).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

impl ProducerIdAllocator {
    /// Open the allocator for a data directory.
    pub fn open(dir: &std::path::Path) -> Result<Self, super::Error> {
        let path = dir.join("producer-id-block");
        let start = match std::fs::read_to_string(&path) {
            Ok(t) => t.trim().parse::<i64>().map_err(|_| super::Error::Corrupt {
                path: path.clone(),
                msg: format!("expected a number, found '{}'", t.trim()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(super::Error::io(&path, e)),
        };
        Ok(ProducerIdAllocator {
            path,
            state: std::sync::Mutex::new((start, start)),
        })
    }

    /// The next unused producer id.
    pub fn next(&self) -> Result<i64, super::Error> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (next, limit) = *st;
        if next >= limit {
            let new_limit = next + PRODUCER_ID_BLOCK;
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, new_limit.to_string()).map_err(|e| super::Error::io(&tmp, e))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| super::Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &self.path).map_err(|e| super::Error::io(&self.path, e))?;
            *st = (next, new_limit);
        }
        st.0 += 1;
        Ok(next)
    }
}

#[cfg(test)]
mod alloc_tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIdAllocator::open(dir.path()).unwrap();
        let first = a.next().unwrap();
        let second = a.next().unwrap();
        assert_eq!(second, first + 1);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).unwrap();
        assert!(b.next().unwrap() > second);
    }
}
