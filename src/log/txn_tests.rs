//! Tests of the storage side of transactions on whole partitions: markers, the last stable
//! offset, `read_committed` reads, the `.txnindex`, their recovery after a clean shutdown
//! and after a crash, and fencing. The codec and index file have their own tests in
//! `txn_index.rs`; compaction's are in `cleaner.rs`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::batch::tests::make_batch;
use super::batch::{BatchView, ATTR_TRANSACTIONAL};
use super::{AbortedTxn, AppendError, LogConfig, Partition, ProducerInfo};

fn cfg() -> Arc<LogConfig> {
    Arc::new(LogConfig::default())
}

fn open(dir: &Path, c: Arc<LogConfig>, rp: Option<i64>) -> Partition {
    Partition::open("t".into(), 0, dir, c, rp, None).unwrap()
}

/// A transactional batch of `n` records from `pid` at `epoch`, first sequence `seq`.
pub(crate) fn txn_batch(n: i32, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut b = make_batch(n, 1, pid, seq);
    b[21..23].copy_from_slice(&ATTR_TRANSACTIONAL.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// (base offset, producer id, control) of every batch in `bytes`.
fn batches(bytes: &[u8]) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((v, tail)) = BatchView::split_first(rest).unwrap() {
        out.push((v.base_offset(), v.producer_id(), v.is_control()));
        rest = tail;
    }
    out
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

fn files_with(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn markers_are_control_batches_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&txn_batch(2, 7, 0, 0)).unwrap();
    assert_eq!(p.append_marker(7, 0, true, 3).unwrap(), 2);
    p.append(&txn_batch(1, 7, 0, 2)).unwrap();
    assert_eq!(p.append_marker(7, 0, false, 3).unwrap(), 4);
    let d = p.read(0, 1 << 20).unwrap();
    let mut buf = d.records.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    assert_eq!(sets.len(), 4);
    let keys: Vec<_> = [1usize, 3]
        .iter()
        .map(|&i| {
            let r = &sets[i].records[0];
            assert!(r.control && r.transactional);
            assert_eq!((r.producer_id, r.producer_epoch), (7, 0));
            r.key.clone().unwrap()
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            Bytes::from_static(&[0, 0, 0, 1]),
            Bytes::from_static(&[0, 0, 0, 0])
        ]
    );
    // Only the ABORT of a transaction that held data is indexed.
    assert_eq!(p.aborted_txns(0, 100).unwrap(), vec![aborted(7, 3, 4, 5)]);
    assert_eq!(files_with(dir.path(), "txnindex").len(), 1);
}

#[test]
fn last_stable_offset_follows_the_earliest_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&make_batch(2, 1, -1, -1)).unwrap(); // 0..=1, not transactional
    assert_eq!(p.last_stable_offset(), 2);
    p.append(&txn_batch(2, 10, 0, 0)).unwrap(); // 2..=3 opens pid 10
    p.append(&txn_batch(1, 11, 0, 0)).unwrap(); // 4 opens pid 11
    p.append(&txn_batch(1, 10, 0, 2)).unwrap(); // 5, same txn of 10
    assert_eq!(p.last_stable_offset(), 2);
    assert_eq!(p.high_watermark(), 6);
    assert_eq!(p.append_marker(10, 0, true, 0).unwrap(), 6);
    assert_eq!(p.last_stable_offset(), 4);
    // A marker for a producer with nothing open is written and changes nothing.
    assert_eq!(p.append_marker(12, 0, false, 0).unwrap(), 7);
    assert_eq!(p.last_stable_offset(), 4);
    p.append(&txn_batch(1, 10, 0, 3)).unwrap(); // 8: pid 10's next transaction
    assert_eq!(p.append_marker(11, 0, false, 0).unwrap(), 9);
    assert_eq!(p.last_stable_offset(), 8);
    assert_eq!(p.aborted_txns(0, 100).unwrap(), vec![aborted(11, 4, 9, 8)]);
    assert_eq!(p.append_marker(10, 0, true, 0).unwrap(), 10);
    assert_eq!(p.last_stable_offset(), 11);
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    let infos: Vec<ProducerInfo> = p.producer_infos();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].producer_id, 10);
    assert_eq!(infos[0].last_sequence, 3);
    assert_eq!(infos[0].coordinator_epoch, 0);
    assert_eq!(infos[0].current_txn_start_offset, -1);
}

