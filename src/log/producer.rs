//! Idempotent-producer state of one partition: for each producer id, its epoch and the
//! sequence ranges of its last five batches, as Kafka keeps them
//! (`max.in.flight.requests.per.connection` is at most 5 for idempotence).

use std::collections::{HashMap, VecDeque};

use super::batch::BatchView;

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
#[derive(Debug, Clone, Default)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// Last batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
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
        let expected = entry.batches.back().map_or(0, |m| next_seq(m.last_seq));
        if first == expected {
            SeqCheck::Append
        } else {
            SeqCheck::OutOfOrder { expected }
        }
    }

    /// Record a batch that was appended (or found during recovery).
    pub fn record(&mut self, b: &BatchView<'_>) {
        let pid = b.producer_id();
        if pid < 0 || b.base_sequence() < 0 {
            return;
        }
        self.record_meta(
            pid,
            b.producer_epoch(),
            BatchMeta {
                first_seq: b.base_sequence(),
                last_seq: b.last_sequence(),
                base_offset: b.base_offset(),
                last_offset: b.last_offset(),
                max_timestamp: b.max_timestamp(),
            },
        );
    }

    /// Record a batch by its facts; a batch already known (same offsets) is not added twice,
    /// so replaying a snapshot and then the log tail is safe.
    pub fn record_meta(&mut self, pid: i64, epoch: i16, meta: BatchMeta) {
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
    }

    /// Serialise as text lines `pid epoch first last base last_offset ts` for a snapshot.
    pub fn to_snapshot(&self) -> String {
        let mut out = String::new();
        for (pid, e) in &self.producers {
            for m in &e.batches {
                out.push_str(&format!(
                    "{pid} {} {} {} {} {} {}\n",
                    e.epoch, m.first_seq, m.last_seq, m.base_offset, m.last_offset, m.max_timestamp
                ));
            }
        }
        out
    }

    /// Parse a snapshot written by [`Self::to_snapshot`]; malformed lines are skipped (the
    /// state is an optimisation for duplicate detection, not data).
    pub fn from_snapshot(text: &str) -> Self {
        let mut s = ProducerState::default();
        for line in text.lines() {
            let f: Vec<i64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
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
        s
    }

    /// Forget batches at or past `offset` (after a truncation).
    pub fn truncate_to(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|m| m.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
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
        let back = ProducerState::from_snapshot(&st.to_snapshot());
        assert!(matches!(back.check(&view(&b0)), SeqCheck::Duplicate(_)));
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
