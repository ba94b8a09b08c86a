//! Spark's `CanCommitOffsets`: [`CommitQueue::commit_async`] only queues ranges; the stream
//! drains the queue when it generates the next batch (`commitAll`) and sends, per
//! partition, the largest `untilOffset` queued. Sending happens on a background task, in
//! order, so a batch never waits for a commit; its outcome goes to the latest callback
//! set. A driver that dies before the next batch loses the queued commit: the ranges are
//! read again after a restart (at-least-once).
//!
//! Commits are sent as a "simple" committer (generation -1, no member id), since the
//! stream does not join its group (see `strategy.rs`); Kafka accepts these while the
//! group has no active members.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sluice_client::{Client, CommitOffset, Generation};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::range::{OffsetRange, TopicPartition};

/// Called with the offsets of each commit sent, and its outcome (Kafka's
/// `OffsetCommitCallback`).
pub type CommitCallback =
    Arc<dyn Fn(&BTreeMap<TopicPartition, i64>, Result<(), &sluice_client::Error>) + Send + Sync>;

/// The commit queue of a stream. Cloning is cheap; clones share the queue, and it may be
/// used from any thread (a job's partitions, say).
#[derive(Clone)]
pub struct CommitQueue {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Vec<OffsetRange>>,
    callback: Mutex<Option<CommitCallback>>,
}

impl std::fmt::Debug for CommitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = self.shared.queue.lock().map_or(0, |q| q.len());
        f.debug_struct("CommitQueue")
            .field("queued", &queued)
            .finish()
    }
}

impl CommitQueue {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                callback: Mutex::new(None),
            }),
        }
    }

    /// Queues `ranges` to be committed with the next batch.
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.lock_queue().extend_from_slice(ranges);
    }

    /// Queues `ranges` and makes `callback` the one told about commits from now on (Spark
    /// keeps only the latest callback).
    pub fn commit_async_with_callback(&self, ranges: &[OffsetRange], callback: CommitCallback) {
        *self
            .shared
            .callback
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(callback);
        self.commit_async(ranges);
    }

    /// Empties the queue: per partition the largest `untilOffset` queued.
    pub(crate) fn drain(&self) -> BTreeMap<TopicPartition, i64> {
        let mut out: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in self.lock_queue().drain(..) {
            let slot = out.entry(r.topic_partition()).or_insert(r.until_offset);
            *slot = (*slot).max(r.until_offset);
        }
        out
    }

    fn callback(&self) -> Option<CommitCallback> {
        self.shared
            .callback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<OffsetRange>> {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum Job {
    Commit(BTreeMap<TopicPartition, i64>, Option<CommitCallback>),
    Flush(oneshot::Sender<()>),
}

/// Sends drained commits to the group coordinator, one after the other.
#[derive(Debug)]
pub(crate) struct Committer {
    queue: CommitQueue,
    tx: mpsc::UnboundedSender<Job>,
    task: JoinHandle<()>,
}

impl Committer {
    pub(crate) fn start(client: Client, group: Option<String>, queue: CommitQueue) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Flush(done) => {
                        let _waiter_may_be_gone = done.send(());
                    }
                    Job::Commit(offsets, callback) => {
                        let result = send(&client, group.as_deref(), &offsets).await;
                        match &result {
                            Ok(()) => {
                                tracing::debug!(partitions = offsets.len(), "committed offsets")
                            }
                            Err(e) => tracing::warn!("offset commit failed: {e}"),
                        }
                        if let Some(cb) = callback {
                            cb(&offsets, result.as_ref().map(|_| ()));
                        }
                    }
                }
            }
        });
        Self { queue, tx, task }
    }

    /// `commitAll`: drains the queue and sends it, without waiting.
    pub(crate) fn commit_all(&self) {
        let offsets = self.queue.drain();
        if offsets.is_empty() {
            return;
        }
        if self
            .tx
            .send(Job::Commit(offsets, self.queue.callback()))
            .is_err()
        {
            tracing::error!("the offset committer task is gone; commit dropped");
        }
    }

    /// Drains the queue, sends it, and waits until every commit sent so far is done.
    pub(crate) async fn flush(&self) {
        self.commit_all();
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).is_ok() {
            let _committer_gone = wait.await;
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send(
    client: &Client,
    group: Option<&str>,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), sluice_client::Error> {
    let Some(group) = group else {
        // Kafka's consumer throws InvalidGroupIdException here.
        return Err(sluice_client::Error::InvalidArgument(
            "commit_async needs group.id".to_owned(),
        ));
    };
    let list: Vec<CommitOffset> = offsets
        .iter()
        .map(|(tp, o)| CommitOffset::new(tp.topic.clone(), tp.partition, *o))
        .collect();
    client
        .commit_offsets(group, &Generation::simple(), &list)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_keeps_the_largest_until_per_partition() {
        let q = CommitQueue::new();
        q.commit_async(&[
            OffsetRange::new("t", 0, 0, 10),
            OffsetRange::new("t", 1, 0, 3),
        ]);
        q.commit_async(&[OffsetRange::new("t", 0, 10, 20)]);
        q.commit_async(&[OffsetRange::new("t", 0, 5, 15)]);
        let d = q.drain();
        assert_eq!(d.get(&TopicPartition::new("t", 0)), Some(&20));
        assert_eq!(d.get(&TopicPartition::new("t", 1)), Some(&3));
        assert!(q.drain().is_empty(), "drained");
    }
}
