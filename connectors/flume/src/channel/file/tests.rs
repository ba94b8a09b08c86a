//! File channel tests over a temp dir: commit/rollback semantics, recovery after a
//! simulated crash (the channel dropped without `stop`, so nothing is checkpointed or
//! flushed on the way out), torn tails, checkpoints, log file deletion, locking.

use std::path::Path;

use super::*;
use crate::channel::{put_all, Channel};

fn config(dir: &Path) -> FileConfig {
    FileConfig {
        checkpoint_dir: dir.join("checkpoint"),
        backup_checkpoint_dir: None,
        data_dirs: vec![dir.join("data")],
        capacity: 1000,
        transaction_capacity: 100,
        checkpoint_interval: Duration::from_secs(3600),
        max_file_size: DEFAULT_MAX_FILE_SIZE,
        minimum_required_space: FLOOR_MINIMUM_REQUIRED_SPACE,
        keep_alive: Duration::from_millis(0),
        checkpoint_on_close: true,
        fsync_per_transaction: true,
        fsync_interval: Duration::from_secs(5),
    }
}

async fn open(cfg: &FileConfig) -> FileChannel {
    let ch = FileChannel::new("c1", cfg.clone());
    ch.start().await.unwrap();
    ch
}

async fn put(ch: &FileChannel, bodies: &[&str]) {
    put_all(
        ch,
        bodies.iter().map(|b| Event::new(b.to_string())).collect(),
    )
    .await
    .unwrap();
}

/// Takes everything in one transaction, committing it.
async fn drain(ch: &FileChannel) -> Vec<String> {
    let mut tx = ch.begin();
    let mut out = Vec::new();
    while let Some(e) = tx.take().await.unwrap() {
        out.push(String::from_utf8(e.body.to_vec()).unwrap());
    }
    tx.commit().await.unwrap();
    out
}

fn logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log-"))
        .collect();
    v.sort_by_key(|p| {
        p.file_name().unwrap().to_str().unwrap()[4..]
            .parse::<u32>()
            .unwrap()
    });
    v
}

#[tokio::test]
async fn committed_events_survive_a_crash_and_uncommitted_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put(&ch, &["a", "b"]).await;
        let mut tx = ch.begin();
        tx.put(Event::new("never committed")).await.unwrap();
        // A take that is neither committed nor rolled back when the process dies.
        let mut take = ch.begin();
        assert_eq!(take.take().await.unwrap().unwrap().body, "a");
        // This commit's fsync also puts the records above on disk.
        put(&ch, &["c"]).await;
        ch.store.crash();
    }
    let ch = open(&cfg).await;
    assert_eq!(drain(&ch).await, ["a", "b", "c"]);
    assert_eq!(ch.counters().get("EventTakeSuccessCount"), 3);
    ch.stop().await;
    let ch = open(&cfg).await;
    assert!(drain(&ch).await.is_empty());
}

#[tokio::test]
async fn rollback_returns_takes_to_the_head_and_is_replayed_that_way() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put(&ch, &["a", "b", "c"]).await;
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        assert_eq!(tx.take().await.unwrap().unwrap().body, "b");
        tx.rollback().await.unwrap();
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        tx.commit().await.unwrap();
        assert_eq!(ch.len(), 2);
        ch.store.crash();
    }
    let ch = open(&cfg).await;
    assert_eq!(drain(&ch).await, ["b", "c"]);
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put(&ch, &["a", "b"]).await;
        // The last records are this take's TAKE and COMMIT.
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        tx.commit().await.unwrap();
        ch.store.crash();
    }
    let last = logs(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let ch = open(&cfg).await;
    // The commit of the take was torn, so "a" comes back (at least once); "b" is intact.
    assert_eq!(drain(&ch).await, ["a", "b"]);
    let now = std::fs::metadata(&last).unwrap().len();
    assert!(
        now < len - 3,
        "the torn commit record was cut off ({now} bytes, was {len})"
    );
}