#[test]
fn read_committed_stops_at_the_last_stable_offset_and_lists_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&txn_batch(2, 1, 0, 0)).unwrap(); // 0..=1 pid 1
    p.append(&make_batch(1, 1, -1, -1)).unwrap(); // 2
    p.append_marker(1, 0, false, 0).unwrap(); // 3 abort pid 1
    p.append(&txn_batch(1, 2, 0, 0)).unwrap(); // 4 pid 2
    p.append_marker(2, 0, true, 0).unwrap(); // 5 commit pid 2
    p.append(&make_batch(1, 1, -1, -1)).unwrap(); // 6
    p.append(&txn_batch(1, 3, 0, 0)).unwrap(); // 7 pid 3, open
    p.append(&make_batch(1, 1, -1, -1)).unwrap(); // 8
    assert_eq!(p.last_stable_offset(), 7);
    assert_eq!(p.high_watermark(), 9);

    let r = p.read_committed(0, 1 << 20).unwrap();
    assert_eq!(r.last_stable_offset, 7);
    assert_eq!(r.high_watermark, 9);
    let offs: Vec<i64> = batches(&r.records).iter().map(|b| b.0).collect();
    assert_eq!(offs, vec![0, 2, 3, 4, 5, 6]);
    assert_eq!(r.aborted, vec![aborted(1, 0, 3, 4)]);
    // read_uncommitted goes to the high watermark and lists nothing.
    let u = p.read(0, 1 << 20).unwrap();
    assert_eq!(batches(&u.records).len(), 8);
    assert!(u.aborted.is_empty());
    assert_eq!(u.last_stable_offset, 7);
    // Past the aborted transaction's marker: not listed.
    let r = p.read_committed(4, 1 << 20).unwrap();
    assert!(r.aborted.is_empty());
    assert_eq!(batches(&r.records)[0].0, 4);
    // A small fetch: one batch, and only the aborts overlapping it.
    let r = p.read_committed(2, 1).unwrap();
    assert_eq!(batches(&r.records), vec![(2, -1, false)]);
    assert_eq!(r.aborted, vec![aborted(1, 0, 3, 4)]);
    // At or past the LSO but within the high watermark: in range, no records.
    for off in [7, 8, 9] {
        let r = p.read_region_committed(off, 1 << 20).unwrap();
        assert!(r.region.is_none(), "offset {off}");
    }
    assert!(p.read_region_committed(10, 100).is_err());
    // Once pid 3 commits, everything is stable.
    p.append_marker(3, 0, true, 0).unwrap();
    let r = p.read_committed(7, 1 << 20).unwrap();
    assert_eq!(
        batches(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
}

#[test]
fn read_committed_stops_at_the_lso_in_an_earlier_segment() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    });
    let p = open(dir.path(), c, None);
    p.append(&make_batch(1, 1, -1, -1)).unwrap();
    p.append(&txn_batch(1, 4, 0, 0)).unwrap(); // 1: open
    for _ in 0..6 {
        p.append(&make_batch(1, 1, -1, -1)).unwrap();
    }
    assert!(files_with(dir.path(), "log").len() > 2);
    assert_eq!(p.last_stable_offset(), 1);
    let r = p.read_committed(0, 1 << 20).unwrap();
    assert_eq!(batches(&r.records), vec![(0, -1, false)]);
    assert!(p.read_committed(1, 1 << 20).unwrap().records.is_empty());
    assert!(p.read_committed(5, 1 << 20).unwrap().records.is_empty());
    p.append_marker(4, 0, false, 0).unwrap();
    // The abort is listed for a read that starts in the first segment, across segments.
    let r = p.read_committed(1, 1 << 20).unwrap();
    assert_eq!(r.aborted.len(), 1);
    assert_eq!(
        (r.aborted[0].first_offset, r.aborted[0].last_offset),
        (1, 8)
    );
}

