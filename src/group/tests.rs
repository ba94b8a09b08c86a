//! State-machine tests with explicit times: no clocks, no sleeps.

use bytes::Bytes;

use super::state::{Group, GroupState, JoinParams, Reply, MIN_INITIAL_WAIT_MS};
use kafka_protocol::error::ResponseError as Code;

fn params(member_id: &str, instance: Option<&str>) -> JoinParams {
    JoinParams {
        member_id: member_id.into(),
        instance_id: instance.map(String::from),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
    }
}

fn ready<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Ready(t) => t,
        Reply::Wait(mut rx) => rx.try_recv().expect("answer should be there"),
    }
}

/// Join with MEMBER_ID_REQUIRED then rejoin; returns the waiting receiver and member id.
fn join_new(
    g: &mut Group,
    now: i64,
) -> (Reply<kafka_protocol::messages::JoinGroupResponse>, String) {
    let first = ready(g.join(params("", None), now, 0));
    assert_eq!(first.error_code, Code::MemberIdRequired.code());
    let id = first.member_id.to_string();
    (g.join(params(&id, None), now, 0), id)
}

/// The first member of a new group (delay 0), once the timer has run.
fn first_member(g: &mut Group) -> (kafka_protocol::messages::JoinGroupResponse, String) {
    let (r, id) = join_new(g, 0);
    g.tick(MIN_INITIAL_WAIT_MS);
    (ready(r), id)
}

#[test]
fn min_initial_wait_is_one_timer_tick() {
    assert_eq!(u64::try_from(MIN_INITIAL_WAIT_MS), Ok(super::TICK_MS));
}

#[test]
fn two_members_join_sync_and_rebalance_on_leave() {
    let mut g = Group::new("g", 0);
    // Alone: the join completes on the timer's first turn (no initial delay here).
    let (j1, m1) = first_member(&mut g);
    assert_eq!(j1.generation_id, 1);
    assert_eq!(j1.leader.as_str(), m1);
    assert_eq!(j1.members.len(), 1);
    let s = ready(g.sync(
        &m1,
        None,
        1,
        None,
        None,
        vec![(m1.clone(), Bytes::from_static(b"a1"))],
        0,
    ));
    assert_eq!(s.assignment.as_ref(), b"a1");
    assert_eq!(g.state, GroupState::Stable);

    // A second member triggers a rebalance; the first learns by heartbeat and rejoins. The
    // group is not new, so the join completes as soon as both are in.
    let (r2, m2) = join_new(&mut g, 10);
    assert!(matches!(r2, Reply::Wait(_)));
    assert_eq!(
        g.heartbeat(&m1, None, 1, 10),
        Err(Code::RebalanceInProgress)
    );
    let r1 = g.join(params(&m1, None), 20, 0);
    let (j1, j2) = (ready(r1), ready(r2));
    assert_eq!(j1.generation_id, 2);
    assert_eq!(j2.generation_id, 2);
    assert_eq!(j1.members.len(), 2, "leader sees everyone");
    assert!(j2.members.is_empty());
    let r2 = g.sync(&m2, None, 2, None, None, vec![], 20);
    assert!(matches!(r2, Reply::Wait(_)));
    let s1 = ready(g.sync(
        &m1,
        None,
        2,
        Some("consumer"),
        Some("range"),
        vec![
            (m1.clone(), Bytes::from_static(b"x")),
            (m2.clone(), Bytes::from_static(b"y")),
        ],
        20,
    ));
    assert_eq!(s1.assignment.as_ref(), b"x");
    assert_eq!(ready(r2).assignment.as_ref(), b"y");
    assert_eq!(g.heartbeat(&m2, None, 1, 30), Err(Code::IllegalGeneration));
    assert_eq!(g.heartbeat(&m2, None, 2, 30), Ok(()));

    assert!(g.remove_member(&m1, 40));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let j2 = ready(g.join(params(&m2, None), 41, 0));
    assert_eq!(j2.generation_id, 3);
    assert_eq!(j2.leader.as_str(), m2);
}

