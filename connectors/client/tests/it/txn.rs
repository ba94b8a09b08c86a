//! Transactions: the transactional producer (commit, abort, offsets in a transaction,
//! fencing, recovery of a transaction left open) and READ_COMMITTED reads (aborted records
//! dropped, markers skipped, the last stable offset as `Latest`).

use std::time::Duration;

use sluice_client::{
    Client, CommitOffset, Generation, IsolationLevel, OffsetSpec, ProduceRecord, TransactionConfig,
};

use crate::harness::{eventually, unique, Broker};

const WAIT: Duration = Duration::from_millis(200);
const MAX_BYTES: i32 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(30);

fn records(prefix: &str, n: usize) -> Vec<ProduceRecord> {
    (0..n)
        .map(|i| ProduceRecord::new(format!("{prefix}{i}")))
        .collect()
}

/// Every record value of `topic`/0 from offset 0 up to the end at `isolation`, read until
/// `expected` values came back (or the deadline); also returns the final fetch position.
async fn read_all(
    client: &Client,
    topic: &str,
    isolation: IsolationLevel,
    expected: usize,
) -> (Vec<String>, i64) {
    eventually(DEADLINE, "records to become readable", || async {
        let mut values = Vec::new();
        let mut offset = 0;
        loop {
            let r = client
                .fetch_isolated(topic, 0, offset, MAX_BYTES, WAIT, isolation)
                .await
                .ok()?;
            for rec in &r.records {
                values.push(String::from_utf8(rec.value.clone()?.to_vec()).ok()?);
            }
            if r.next_offset == offset {
                break;
            }
            offset = r.next_offset;
        }
        (values.len() >= expected).then_some((values, offset))
    })
    .await
}

async fn new_topic(client: &Client, prefix: &str) -> String {
    let topic = unique(prefix);
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    topic
}

#[tokio::test]
async fn read_committed_skips_aborted_records_and_markers() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = new_topic(&client, "txn-rc").await;
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("txn-rc-id")))
        .await
        .unwrap();
    producer.begin().unwrap();
    producer
        .send(&topic, 0, &records("abort", 3))
        .await
        .unwrap();
    producer.abort().await.unwrap();
    producer.begin().unwrap();
    producer
        .send(&topic, 0, &records("commit", 2))
        .await
        .unwrap();
    producer.send(&topic, 0, &records("more", 1)).await.unwrap();
    producer.commit().await.unwrap();
    // A plain (non-transactional) record after both transactions.
    client
        .produce(&topic, 0, &records("plain", 1), &Default::default())
        .await
        .unwrap();

    // 3 aborted + marker, 3 committed + marker, 1 plain: offsets 0..=8.
    let (committed, end) = read_all(&client, &topic, IsolationLevel::ReadCommitted, 4).await;
    assert_eq!(committed, vec!["commit0", "commit1", "more0", "plain0"]);
    assert_eq!(
        end, 9,
        "the position moves past markers and aborted batches"
    );
    let (all, end) = read_all(&client, &topic, IsolationLevel::ReadUncommitted, 7).await;
    assert_eq!(
        all,
        vec!["abort0", "abort1", "abort2", "commit0", "commit1", "more0", "plain0"],
        "read_uncommitted returns aborted records, never markers"
    );
    assert_eq!(end, 9);
}

