//! Replay: rebuilds the queue from a checkpoint (or from nothing) and the log records that
//! follow it, applying only what was committed. Pure logic over [`Item`]s; the I/O is in
//! `store`.
//!
//! Rules, in write-order:
//! - `put`: remembered in its transaction.
//! - `take`: the pointer leaves the queue and is remembered in its transaction (a take of
//!   something not in the queue is ignored: its put lived in a log file already deleted,
//!   which only happens when replaying without a checkpoint).
//! - `commit`: the transaction's puts join the tail of the queue; its takes are gone.
//! - `rollback`: the transaction's takes go back to the head of the queue, in their order.
//! - At the end, transactions with neither are uncommitted: their takes go back to the head
//!   (redelivered) and their puts are dropped (their source was never told OK).

use std::collections::{HashMap, VecDeque};

use super::checkpoint::Checkpoint;
use super::record::{Item, Kind, Ptr};

#[derive(Debug, Default)]
struct Pending {
    puts: Vec<Ptr>,
    /// (order key, pointer): takes from the checkpoint first, then by write-order id.
    takes: Vec<(u64, Ptr)>,
}

/// Replay state.
#[derive(Debug, Default)]
pub(super) struct Replay {
    queue: VecDeque<Ptr>,
    pending: HashMap<u64, Pending>,
    /// Highest write-order id (or transaction id) seen.
    pub(super) max_woid: u64,
    /// Records applied.
    pub(super) applied: u64,
    /// Takes of pointers that were not queued.
    pub(super) orphan_takes: u64,
}

/// The outcome.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Recovered {
    /// The queue, head first.
    pub(super) queue: VecDeque<Ptr>,
    /// Takes of unfinished transactions, put back at the head.
    pub(super) restored_takes: usize,
    /// Puts of unfinished transactions, dropped.
    pub(super) dropped_puts: usize,
}

impl Replay {
    /// Start from nothing.
    pub(super) fn new() -> Replay {
        Replay::default()
    }

    /// Start from a checkpoint.
    pub(super) fn from_checkpoint(c: &Checkpoint) -> Replay {
        let mut r = Replay {
            queue: c.queue.iter().copied().collect(),
            max_woid: c.woid,
            ..Replay::default()
        };
        for t in &c.open {
            r.max_woid = r.max_woid.max(t.txn);
            let p = r.pending.entry(t.txn).or_default();
            p.puts.extend(t.puts.iter().copied());
            p.takes.extend(t.takes.iter().map(|ptr| (0, *ptr)));
        }
        r
    }

    /// Apply one record (records must come in write-order).
    pub(super) fn apply(&mut self, item: &Item) {
        let m = item.meta;
        self.max_woid = self.max_woid.max(m.woid).max(m.txn);
        self.applied += 1;
        match m.kind {
            Kind::Put => self.pending.entry(m.txn).or_default().puts.push(item.at),
            Kind::Take => {
                let Some(target) = item.target else { return };
                // Takes come from the head, so the search almost always ends at once.
                match self.queue.iter().position(|p| *p == target) {
                    Some(i) => {
                        self.queue.remove(i);
                        self.pending
                            .entry(m.txn)
                            .or_default()
                            .takes
                            .push((m.woid, target));
                    }
                    None => self.orphan_takes += 1,
                }
            }
            Kind::Commit => {
                if let Some(p) = self.pending.remove(&m.txn) {
                    self.queue.extend(p.puts);
                }
            }
            Kind::Rollback => {
                if let Some(p) = self.pending.remove(&m.txn) {
                    for (_, t) in p.takes.into_iter().rev() {
                        self.queue.push_front(t);
                    }
                }
            }
        }
    }