#[tokio::test]
async fn replay_after_a_checkpoint_applies_only_later_records() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put(&ch, &["a", "b"]).await;
        // A transaction open across the checkpoint: one put before, one after.
        let mut open_tx = ch.begin();
        open_tx.put(Event::new("x1")).await.unwrap();
        ch.checkpoint().await.unwrap();
        open_tx.put(Event::new("x2")).await.unwrap();
        open_tx.commit().await.unwrap();
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        tx.commit().await.unwrap();
        put(&ch, &["c"]).await;
        ch.store.crash();
    }
    let ch = open(&cfg).await;
    assert_eq!(drain(&ch).await, ["b", "x1", "x2", "c"]);
}

#[tokio::test]
async fn a_damaged_checkpoint_falls_back_to_the_backup_then_to_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.backup_checkpoint_dir = Some(dir.path().join("backup"));
    {
        let ch = open(&cfg).await;
        put(&ch, &["a", "b"]).await;
        ch.stop().await;
    }
    let primary = dir.path().join("checkpoint").join("checkpoint");
    let mut bytes = std::fs::read(&primary).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&primary, &bytes).unwrap();
    {
        let ch = open(&cfg).await;
        let mut tx = ch.begin();
        assert_eq!(tx.take().await.unwrap().unwrap().body, "a");
        tx.commit().await.unwrap();
        ch.stop().await;
    }
    // Both checkpoints damaged: every log file still present is replayed.
    for d in ["checkpoint", "backup"] {
        std::fs::write(dir.path().join(d).join("checkpoint"), b"garbage").unwrap();
    }
    let ch = open(&cfg).await;
    let left = drain(&ch).await;
    assert!(left.contains(&"b".to_string()), "{left:?}");
}

#[tokio::test]
async fn old_log_files_are_deleted_once_nothing_points_into_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_file_size = 512;
    let ch = open(&cfg).await;
    for i in 0..40 {
        put(&ch, &[&format!("event number {i:04}")]).await;
    }
    let before = logs(dir.path()).len();
    assert!(
        before > 5,
        "small files should have rolled ({before} files)"
    );
    let first = logs(dir.path())[0].clone();
    // Take half: files holding only consumed events may go, the rest must stay.
    let mut tx = ch.begin();
    for _ in 0..20 {
        tx.take().await.unwrap().unwrap();
    }
    tx.commit().await.unwrap();
    ch.checkpoint().await.unwrap();
    assert!(
        !first.exists(),
        "{} should have been deleted",
        first.display()
    );
    ch.stop().await;
    let ch = open(&cfg).await;
    let rest = drain(&ch).await;
    assert_eq!(rest.len(), 20);
    assert_eq!(rest[0], "event number 0020");
    ch.checkpoint().await.unwrap();
    // Only the file being written (and maybe its predecessor) remain.
    assert!(logs(dir.path()).len() <= 2, "{:?}", logs(dir.path()));
}

#[tokio::test]
async fn a_second_channel_on_the_same_dirs_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let ch = open(&cfg).await;
    let other = FileChannel::new("c2", cfg.clone());
    let err = other.start().await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("in_use.lock") && msg.contains("in use"),
        "{msg}"
    );
    ch.stop().await;
    // Released on stop.
    let again = FileChannel::new("c3", cfg);
    again.start().await.unwrap();
}

#[tokio::test]
async fn capacity_and_transaction_capacity_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.capacity = 3;
    cfg.transaction_capacity = 2;
    let ch = open(&cfg).await;
    let mut tx = ch.begin();
    tx.put(Event::new("1")).await.unwrap();
    tx.put(Event::new("2")).await.unwrap();
    assert!(matches!(
        tx.put(Event::new("3")).await,
        Err(ChannelError::TransactionFull { .. })
    ));
    tx.commit().await.unwrap();
    put(&ch, &["3"]).await;
    let mut tx = ch.begin();
    assert!(matches!(
        tx.put(Event::new("4")).await,
        Err(ChannelError::Full { .. })
    ));
    tx.rollback().await.unwrap();
    // A rolled-back put gave its room back; a taken event keeps it until commit.
    let mut take = ch.begin();
    take.take().await.unwrap().unwrap();
    assert!(crate::channel::put_one(&ch, Event::new("4")).await.is_err());
    take.commit().await.unwrap();
    crate::channel::put_one(&ch, Event::new("4")).await.unwrap();
    assert_eq!(ch.len(), 3);
    assert_eq!(ch.counters().get("ChannelSize"), 3);
    assert_eq!(ch.counters().get("ChannelCapacity"), 3);
}

