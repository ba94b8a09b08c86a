//! Group membership: two members split a 4-partition topic, one leaves, the other takes
//! everything; stale generations cannot commit.

use std::collections::BTreeSet;
use std::time::Duration;

use sluice_client::{Assignment, CommitOffset, GroupConfig, GroupMember, ResponseError};

use crate::harness::{unique, within, Broker};

const DEADLINE: Duration = Duration::from_secs(30);

fn config(group: &str, topic: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group, [topic]);
    c.session_timeout = Duration::from_secs(10);
    c.rebalance_timeout = Duration::from_secs(10);
    c.heartbeat_interval = Duration::from_millis(100);
    c
}

fn partitions(a: &Assignment, topic: &str) -> BTreeSet<i32> {
    a.get(topic).into_iter().flatten().copied().collect()
}

/// Waits for the heartbeat to report a rebalance, then rejoins.
async fn rejoin(member: &mut GroupMember, what: &str) -> sluice_client::Rebalance {
    within(DEADLINE, what, member.rebalance_needed()).await;
    within(DEADLINE, what, member.poll())
        .await
        .unwrap()
        .expect("a rebalance was flagged")
}

#[tokio::test]
async fn two_members_split_four_partitions_then_one_leaves() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("grp");
    let group = unique("g");
    client.create_topic(&topic, 4, 1, &[]).await.unwrap();
    let all: BTreeSet<i32> = (0..4).collect();

    let mut a = within(
        DEADLINE,
        "first join",
        client.join_group(config(&group, &topic)),
    )
    .await
    .unwrap();
    assert!(
        !a.member_id().is_empty(),
        "coordinator assigned a member id"
    );
    assert!(a.is_leader(), "the only member leads");
    assert_eq!(partitions(a.assignment(), &topic), all);
    assert!(!a.needs_rejoin());
    let first_generation = a.generation();

    // B's join blocks until A rejoins, which A does once its heartbeat hears of it.
    let client_b = broker.client().await;
    let config_b = config(&group, &topic);
    let join_b = tokio::spawn(async move { client_b.join_group(config_b).await });
    let change = rejoin(&mut a, "A to see B's join").await;
    let b = within(DEADLINE, "B's join", join_b).await.unwrap().unwrap();

    assert_eq!(
        partitions(&change.revoked, &topic),
        all,
        "eager: A gave up everything"
    );
    assert_eq!(change.assigned, *a.assignment());
    assert!(change.generation_id > first_generation.generation_id);
    assert_eq!(b.generation().generation_id, change.generation_id);
    assert_ne!(a.member_id(), b.member_id());
    assert_ne!(a.is_leader(), b.is_leader(), "exactly one leader");
    let pa = partitions(a.assignment(), &topic);
    let pb = partitions(b.assignment(), &topic);
    assert_eq!(
        (pa.len(), pb.len()),
        (2, 2),
        "range splits evenly: {pa:?} {pb:?}"
    );
    assert!(pa.is_disjoint(&pb), "{pa:?} {pb:?}");
    assert_eq!(pa.union(&pb).copied().collect::<BTreeSet<_>>(), all);

    // Members commit with their generation; the old generation is refused.
    a.commit(&[CommitOffset::new(&topic, *pa.first().unwrap(), 3)])
        .await
        .unwrap();
    let stale = client
        .commit_offsets(
            &group,
            &first_generation,
            &[CommitOffset::new(&topic, 0, 9)],
        )
        .await
        .unwrap_err();
    assert_eq!(
        stale.kafka_error(),
        Some(ResponseError::IllegalGeneration),
        "{stale}"
    );
    let committed = client
        .fetch_committed(&group, &[(topic.clone(), *pa.first().unwrap())])
        .await
        .unwrap();
    assert_eq!(committed[0].offset, Some(3));

    // B leaves; A is told to rejoin and ends up with every partition.
    within(DEADLINE, "B to leave", b.leave()).await.unwrap();
    let change = rejoin(&mut a, "A to see B leave").await;
    assert_eq!(partitions(&change.assigned, &topic), all);
    assert!(a.is_leader());
    assert_eq!(a.poll().await.unwrap(), None, "stable again");

    within(DEADLINE, "A to leave", a.leave()).await.unwrap();
}

#[tokio::test]
async fn changing_the_subscription_rejoins_with_the_new_topics() {
    let broker = Broker::start();
    let client = broker.client().await;
    let (t1, t2) = (unique("sub1"), unique("sub2"));
    let group = unique("g");
    client.create_topic(&t1, 1, 1, &[]).await.unwrap();
    client.create_topic(&t2, 2, 1, &[]).await.unwrap();

    let mut m = within(DEADLINE, "join", client.join_group(config(&group, &t1)))
        .await
        .unwrap();
    assert_eq!(m.assignment().keys().collect::<Vec<_>>(), vec![&t1]);
    m.set_topics(vec![t2.clone()]);
    assert!(m.needs_rejoin());
    let change = within(DEADLINE, "rejoin", m.poll()).await.unwrap().unwrap();
    assert_eq!(partitions(&change.revoked, &t1), BTreeSet::from([0]));
    assert_eq!(m.assignment().keys().collect::<Vec<_>>(), vec![&t2]);
    assert_eq!(partitions(m.assignment(), &t2), BTreeSet::from([0, 1]));
    within(DEADLINE, "leave", m.leave()).await.unwrap();
}

#[tokio::test]
async fn a_member_that_vanishes_is_expired_and_the_survivor_takes_over() {
    let broker = Broker::start();
    let client = broker.client().await;
    let topic = unique("expire");
    let group = unique("g");
    client.create_topic(&topic, 2, 1, &[]).await.unwrap();
    // Kafka's smallest allowed session timeout (group.min.session.timeout.ms).
    let short = |g: &str| {
        let mut c = config(g, &topic);
        c.session_timeout = Duration::from_secs(6);
        c
    };

    let mut a = within(DEADLINE, "A joins", client.join_group(short(&group)))
        .await
        .unwrap();
    let join_b = tokio::spawn({
        let client = client.clone();
        let c = short(&group);
        async move { client.join_group(c).await }
    });
    rejoin(&mut a, "A to see B's join").await;
    let b = within(DEADLINE, "B's join", join_b).await.unwrap().unwrap();
    assert_eq!(partitions(a.assignment(), &topic).len(), 1);
    assert_eq!(partitions(b.assignment(), &topic).len(), 1);

    // B stops heartbeating without leaving; after its session times out the coordinator
    // rebalances and A's heartbeat hears of it.
    drop(b);
    let change = rejoin(&mut a, "B's session to expire").await;
    assert_eq!(partitions(&change.assigned, &topic), BTreeSet::from([0, 1]));
    within(DEADLINE, "A to leave", a.leave()).await.unwrap();
}
