//! Group coordinator error codes for bad input, and session expiry, over the wire.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::Config;
use sluice::testing::TestBroker;

use crate::client::Client;
use crate::fetch::create;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn config() -> Config {
    Config {
        group_initial_rebalance_delay_ms: 0,
        ..Config::default()
    }
}

fn join(c: &mut Client, group: &str, member: &str, session_ms: i32) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(60_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"\0\0"))]);
    let ResponseKind::JoinGroup(r) = c.call(ApiKey::JoinGroup, 9, RequestKind::JoinGroup(req))
    else {
        panic!()
    };
    r
}

/// Join with the member-id-required round trip; returns the completed join.
fn join_full(c: &mut Client, group: &str, session_ms: i32) -> JoinGroupResponse {
    let first = join(c, group, "", session_ms);
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    join(c, group, first.member_id.as_str(), session_ms)
}

fn sync(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    assign: Vec<(String, Bytes)>,
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_assignments(
            assign
                .into_iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(&m))
                        .with_assignment(a)
                })
                .collect(),
        );
    let ResponseKind::SyncGroup(r) = c.call(ApiKey::SyncGroup, 5, RequestKind::SyncGroup(req))
    else {
        panic!()
    };
    r
}

fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let ResponseKind::Heartbeat(r) = c.call(ApiKey::Heartbeat, 4, RequestKind::Heartbeat(req))
    else {
        panic!()
    };
    r.error_code
}

fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    metadata: &str,
) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)
                        .with_committed_metadata(Some(s(metadata))),
                ]),
        ]);
    let ResponseKind::OffsetCommit(r) =
        c.call(ApiKey::OffsetCommit, 9, RequestKind::OffsetCommit(req))
    else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

#[test]
fn bad_group_requests_get_kafkas_error_codes() {
    let b = TestBroker::start_with(config());
    let mut c = Client::connect(b.addr);
    create(&mut c, "gt", 1);
    // Unknown group / absent member.
    assert_eq!(
        heartbeat(&mut c, "nope", 1, "ghost"),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(sync(&mut c, "nope", 1, "ghost", vec![]).error_code, 25);
    assert_eq!(join(&mut c, "nope", "ghost", 10_000).error_code, 25);
    // Session timeout out of bounds.
    assert_eq!(
        join(&mut c, "g", "", 10).error_code,
        26,
        "INVALID_SESSION_TIMEOUT"
    );
    // A real member, then wrong generation and absent member.
    let j = join_full(&mut c, "g", 10_000);
    assert_eq!(j.error_code, 0);
    let me = j.member_id.to_string();
    assert_eq!(
        sync(
            &mut c,
            "g",
            j.generation_id,
            &me,
            vec![(me.clone(), Bytes::from_static(b"a"))]
        )
        .error_code,
        0
    );
    assert_eq!(
        heartbeat(&mut c, "g", j.generation_id + 1, &me),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(heartbeat(&mut c, "g", j.generation_id, "someone-else"), 25);
    assert_eq!(commit(&mut c, "g", j.generation_id + 5, &me, "gt", ""), 22);
    // Huge metadata, and a topic that does not exist.
    assert_eq!(
        commit(&mut c, "g", j.generation_id, &me, "gt", &"m".repeat(5000)),
        12,
        "OFFSET_METADATA_TOO_LARGE"
    );
    assert_eq!(
        commit(&mut c, "g", j.generation_id, &me, "no-such-topic", ""),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(commit(&mut c, "g", j.generation_id, &me, "gt", "ok"), 0);
    // A non-empty group cannot be deleted; an unknown one is not found.
    let req =
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g")), GroupId(s("nope"))]);
    let ResponseKind::DeleteGroups(r) =
        c.call(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(req))
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 68, "NON_EMPTY_GROUP");
    assert_eq!(r.results[1].error_code, 69, "GROUP_ID_NOT_FOUND");
    // The other group is unaffected by all of this.
    assert_eq!(heartbeat(&mut c, "g", j.generation_id, &me), 0);
}

#[test]
fn a_silent_member_is_expelled_and_its_partitions_move() {
    let b = TestBroker::start_with(config());
    let mut a = Client::connect(b.addr);
    let mut other = Client::connect(b.addr);
    let ja = join_full(&mut a, "exp", 6_000);
    let ma = ja.member_id.to_string();
    sync(
        &mut a,
        "exp",
        ja.generation_id,
        &ma,
        vec![(ma.clone(), Bytes::from_static(b"all"))],
    );
    // B joins; A never heartbeats or rejoins. The join completes once A's session (6 s,
    // the broker minimum) has run out: B leads generation 2 alone.
    let first = join(&mut other, "exp", "", 30_000);
    let jb = join(&mut other, "exp", first.member_id.as_str(), 30_000);
    assert_eq!(jb.error_code, 0);
    assert_eq!(jb.generation_id, ja.generation_id + 1);
    assert_eq!(jb.leader, jb.member_id);
    assert_eq!(jb.members.len(), 1, "A was expelled");
    assert_eq!(
        heartbeat(&mut a, "exp", ja.generation_id, &ma),
        25,
        "A is gone"
    );
}
