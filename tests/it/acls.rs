//! ACLs over the wire: the ACL APIs' answers for bad bindings and filters (Kafka's
//! INVALID_REQUEST), SECURITY_DISABLED without an authorizer, and the error codes a refused
//! Produce, Fetch, Metadata, JoinGroup, InitProducerId and DescribeAcls get. Every client
//! here is `User:ANONYMOUS` (PLAINTEXT); the broker allows everyone where no ACL applies.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice::config::Config;
use sluice::testing::TestBroker;

use crate::client::{batch, Client};
use crate::fetch::{create, produce};

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TXN_ID: i8 = 5;
const LITERAL: i8 = 3;
const ALLOW: i8 = 3;
const DENY: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn authorizing() -> Config {
    let mut c = Config::default();
    c.security.set(
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    );
    c.security.set("allow.everyone.if.no.acl.found", "true");
    c
}

fn binding(
    rt: i8,
    name: &str,
    pattern: i8,
    who: &str,
    op: i8,
    perm: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(who))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(perm)
}

fn create_acls(c: &mut Client, bindings: Vec<create_acls_request::AclCreation>) -> Vec<i16> {
    let req = CreateAclsRequest::default().with_creations(bindings);
    let ResponseKind::CreateAcls(r) = c.call(ApiKey::CreateAcls, 3, RequestKind::CreateAcls(req))
    else {
        panic!()
    };
    r.results.iter().map(|r| r.error_code).collect()
}

fn describe_acls(c: &mut Client, rt: i8, pattern: i8) -> DescribeAclsResponse {
    let req = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(rt)
        .with_pattern_type_filter(pattern)
        .with_operation(1)
        .with_permission_type(1);
    let ResponseKind::DescribeAcls(r) =
        c.call(ApiKey::DescribeAcls, 3, RequestKind::DescribeAcls(req))
    else {
        panic!()
    };
    r
}

fn produce_code(c: &mut Client, topic: &str) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&[b"x"]))),
            ])]);
    let ResponseKind::Produce(r) = c.call(ApiKey::Produce, 9, RequestKind::Produce(req)) else {
        panic!()
    };
    r.responses[0].partition_responses[0].error_code
}

fn metadata(c: &mut Client, topics: Option<&[&str]>) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(topics.map(|ts| {
        ts.iter()
            .map(|t| {
                metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(t))))
            })
            .collect()
    }));
    let ResponseKind::Metadata(r) = c.call(ApiKey::Metadata, 12, RequestKind::Metadata(req)) else {
        panic!()
    };
    r
}

#[test]
fn without_an_authorizer_the_acl_apis_answer_security_disabled() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    let codes = create_acls(
        &mut c,
        vec![binding(TOPIC, "t", LITERAL, "User:bob", READ, ALLOW)],
    );
    assert_eq!(codes, vec![54], "SECURITY_DISABLED");
    assert_eq!(describe_acls(&mut c, 1, 1).error_code, 54);
}

#[test]
fn bad_bindings_and_filters_get_invalid_request() {
    let b = TestBroker::start_with(authorizing());
    let mut c = Client::connect(b.addr);
    let codes = create_acls(
        &mut c,
        vec![
            binding(1, "t", LITERAL, "User:bob", READ, ALLOW),
            binding(TOPIC, "t", 2, "User:bob", READ, ALLOW),
            binding(TOPIC, "t", LITERAL, "User:bob", 1, ALLOW),
            binding(TOPIC, "t", LITERAL, "User:bob", READ, 1),
            binding(TOPIC, "", LITERAL, "User:bob", READ, ALLOW),
            binding(CLUSTER, "other", LITERAL, "User:bob", READ, ALLOW),
            binding(TOPIC, "t", LITERAL, "User:bob", READ, ALLOW),
        ],
    );
    assert_eq!(codes, vec![42, 42, 42, 42, 42, 42, 0]);
    assert_eq!(describe_acls(&mut c, 0, 1).error_code, 42, "UNKNOWN filter");
    let all = describe_acls(&mut c, 1, 1);
    assert_eq!(all.error_code, 0);
    assert_eq!(all.resources.len(), 1);
    assert_eq!(all.resources[0].resource_name.as_str(), "t");
}

#[test]
fn refusals_carry_kafkas_error_codes() {
    let b = TestBroker::start_with(authorizing());
    let mut c = Client::connect(b.addr);
    create(&mut c, "locked", 1);
    create(&mut c, "open", 1);
    produce(&mut c, "locked", 0, batch(&[b"before"]));
    let codes = create_acls(
        &mut c,
        vec![
            binding(TOPIC, "locked", LITERAL, "User:bob", WRITE, ALLOW),
            binding(GROUP, "g", LITERAL, "User:bob", READ, ALLOW),
            binding(TXN_ID, "tx", LITERAL, "User:bob", WRITE, ALLOW),
        ],
    );
    assert_eq!(codes, vec![0, 0, 0]);

    assert_eq!(
        produce_code(&mut c, "locked"),
        29,
        "TOPIC_AUTHORIZATION_FAILED"
    );
    assert_eq!(produce_code(&mut c, "open"), 0);
    let f = crate::fetch::fetch(&mut c, "locked", 0, 0, 1 << 20);
    assert_eq!(f.error_code, 29);

    let all = metadata(&mut c, None);
    let names: Vec<_> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert!(names.contains(&"open".to_string()), "{names:?}");
    assert!(!names.contains(&"locked".to_string()), "{names:?}");
    let named = metadata(&mut c, Some(&["locked"]));
    assert_eq!(named.topics[0].error_code, 29);
    assert!(named.topics[0].partitions.is_empty());

    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))]);
    let ResponseKind::JoinGroup(r) = c.call(ApiKey::JoinGroup, 9, RequestKind::JoinGroup(join))
    else {
        panic!()
    };
    assert_eq!(r.error_code, 30, "GROUP_AUTHORIZATION_FAILED");

    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("tx"))))
        .with_transaction_timeout_ms(10_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(r) =
        c.call(ApiKey::InitProducerId, 5, RequestKind::InitProducerId(init))
    else {
        panic!()
    };
    assert_eq!(r.error_code, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED");

    // Deleting bob's topic ACL opens the topic again (no ACL left on it).
    let del = DeleteAclsRequest::default().with_filters(vec![
        delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("locked")))
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    ]);
    let ResponseKind::DeleteAcls(r) = c.call(ApiKey::DeleteAcls, 3, RequestKind::DeleteAcls(del))
    else {
        panic!()
    };
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    assert_eq!(produce_code(&mut c, "locked"), 0);

    // A DENY of DESCRIBE on the cluster: listing ACLs is refused, and (the cluster now
    // having an ACL) so is changing them.
    let codes = create_acls(
        &mut c,
        vec![binding(
            CLUSTER,
            "kafka-cluster",
            LITERAL,
            "User:ANONYMOUS",
            DESCRIBE,
            DENY,
        )],
    );
    assert_eq!(codes, vec![0]);
    assert_eq!(
        describe_acls(&mut c, 1, 1).error_code,
        31,
        "CLUSTER_AUTHORIZATION_FAILED"
    );
    let codes = create_acls(
        &mut c,
        vec![binding(TOPIC, "x", LITERAL, "User:bob", READ, ALLOW)],
    );
    assert_eq!(codes, vec![31]);
}
