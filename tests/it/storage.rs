//! Data survives a clean restart; topic ids are stable.

use kafka_protocol::messages::*;
use sluice::config::Config;
use sluice::testing::TestBroker;

use crate::client::{batch, values, Client};
use crate::fetch::{create, fetch, produce};

#[test]
fn data_and_topic_ids_survive_restart() {
    let b = TestBroker::start();
    let mut c = Client::connect(b.addr);
    create(&mut c, "keep", 1);
    produce(&mut c, "keep", 0, batch(&[b"one", b"two"]));
    let ResponseKind::Metadata(m1) = c.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!()
    };
    drop(c);
    let b = b.restart(Config::default());
    let mut c = Client::connect(b.addr);
    let ResponseKind::Metadata(m2) = c.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!()
    };
    assert_eq!(m1.topics[0].topic_id, m2.topics[0].topic_id);
    assert_eq!(m1.cluster_id, m2.cluster_id);
    assert_eq!(produce(&mut c, "keep", 0, batch(&[b"three"])), 2);
    let vals = values(fetch(&mut c, "keep", 0, 0, 1 << 20).records.unwrap());
    let got: Vec<&[u8]> = vals.iter().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(got, vec![&b"one"[..], b"two", b"three"]);
    assert!(b
        .data_dir()
        .join("keep-0/00000000000000000000.log")
        .exists());
    assert!(b
        .data_dir()
        .join("recovery-point-offset-checkpoint")
        .exists());
}