#[tokio::test]
async fn latest_at_read_committed_is_the_last_stable_offset() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = new_topic(&client, "txn-lso").await;
    client
        .produce(&topic, 0, &records("before", 2), &Default::default())
        .await
        .unwrap();
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("txn-lso-id")))
        .await
        .unwrap();
    producer.begin().unwrap();
    producer.send(&topic, 0, &records("open", 3)).await.unwrap();
    let tp = [(topic.clone(), 0)];
    let latest = |isolation| {
        let client = client.clone();
        let tp = tp.clone();
        async move {
            client
                .list_offsets_many_isolated(&tp, OffsetSpec::Latest, isolation)
                .await
                .pop()
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(latest(IsolationLevel::ReadUncommitted).await, Some(5));
    assert_eq!(
        latest(IsolationLevel::ReadCommitted).await,
        Some(2),
        "the open transaction holds the LSO at its first offset"
    );
    let r = client
        .fetch_isolated(&topic, 0, 0, MAX_BYTES, WAIT, IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    assert_eq!(r.records.len(), 2, "nothing past the LSO is returned");
    assert_eq!(r.last_stable_offset, 2);
    producer.commit().await.unwrap();
    eventually(DEADLINE, "the LSO to pass the commit marker", || async {
        (latest(IsolationLevel::ReadCommitted).await == Some(6)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn offsets_sent_in_a_transaction_count_only_when_it_commits() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = new_topic(&client, "txn-offsets").await;
    let group = unique("txn-offsets-group");
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("txn-offsets-id")))
        .await
        .unwrap();
    let tp = [(topic.clone(), 0)];

    producer.begin().unwrap();
    producer.send(&topic, 0, &records("x", 1)).await.unwrap();
    producer
        .send_offsets_to_transaction(
            &[CommitOffset::new(&topic, 0, 11)],
            &group,
            &Generation::simple(),
        )
        .await
        .unwrap();
    producer.abort().await.unwrap();
    let committed = client.fetch_committed(&group, &tp).await.unwrap();
    assert_eq!(committed[0].offset, None, "aborted offsets are discarded");

    producer.begin().unwrap();
    producer
        .send_offsets_to_transaction(
            &[CommitOffset::new(&topic, 0, 42)],
            &group,
            &Generation::simple(),
        )
        .await
        .unwrap();
    producer.commit().await.unwrap();
    eventually(
        DEADLINE,
        "the transactional offset to be committed",
        || async {
            let c = client.fetch_committed(&group, &tp).await.ok()?;
            (c[0].offset == Some(42)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = new_topic(&client, "txn-fence").await;
    let id = unique("txn-fence-id");
    let mut old = client
        .transactional_producer(TransactionConfig::new(&id))
        .await
        .unwrap();
    old.begin().unwrap();
    old.send(&topic, 0, &records("zombie", 2)).await.unwrap();

    // A restart: the same transactional id, while the old transaction is still open.
    let mut new = client
        .transactional_producer(TransactionConfig::new(&id))
        .await
        .unwrap();
    let (old_pid, old_epoch) = old.producer_id_and_epoch();
    let (new_pid, new_epoch) = new.producer_id_and_epoch();
    assert!(
        new_pid != old_pid || new_epoch > old_epoch,
        "a new epoch (or id) fences the old producer"
    );
    new.begin().unwrap();
    new.send(&topic, 0, &records("live", 1)).await.unwrap();
    new.commit().await.unwrap();

    let err = match old.send(&topic, 0, &records("late", 1)).await {
        Ok(_) => old.commit().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(err.is_fenced(), "the old producer is fenced: {err}");
    assert!(err.is_fatal_for_producer(), "{err}");
    let again = old.abort().await.unwrap_err();
    assert!(
        again.is_fenced(),
        "a fenced producer stays unusable: {again}"
    );

    let (committed, _) = read_all(&client, &topic, IsolationLevel::ReadCommitted, 1).await;
    assert_eq!(
        committed,
        vec!["live0"],
        "the zombie's open transaction was aborted"
    );
}

#[tokio::test]
async fn state_errors_name_what_is_wrong() {
    let broker = Broker::start();
    let client = broker.client().await;
    let mut producer = client
        .transactional_producer(TransactionConfig::new(unique("txn-state-id")))
        .await
        .unwrap();
    let err = producer.commit().await.unwrap_err();
    assert!(err.to_string().contains("no transaction is open"), "{err}");
    producer.begin().unwrap();
    let err = producer.begin().unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");
    // A transaction that wrote nothing commits without a request.
    producer.commit().await.unwrap();
}