#[test]
fn silent_member_expires_and_group_empties() {
    let mut g = Group::new("g", 0);
    let (_, m) = first_member(&mut g);
    ready(g.sync(&m, None, 1, None, None, vec![], 0));
    g.tick(5_000);
    assert_eq!(g.state, GroupState::Stable);
    // The session started when the join completed.
    g.tick(MIN_INITIAL_WAIT_MS + 10_001);
    assert!(g.members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.generation, 2);
}

#[test]
fn initial_delay_waits_for_more_members() {
    let mut g = Group::new("g", 0);
    let first = ready(g.join(params("", None), 0, 3000));
    let id = first.member_id.to_string();
    let r = g.join(params(&id, None), 0, 3000);
    let Reply::Wait(mut rx) = r else {
        panic!("should wait")
    };
    g.tick(1000);
    assert!(rx.try_recv().is_err(), "still inside the initial delay");
    g.tick(3001);
    assert_eq!(rx.try_recv().unwrap().generation_id, 1);
}

/// Joins a new member (MEMBER_ID_REQUIRED, then with its id) at `now` with `delay`, with a
/// session timeout long enough for any wait here.
fn join_with_delay(
    g: &mut Group,
    now: i64,
    delay: i64,
) -> (
    tokio::sync::oneshot::Receiver<kafka_protocol::messages::JoinGroupResponse>,
    String,
) {
    let long = |id: &str| JoinParams {
        session_timeout_ms: 60_000,
        ..params(id, None)
    };
    let first = ready(g.join(long(""), now, delay));
    assert_eq!(first.error_code, Code::MemberIdRequired.code());
    let id = first.member_id.to_string();
    match g.join(long(&id), now, delay) {
        Reply::Wait(rx) => (rx, id),
        Reply::Ready(r) => panic!("a new member must wait for the join phase: {r:?}"),
    }
}