#[test]
fn old_epochs_are_fenced_and_a_bumped_epoch_restarts_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&txn_batch(2, 9, 3, 0)).unwrap();
    assert!(matches!(
        p.append_marker(9, 2, false, 0),
        Err(AppendError::Fenced)
    ));
    // A zombie coordinator (older coordinator epoch) is fenced too, after a newer wrote.
    p.append_marker(9, 3, true, 5).unwrap();
    assert!(matches!(
        p.append_marker(9, 3, true, 4),
        Err(AppendError::Fenced)
    ));
    // Transaction version 2: the marker carries the bumped epoch; the producer then
    // starts again at sequence 0 with it.
    p.append(&txn_batch(1, 9, 3, 2)).unwrap();
    p.append_marker(9, 4, true, 5).unwrap();
    assert!(matches!(
        p.append(&txn_batch(1, 9, 3, 3)),
        Err(AppendError::Fenced)
    ));
    assert!(matches!(
        p.append(&txn_batch(1, 9, 4, 3)),
        Err(AppendError::OutOfOrder(0))
    ));
    p.append(&txn_batch(1, 9, 4, 0)).unwrap();
    let info = p.producer_infos()[0];
    assert_eq!(
        (
            info.producer_epoch,
            info.last_sequence,
            info.coordinator_epoch
        ),
        (4, 0, 5)
    );
    assert!(info.current_txn_start_offset > 0);
    // The epoch learnt from the marker survives a restart, even with no batch left at it.
    p.append_marker(9, 5, false, 5).unwrap();
    p.flush_all().unwrap();
    let (_, end, _, rp) = p.offsets();
    drop(p);
    let p = open(dir.path(), cfg(), Some(rp));
    assert_eq!(p.offsets().1, end);
    assert!(matches!(
        p.append(&txn_batch(1, 9, 4, 1)),
        Err(AppendError::Fenced)
    ));
    p.append(&txn_batch(1, 9, 5, 0)).unwrap();
}

/// Write: an aborted txn (pid 1), a committed one (pid 2), and an open one (pid 3).
fn write_mix(p: &Partition) {
    p.append(&txn_batch(2, 1, 0, 0)).unwrap(); // 0..=1
    p.append(&txn_batch(1, 2, 0, 0)).unwrap(); // 2
    p.append_marker(1, 0, false, 0).unwrap(); // 3
    p.append_marker(2, 0, true, 0).unwrap(); // 4
    p.append(&txn_batch(1, 3, 0, 0)).unwrap(); // 5
    p.append(&make_batch(1, 1, -1, -1)).unwrap(); // 6
}

fn check_mix(p: &Partition) {
    assert_eq!(p.offsets().1, 7);
    assert_eq!(p.last_stable_offset(), 5);
    // pid 2's transaction was still open when pid 1's ended.
    assert_eq!(p.aborted_txns(0, 100).unwrap(), vec![aborted(1, 0, 3, 2)]);
    let infos = p.producer_infos();
    let open: Vec<(i64, i64)> = infos
        .iter()
        .map(|i| (i.producer_id, i.current_txn_start_offset))
        .collect();
    assert_eq!(open, vec![(1, -1), (2, -1), (3, 5)]);
    // The open transaction still ends normally.
    p.append_marker(3, 0, true, 0).unwrap();
    assert_eq!(p.last_stable_offset(), 8);
}

#[test]
fn transactions_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    write_mix(&p);
    let (rp, _) = p.flush_all().unwrap();
    assert_eq!(rp, 7);
    drop(p);
    let p = open(dir.path(), cfg(), Some(rp));
    check_mix(&p);
}

#[test]
fn transactions_survive_a_crash() {
    for txnindex in ["kept", "deleted", "stale"] {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), cfg(), None);
        p.append(&make_batch(1, 1, -1, -1)).unwrap();
        // The last checkpoint was taken here; everything after is replayed from the log.
        let (rp, _) = p.flush_all().unwrap();
        assert_eq!(rp, 1);
        p.append(&txn_batch(2, 1, 0, 0)).unwrap(); // 1..=2
        p.append(&txn_batch(1, 2, 0, 0)).unwrap(); // 3
        p.append_marker(1, 0, false, 0).unwrap(); // 4
        p.append_marker(2, 0, true, 0).unwrap(); // 5
        p.append(&txn_batch(1, 3, 0, 0)).unwrap(); // 6
        p.append(&make_batch(1, 1, -1, -1)).unwrap(); // 7
        let ix = files_with(dir.path(), "txnindex");
        assert_eq!(ix.len(), 1);
        match txnindex {
            "deleted" => std::fs::remove_file(&ix[0]).unwrap(),
            // An entry the crash left that the log does not back.
            "stale" => {
                let mut b = std::fs::read(&ix[0]).unwrap();
                let mut extra = b.clone();
                extra[10..18].copy_from_slice(&6i64.to_be_bytes());
                extra[18..26].copy_from_slice(&7i64.to_be_bytes());
                b.extend_from_slice(&extra);
                std::fs::write(&ix[0], b).unwrap();
            }
            _ => {}
        }
        drop(p); // no flush: a crash
        let p = open(dir.path(), cfg(), Some(rp));
        assert_eq!(p.offsets().1, 8, "{txnindex}");
        assert_eq!(p.last_stable_offset(), 6, "{txnindex}");
        assert_eq!(
            p.aborted_txns(0, 100).unwrap(),
            vec![aborted(1, 1, 4, 3)],
            "{txnindex}"
        );
        let r = p.read_committed(0, 1 << 20).unwrap();
        assert_eq!(batches(&r.records).len(), 5, "{txnindex}");
        assert_eq!(r.aborted.len(), 1);
    }
}

