//! State-machine tests with explicit times: no clocks, no sleeps.

use bytes::Bytes;

use super::state::{Group, GroupState, JoinParams, Reply};
use crate::api::Code;

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

#[test]
fn two_members_join_sync_and_rebalance_on_leave() {
    let mut g = Group::new("g", 0);
    let (r1, m1) = join_new(&mut g, 0);
    // Alone: the join completes at once (no initial delay here).
    let j1 = ready(r1);
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

    // A second member triggers a rebalance; the first learns by heartbeat and rejoins.
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
    let (r, m) = join_new(&mut g, 0);
    ready(r);
    ready(g.sync(&m, None, 1, None, None, vec![], 0));
    g.tick(5_000);
    assert_eq!(g.state, GroupState::Stable);
    g.tick(10_001);
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

#[test]
fn static_member_rejoins_without_rebalance_and_old_id_is_fenced() {
    let mut g = Group::new("g", 0);
    let leader = ready(g.join(params("", Some("a")), 0, 0));
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
    let (r, _) = join_new(&mut g, 0);
    ready(r);
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
