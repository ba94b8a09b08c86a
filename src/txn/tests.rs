//! The coordinator against real logs in a temp dir: a crash between Prepare and the
//! markers, a transaction past its timeout, and transactional offsets.

use std::path::Path;

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;
use crate::config::TxnConfig;
use crate::group::offsets::CommittedOffset;
use crate::log::{LogConfig, LogManager};

struct Node {
    logs: LogManager,
    pids: ProducerIdAllocator,
    groups: crate::group::Coordinator,
    txns: Coordinator,
}

impl Node {
    fn open(dir: &Path) -> Node {
        let logs = LogManager::open(dir, LogConfig::default(), 1).unwrap();
        let pids = ProducerIdAllocator::open(dir).unwrap();
        let groups = crate::group::Coordinator::open(&logs, 0, i64::MAX).unwrap();
        let txns = Coordinator::open(
            Env {
                logs: &logs,
                pids: &pids,
                groups: &groups,
            },
            TxnConfig::default(),
        )
        .unwrap();
        Node {
            logs,
            pids,
            groups,
            txns,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            logs: &self.logs,
            pids: &self.pids,
            groups: &self.groups,
        }
    }

    fn part(&self, topic: &str, i: usize) -> Arc<Partition> {
        Arc::clone(&self.logs.topic(topic).unwrap().partitions[i])
    }
}

/// A transactional batch of `n` records from `pid` at `epoch`, sequences from `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: i32) -> BytesMut {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: seq + i,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf
}

fn parts(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|i| (topic.to_string(), i)).collect()
}

#[tokio::test]
async fn a_transaction_prepared_before_a_crash_completes_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, epoch) = {
        let node = Node::open(dir.path());
        node.logs
            .create_topic("t", 2, Default::default(), false)
            .unwrap();
        let (pid, epoch) = node
            .txns
            .init_producer_id(node.env(), "tx", 60_000, None)
            .await
            .unwrap();
        node.txns
            .add_partitions("tx", pid, epoch, &parts("t", 2))
            .await
            .unwrap();
        for i in 0..2 {
            node.part("t", i)
                .append(&txn_batch(pid, epoch, 0, 3))
                .unwrap();
            assert_eq!(
                node.part("t", i).last_stable_offset(),
                0,
                "open txn holds the LSO"
            );
        }
        // The Prepare record is written, then the broker dies before any marker.
        let entry = node.txns.entry("tx").unwrap();
        let mut m = entry.lock().await;
        let prepared = m
            .prepare_end(true, false, false, now_ms(), || Ok(-1))
            .unwrap();
        node.txns.transit(&mut m, prepared).unwrap();
        (pid, epoch)
    };
    let node = Node::open(dir.path());
    for i in 0..2 {
        let p = node.part("t", i);
        let (_, end, hw, _) = p.offsets();
        assert_eq!(end, 4, "3 records and the COMMIT marker");
        assert_eq!(p.last_stable_offset(), hw);
        assert!(p.aborted_txns(0, end).unwrap().is_empty());
    }
    let m = node.txns.describe("tx").await.unwrap();
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch),
        (TxnState::CompleteCommit, pid, epoch)
    );
}

#[tokio::test]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    node.logs
        .create_topic("t", 1, Default::default(), false)
        .unwrap();
    let (pid, epoch) = node
        .txns
        .init_producer_id(node.env(), "slow", 1, None)
        .await
        .unwrap();
    node.txns
        .add_partitions("slow", pid, epoch, &parts("t", 1))
        .await
        .unwrap();
    node.part("t", 0)
        .append(&txn_batch(pid, epoch, 0, 2))
        .unwrap();
    let started = node.txns.describe("slow").await.unwrap().start_ms;
    // The timeout is 1 ms: wait for the clock to pass it (no other event to wait on).
    while now_ms() <= started + 1 {
        tokio::task::yield_now().await;
    }
    node.txns.tick(node.env()).await;
    let m = node.txns.describe("slow").await.unwrap();
    assert_eq!(m.state, TxnState::CompleteAbort);
    assert_eq!(m.producer_epoch, epoch + 1, "fenced by one bump");
    let p = node.part("t", 0);
    let (_, end, hw, _) = p.offsets();
    assert_eq!((end, p.last_stable_offset()), (3, hw));
    let aborted = p.aborted_txns(0, end).unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (pid, 0));
    // The old epoch can no longer write to the transaction or end it.
    assert_eq!(
        node.txns
            .end_txn(node.env(), "slow", pid, epoch, true, false)
            .await,
        Err(Code::ProducerFenced)
    );
}

#[tokio::test]
async fn transactional_offsets_appear_on_commit_only_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let off = |o| CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 1,
    };
    {
        let node = Node::open(dir.path());
        let o = &node.groups.offsets;
        o.commit_txn("g", 7, 0, vec![(("in".into(), 0), off(10))])
            .unwrap();
        assert!(o.get("g", "in", 0).is_none());
        assert!(o.has_pending("g", "in", 0));
        o.write_marker(7, 0, true).unwrap();
        assert_eq!(o.get("g", "in", 0).map(|c| c.offset), Some(10));
        o.commit_txn("g", 7, 0, vec![(("in".into(), 0), off(20))])
            .unwrap();
        o.write_marker(7, 0, false).unwrap();
        assert_eq!(o.get("g", "in", 0).map(|c| c.offset), Some(10));
        // A third one left open when the broker stops.
        o.commit_txn("g", 8, 0, vec![(("in".into(), 1), off(5))])
            .unwrap();
    }
    let node = Node::open(dir.path());
    let o = &node.groups.offsets;
    assert_eq!(o.get("g", "in", 0).map(|c| c.offset), Some(10));
    assert!(o.get("g", "in", 1).is_none());
    assert!(o.has_pending("g", "in", 1));
}

#[tokio::test]
async fn init_producer_id_fences_an_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    node.logs
        .create_topic("t", 1, Default::default(), false)
        .unwrap();
    let (pid, e0) = node
        .txns
        .init_producer_id(node.env(), "z", 60_000, None)
        .await
        .unwrap();
    node.txns
        .add_partitions("z", pid, e0, &parts("t", 1))
        .await
        .unwrap();
    node.part("t", 0).append(&txn_batch(pid, e0, 0, 1)).unwrap();
    // A second producer with the same id: the zombie's transaction is aborted.
    let (pid2, e1) = node
        .txns
        .init_producer_id(node.env(), "z", 60_000, None)
        .await
        .unwrap();
    assert_eq!(pid2, pid);
    assert!(e1 > e0 + 1, "one bump to fence, one for the new producer");
    let p = node.part("t", 0);
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    assert_eq!(
        node.txns.add_partitions("z", pid, e0, &parts("t", 1)).await,
        Err(Code::ProducerFenced)
    );
    assert_eq!(
        node.txns
            .init_producer_id(node.env(), "z", 900_001, None)
            .await,
        Err(Code::InvalidTransactionTimeout)
    );
}