#[test]
fn a_snapshot_ahead_of_the_recovery_point_is_not_replayed_twice() {
    // The checkpoint file can lag the snapshot (a crash between the two writes): the
    // replay starts at the snapshot, so the transaction ended before it is not reopened.
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    write_mix(&p);
    p.flush_all().unwrap();
    drop(p);
    let p = open(dir.path(), cfg(), Some(0));
    check_mix(&p);
}

#[test]
fn a_torn_tail_takes_its_transaction_state_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&txn_batch(1, 1, 0, 0)).unwrap(); // 0
    let (rp, _) = p.flush_all().unwrap();
    let good = p.size_bytes();
    p.append(&txn_batch(1, 2, 0, 0)).unwrap(); // 1: opens pid 2
    p.append_marker(1, 0, false, 0).unwrap(); // 2: aborts pid 1
    drop(p);
    // The crash tore the last two batches: only part of the first survived.
    let log = files_with(dir.path(), "log").remove(0);
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(good + 30).unwrap();
    drop(f);
    let p = open(dir.path(), cfg(), Some(rp));
    assert_eq!(p.offsets().1, 1);
    assert!(p.aborted_txns(0, 100).unwrap().is_empty());
    assert_eq!(p.last_stable_offset(), 0);
    let infos = p.producer_infos();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].current_txn_start_offset, 0);
    for ix in files_with(dir.path(), "txnindex") {
        assert_eq!(std::fs::metadata(ix).unwrap().len(), 0);
    }
}

#[test]
fn deleted_segments_take_their_txn_index_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(LogConfig {
        segment_bytes: 150,
        ..LogConfig::default()
    });
    let p = open(dir.path(), c, None);
    p.append(&txn_batch(1, 1, 0, 0)).unwrap();
    p.append_marker(1, 0, false, 0).unwrap();
    for _ in 0..4 {
        p.append(&make_batch(1, 1, -1, -1)).unwrap();
    }
    assert_eq!(files_with(dir.path(), "txnindex").len(), 1);
    let hw = p.high_watermark();
    p.delete_records(hw).unwrap();
    assert!(files_with(dir.path(), "txnindex").is_empty());
    assert!(p.aborted_txns(0, 100).unwrap().is_empty());
}

#[test]
fn flush_messages_one_makes_markers_and_entries_durable() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    });
    let p = open(dir.path(), c, None);
    p.append(&txn_batch(1, 1, 0, 0)).unwrap();
    let off = p.append_marker(1, 0, false, 0).unwrap();
    let (_, end, hw, rp) = p.offsets();
    assert_eq!((end, hw, rp), (off + 1, off + 1, off + 1));
    assert_eq!(p.last_stable_offset(), off + 1);
}

#[test]
fn a_plain_batch_from_a_producer_with_an_open_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), cfg(), None);
    p.append(&txn_batch(2, 11, 0, 0)).unwrap();
    // Kafka's ProducerAppendInfo: INVALID_TXN_STATE, nothing written.
    assert!(matches!(
        p.append(&make_batch(1, 1, 11, 2)),
        Err(AppendError::InvalidTxnState)
    ));
    assert_eq!(p.offsets().1, 2);
    // Once the transaction ends, the producer may write outside one again.
    p.append_marker(11, 0, true, 0).unwrap();
    p.append(&make_batch(1, 1, 11, 2)).unwrap();
}