#[tokio::test]
async fn events_are_read_back_from_disk_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put_all(
            &ch,
            vec![Event::new("body")
                .with_header("h", "v")
                .with_header("key", "k")],
        )
        .await
        .unwrap();
        ch.stop().await;
    }
    // After a restart nothing is cached: this take reads the put record from the log.
    let ch = open(&cfg).await;
    let mut tx = ch.begin();
    let e = tx.take().await.unwrap().unwrap();
    assert_eq!(
        e,
        Event::new("body")
            .with_header("h", "v")
            .with_header("key", "k")
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_unreadable_record_is_dropped_not_a_poison_pill() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    {
        let ch = open(&cfg).await;
        put(&ch, &["first-event-body", "second"]).await;
        ch.stop().await;
    }
    // Damage the body of the first put (its bytes follow the 16-byte file header).
    let first = logs(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes
        .windows(16)
        .position(|w| w == b"first-event-body")
        .unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&first, &bytes).unwrap();
    let ch = open(&cfg).await;
    assert_eq!(drain(&ch).await, ["second"]);
}

#[test]
fn config_keys_and_checks() {
    let ctx = Context::from_pairs(
        "a1.channels.c1.",
        [
            ("checkpointDir", "/tmp/x/ck"),
            ("dataDirs", " /tmp/x/d1 , /tmp/x/d2,"),
            ("capacity", "-5"),
            ("maxFileSize", "99999999999"),
            ("minimumRequiredSpace", "5"),
        ],
    );
    let c = FileConfig::from_context("c1", &ctx).unwrap();
    assert_eq!(
        c.data_dirs,
        [PathBuf::from("/tmp/x/d1"), PathBuf::from("/tmp/x/d2")]
    );
    assert_eq!(c.capacity, DEFAULT_CAPACITY);
    assert_eq!(c.transaction_capacity, DEFAULT_TRANSACTION_CAPACITY);
    assert_eq!(c.max_file_size, DEFAULT_MAX_FILE_SIZE);
    assert_eq!(c.minimum_required_space, FLOOR_MINIMUM_REQUIRED_SPACE);
    assert_eq!(c.checkpoint_interval, Duration::from_secs(30));
    assert!(c.checkpoint_on_close);

    let ctx = Context::from_pairs(
        "a1.channels.c1.",
        [("capacity", "10"), ("transactionCapacity", "11")],
    );
    let err = FileConfig::from_context("c1", &ctx).unwrap_err();
    assert!(
        err.to_string()
            .contains("a1.channels.c1.transactionCapacity"),
        "{err}"
    );

    let ctx = Context::from_pairs("a1.channels.c1.", [("useDualCheckpoints", "true")]);
    let err = FileConfig::from_context("c1", &ctx).unwrap_err();
    assert!(err.to_string().contains("backupCheckpointDir"), "{err}");

    let ctx = Context::from_pairs(
        "a1.channels.c1.",
        [
            ("useDualCheckpoints", "true"),
            ("checkpointDir", "/a"),
            ("backupCheckpointDir", "/a"),
        ],
    );
    assert!(FileConfig::from_context("c1", &ctx).is_err());

    let ctx = Context::from_pairs("a1.channels.c1.", [("encryption.activeKey", "key-0")]);
    assert!(FileConfig::from_context("c1", &ctx).is_err());
}

#[tokio::test]
async fn polling_an_empty_channel_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let ch = open(&cfg).await;
    put(&ch, &["a"]).await;
    assert_eq!(drain(&ch).await, ["a"]);
    let file = logs(dir.path()).pop().unwrap();
    let before = std::fs::metadata(&file).unwrap().len();
    for _ in 0..10 {
        let mut tx = ch.begin();
        assert!(tx.take().await.unwrap().is_none());
        tx.commit().await.unwrap();
        let mut tx = ch.begin();
        assert!(tx.take().await.unwrap().is_none());
        tx.rollback().await.unwrap();
    }
    assert_eq!(std::fs::metadata(&file).unwrap().len(), before);
}