    /// End of the log: settle unfinished transactions.
    pub(super) fn finish(mut self) -> Recovered {
        let mut takes: Vec<(u64, Ptr)> = Vec::new();
        let mut dropped_puts = 0;
        for (_, p) in self.pending.drain() {
            takes.extend(p.takes);
            dropped_puts += p.puts.len();
        }
        takes.sort();
        let restored_takes = takes.len();
        for (_, t) in takes.into_iter().rev() {
            self.queue.push_front(t);
        }
        Recovered {
            queue: self.queue,
            restored_takes,
            dropped_puts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::file::checkpoint::OpenTxn;
    use crate::channel::file::record::Meta;

    /// Builds items with rising write-order ids; put pointers are (1, woid).
    struct Log {
        items: Vec<Item>,
        next: u64,
    }

    impl Log {
        fn new(first: u64) -> Log {
            Log {
                items: Vec::new(),
                next: first,
            }
        }
        fn push(&mut self, kind: Kind, txn: u64, target: Option<Ptr>) -> Ptr {
            let woid = self.next;
            self.next += 1;
            let at = Ptr {
                file: 1,
                offset: woid,
            };
            self.items.push(Item {
                at,
                meta: Meta { kind, woid, txn },
                target,
            });
            at
        }
        fn put(&mut self, txn: u64) -> Ptr {
            self.push(Kind::Put, txn, None)
        }
        fn take(&mut self, txn: u64, p: Ptr) {
            self.push(Kind::Take, txn, Some(p));
        }
        fn commit(&mut self, txn: u64) {
            self.push(Kind::Commit, txn, None);
        }
        fn rollback(&mut self, txn: u64) {
            self.push(Kind::Rollback, txn, None);
        }
        fn replay(&self, mut r: Replay) -> Recovered {
            for i in &self.items {
                r.apply(i);
            }
            r.finish()
        }
    }

    #[test]
    fn only_committed_puts_are_queued_in_commit_order() {
        let mut log = Log::new(1);
        let a = log.put(100);
        let b = log.put(101);
        let c = log.put(100);
        log.commit(101);
        log.commit(100);
        let _never = log.put(102);
        let rec = log.replay(Replay::new());
        assert_eq!(rec.queue, [b, a, c]);
        assert_eq!(rec.dropped_puts, 1);
        assert_eq!(rec.restored_takes, 0);
    }

    #[test]
    fn committed_takes_are_gone_rolled_back_and_unfinished_takes_return_to_the_head() {
        let mut log = Log::new(1);
        let a = log.put(1);
        let b = log.put(1);
        let c = log.put(1);
        let d = log.put(1);
        log.commit(1);
        log.take(2, a);
        log.commit(2); // a consumed
        log.take(3, b);
        log.rollback(3); // b back at the head
        log.take(4, b);
        log.take(4, c); // never finished: b, c redelivered
        let rec = log.replay(Replay::new());
        assert_eq!(rec.queue, [b, c, d]);
        assert_eq!(rec.restored_takes, 2);
    }

    #[test]
    fn a_transaction_can_finish_after_the_checkpoint() {
        // Checkpoint at woid 10: queue [q1, q2]; txn 9 had put p1 and taken q0.
        let q0 = Ptr { file: 0, offset: 1 };
        let q1 = Ptr { file: 0, offset: 2 };
        let q2 = Ptr { file: 0, offset: 3 };
        let p1 = Ptr { file: 0, offset: 4 };
        let ckpt = Checkpoint {
            woid: 10,
            replay_from: Ptr {
                file: 1,
                offset: 11,
            },
            queue: vec![q1, q2],
            open: vec![
                OpenTxn {
                    txn: 9,
                    puts: vec![p1],
                    takes: vec![q0],
                },
                OpenTxn {
                    txn: 8,
                    puts: vec![],
                    takes: vec![],
                },
            ],
        };
        let mut log = Log::new(11);
        let p2 = log.put(9);
        log.commit(9);
        log.take(12, q1);
        let rec = log.replay(Replay::from_checkpoint(&ckpt));
        // txn 9's puts from before and after the checkpoint are queued, q0 is consumed,
        // the unfinished take of q1 comes back.
        assert_eq!(rec.queue, [q1, q2, p1, p2]);
        assert_eq!(rec.restored_takes, 1);
    }

    #[test]
    fn an_uncommitted_take_from_the_checkpoint_is_redelivered_first() {
        let q0 = Ptr { file: 0, offset: 1 };
        let q1 = Ptr { file: 0, offset: 2 };
        let ckpt = Checkpoint {
            woid: 5,
            replay_from: Ptr { file: 1, offset: 6 },
            queue: vec![q1],
            open: vec![OpenTxn {
                txn: 4,
                puts: vec![],
                takes: vec![q0],
            }],
        };
        let mut log = Log::new(6);
        log.take(7, q1);
        let r = Replay::from_checkpoint(&ckpt);
        assert_eq!(r.max_woid, 5);
        let rec = log.replay(r);
        assert_eq!(rec.queue, [q0, q1]);
    }

    #[test]
    fn takes_of_unknown_pointers_are_ignored() {
        let mut log = Log::new(1);
        log.take(
            1,
            Ptr {
                file: 0,
                offset: 99,
            },
        );
        log.commit(1);
        let mut r = Replay::new();
        for i in &log.items {
            r.apply(i);
        }
        assert_eq!(r.orphan_takes, 1);
        assert!(r.finish().queue.is_empty());
    }
}
