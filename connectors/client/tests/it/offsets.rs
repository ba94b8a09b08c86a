//! Coordinator lookup, simple (generation -1) commits and reading them back.

use sluice_client::{CommitOffset, Generation, ResponseError};

use crate::harness::{unique, Broker};

#[tokio::test]
async fn commit_then_fetch_committed() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("commits");
    let group = unique("g");
    client.create_topic(&topic, 3, 1, &[]).await.unwrap();

    let coordinator = client.find_coordinator(&group).await.unwrap();
    assert_eq!(
        coordinator.addr(),
        broker.addr(),
        "single node coordinates every group"
    );

    let asked = [(topic.clone(), 0), (topic.clone(), 1), (topic.clone(), 2)];
    let before = client.fetch_committed(&group, &asked).await.unwrap();
    assert!(before.iter().all(|c| c.offset.is_none()), "{before:?}");

    let mut first = CommitOffset::new(&topic, 0, 42);
    first.metadata = Some("batch-7".to_owned());
    client
        .commit_offsets(
            &group,
            &Generation::simple(),
            &[first, CommitOffset::new(&topic, 2, 5)],
        )
        .await
        .unwrap();

    let after = client.fetch_committed(&group, &asked).await.unwrap();
    let got: Vec<(i32, Option<i64>, Option<String>)> = after
        .into_iter()
        .map(|c| (c.partition, c.offset, c.metadata))
        .collect();
    assert_eq!(got[0], (0, Some(42), Some("batch-7".to_owned())));
    assert_eq!((got[1].0, got[1].1), (1, None));
    assert_eq!((got[2].0, got[2].1), (2, Some(5)));

    // A later commit replaces the earlier one.
    client
        .commit_offsets(
            &group,
            &Generation::simple(),
            &[CommitOffset::new(&topic, 0, 50)],
        )
        .await
        .unwrap();
    let again = client
        .fetch_committed(&group, &[(topic.clone(), 0)])
        .await
        .unwrap();
    assert_eq!(again[0].offset, Some(50));
}

#[tokio::test]
async fn commit_with_a_made_up_generation_is_refused() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("badgen");
    let group = unique("g");
    client.create_topic(&topic, 1, 1, &[]).await.unwrap();
    let bogus = Generation {
        generation_id: 5,
        member_id: "nobody".to_owned(),
    };
    let err = client
        .commit_offsets(&group, &bogus, &[CommitOffset::new(&topic, 0, 1)])
        .await
        .unwrap_err();
    // Kafka 4's group coordinator answers GROUP_ID_NOT_FOUND (a commit with a generation
    // never creates a group); Kafka 3's answered ILLEGAL_GENERATION, as Sluice does. Either
    // way the error is typed and the commit is not stored.
    assert!(
        matches!(
            err.kafka_error(),
            Some(ResponseError::GroupIdNotFound | ResponseError::IllegalGeneration)
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&group), "{err}");
    let stored = client
        .fetch_committed(&group, &[(topic.clone(), 0)])
        .await
        .unwrap();
    assert_eq!(stored[0].offset, None);
}