/// Kafka at `group.initial.rebalance.delay.ms = 0` still leaves the first join to its timer,
/// so a member that joins before the timer runs is in generation 1 too; here the timer waits
/// at least one tick.
#[test]
fn zero_delay_first_join_takes_members_arriving_within_a_tick() {
    let mut g = Group::new("g", 0);
    let (mut ra, a) = join_with_delay(&mut g, 0, 0);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    g.tick(MIN_INITIAL_WAIT_MS - 1);
    assert!(
        ra.try_recv().is_err(),
        "the first join is left to the timer"
    );
    let (mut rb, b) = join_with_delay(&mut g, MIN_INITIAL_WAIT_MS - 1, 0);
    // b arrived during the wait: one more wait, as Kafka extends it.
    g.tick(MIN_INITIAL_WAIT_MS);
    assert!(ra.try_recv().is_err() && rb.try_recv().is_err());
    g.tick(2 * MIN_INITIAL_WAIT_MS);
    let (ja, jb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    let leader = if ja.leader.as_str() == a { &ja } else { &jb };
    assert_eq!(
        leader.members.len(),
        2,
        "one generation with both {a} and {b}"
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

/// Kafka's `tryCompleteInitialRebalanceElseSchedule`: each wait that saw a new member is
/// followed by another one, until the rebalance timeout (30 s here) minus the delay is used up.
#[test]
fn initial_delay_is_extended_while_members_keep_joining_up_to_the_rebalance_timeout() {
    let mut g = Group::new("g", 0);
    let (mut first, _) = join_with_delay(&mut g, 0, 3000);
    let mut rxs = Vec::new();
    let mut now = 0;
    // A new member in every wait: checks at 3 s, 6 s, ... The first wait leaves 27 s to
    // extend by, in waits of 3 s, so the check at 30 s completes the join.
    while first.try_recv().is_err() {
        let (rx, _) = join_with_delay(&mut g, now + 1, 3000);
        rxs.push(rx);
        now += 3000;
        g.tick(now);
        assert!(
            now <= 30_000,
            "the initial join was extended past the rebalance timeout"
        );
    }
    assert_eq!(now, 30_000);
    for mut rx in rxs {
        assert_eq!(rx.try_recv().unwrap().generation_id, 1);
    }
}

/// The initial join ends when its wait is over, whether or not a member that was given an id
/// with MEMBER_ID_REQUIRED has come back with it. That member stays pending: coming back later
/// lets it in (and starts the next rebalance), as in Kafka, instead of UNKNOWN_MEMBER_ID.
#[test]
fn pending_member_outlives_the_join_it_missed() {
    let mut g = Group::new("g", 0);
    let (mut ra, a) = join_with_delay(&mut g, 0, 3000);
    let pending = ready(g.join(params("", None), 1, 3000));
    assert_eq!(pending.error_code, Code::MemberIdRequired.code());
    g.tick(3000);
    let ja = ra.try_recv().unwrap();
    assert_eq!((ja.generation_id, ja.members.len()), (1, 1));
    let late = g.join(params(pending.member_id.as_str(), None), 3050, 3000);
    let Reply::Wait(mut rb) = late else {
        panic!("the pending member must be let in");
    };
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let ja = ready(g.join(params(&a, None), 3060, 3000));
    let jb = rb.try_recv().unwrap();
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.members.len(), 2);
}

#[test]
fn static_member_rejoins_without_rebalance_and_old_id_is_fenced() {
    let mut g = Group::new("g", 0);
    let leader = g.join(params("", Some("a")), 0, 0);
    g.tick(MIN_INITIAL_WAIT_MS);
    let leader = ready(leader);
    let la = leader.member_id.to_string();
    ready(g.sync(&la, Some("a"), 1, None, None, vec![], 0));
    let rb = g.join(params("", Some("b")), 1, 0);
    let ra = g.join(params(&la, Some("a")), 1, 0);
    let (ja, jb) = (ready(ra), ready(rb));
    let lb = jb.member_id.to_string();
    assert_eq!(ja.generation_id, 2);
    let follower = g.sync(&lb, Some("b"), 2, None, None, vec![], 1);
    ready(g.sync(
        &la,
        Some("a"),
        2,
        None,
        None,
        vec![
            (la.clone(), Bytes::from_static(b"A")),
            (lb.clone(), Bytes::from_static(b"B")),
        ],
        1,
    ));
    assert_eq!(ready(follower).assignment.as_ref(), b"B");
    // "b" restarts: same instance id, new member id, no rebalance.
    let again = ready(g.join(params("", Some("b")), 2, 0));
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, 2);
    assert_eq!(g.state, GroupState::Stable);
    let nb = again.member_id.to_string();
    assert_ne!(nb, lb);
    assert_eq!(
        ready(g.sync(&nb, Some("b"), 2, None, None, vec![], 2))
            .assignment
            .as_ref(),
        b"B"
    );
    assert_eq!(
        g.heartbeat(&lb, Some("b"), 2, 3),
        Err(Code::FencedInstanceId)
    );
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut g = Group::new("g", 0);
    first_member(&mut g);
    let mut p = params("", None);
    p.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        ready(g.join(p, 1, 0)).error_code,
        Code::InconsistentGroupProtocol.code()
    );
}

#[test]
fn offsets_of_long_empty_groups_expire() {
    use super::offsets::CommittedOffset;
    use super::Coordinator;
    use crate::log::{LogConfig, LogManager};
    let dir = tempfile::tempdir().unwrap();
    let logs = LogManager::open(dir.path(), LogConfig::default(), 1).unwrap();
    // Retention of one minute; the commits below are dated the epoch, so long past it.
    let c = Coordinator::open(&logs, 0, 60_000).unwrap();
    let old = CommittedOffset {
        offset: 5,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 0,
    };
    c.commit("idle", vec![(("t".into(), 0), old.clone())])
        .unwrap();
    let fresh = CommittedOffset {
        commit_timestamp: crate::log::partition::now_ms(),
        ..old
    };
    c.commit("busy", vec![(("t".into(), 0), fresh)]).unwrap();
    c.expire_offsets();
    assert!(c.offsets.get("idle", "t", 0).is_none(), "expired");
    assert_eq!(
        c.offsets.get("busy", "t", 0).map(|o| o.offset),
        Some(5),
        "recent commit kept"
    );
}
