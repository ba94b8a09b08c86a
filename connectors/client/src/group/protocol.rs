//! The consumer embedded protocol: the subscription a member sends in JoinGroup and the
//! assignment the leader sends in SyncGroup. Both are `kafka-protocol` structs
//! (`ConsumerProtocolSubscription`, `ConsumerProtocolAssignment`) preceded by a 2-byte
//! version, as Kafka's Java `ConsumerProtocol` writes them. A version newer than ours is
//! read at ours (newer versions only append fields), as the Java client does.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedPartitions;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::client::topic_name;
use crate::group::assignor::Assignment;

/// JoinGroup `protocol_type` of Kafka consumers.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";
/// Kafka's name for the range assignor.
pub(crate) const RANGE: &str = "range";
/// Version written; 3 is what Kafka 3.x/4.x Java clients write.
const SUBSCRIPTION_VERSION: i16 = 3;
/// Version written; 3 is what Kafka 3.x/4.x Java clients write.
const ASSIGNMENT_VERSION: i16 = 3;
/// Newest versions `kafka-protocol` can read.
const MAX_READ_VERSION: i16 = 3;

/// Encodes a subscription: topics, plus the partitions owned and the generation they were
/// owned in (fields of v1/v2 that the cooperative and sticky assignors read).
pub fn encode_subscription(
    topics: &[String],
    owned: &Assignment,
    generation_id: i32,
) -> Result<Bytes, String> {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(
            owned
                .iter()
                .map(|(t, ps)| {
                    OwnedPartitions::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps.clone())
                })
                .collect(),
        )
        .with_generation_id(generation_id);
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    sub.encode(&mut buf, SUBSCRIPTION_VERSION)
        .map_err(|e| format!("cannot encode subscription: {e}"))?;
    Ok(buf.freeze())
}

fn read_version(buf: &mut Bytes, what: &str) -> Result<i16, String> {
    if buf.remaining() < 2 {
        return Err(format!(
            "{what} of {} bytes has no version",
            buf.remaining()
        ));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("{what} has negative version {version}"));
    }
    Ok(version.min(MAX_READ_VERSION))
}

/// Decodes a member's subscription; returns its topics.
pub fn decode_subscription(mut bytes: Bytes) -> Result<Vec<String>, String> {
    let version = read_version(&mut bytes, "subscription")?;
    let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| format!("cannot decode subscription v{version}: {e}"))?;
    Ok(sub.topics.iter().map(ToString::to_string).collect())
}

/// Encodes an assignment.
pub fn encode_assignment(assignment: &Assignment) -> Result<Bytes, String> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(t, ps)| {
                AssignedPartitions::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    a.encode(&mut buf, ASSIGNMENT_VERSION)
        .map_err(|e| format!("cannot encode assignment: {e}"))?;
    Ok(buf.freeze())
}

/// Decodes an assignment. Empty bytes are an empty assignment: Kafka sends that to members
/// the leader left out.
pub fn decode_assignment(mut bytes: Bytes) -> Result<Assignment, String> {
    if bytes.is_empty() {
        return Ok(Assignment::new());
    }
    let version = read_version(&mut bytes, "assignment")?;
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| format!("cannot decode assignment v{version}: {e}"))?;
    let mut out = Assignment::new();
    for tp in a.assigned_partitions {
        let parts = out.entry(tp.topic.0.to_string()).or_default();
        parts.extend(tp.partitions);
        parts.sort_unstable();
        parts.dedup();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_with_version_prefix() {
        let mut owned = Assignment::new();
        owned.insert("a".to_owned(), vec![1, 0]);
        let bytes = encode_subscription(&["a".to_owned(), "b".to_owned()], &owned, 7).unwrap();
        assert_eq!(&bytes[..2], &[0, 3], "big-endian version 3 first");
        assert_eq!(decode_subscription(bytes).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn java_v0_subscription_decodes() {
        // What a pre-2.4 Java client writes: version 0, topics ["t"], null user data.
        let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_subscription(bytes).unwrap(), vec!["t"]);
    }

    #[test]
    fn newer_versions_are_read_at_ours() {
        let mut bytes = BytesMut::from(
            &encode_subscription(&["t".to_owned()], &Assignment::new(), -1).unwrap()[..],
        );
        bytes[..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(decode_subscription(bytes.freeze()).unwrap(), vec!["t"]);
    }

    #[test]
    fn assignment_round_trips_and_empty_is_empty() {
        let mut a = Assignment::new();
        a.insert("t".to_owned(), vec![0, 2]);
        a.insert("u".to_owned(), vec![5]);
        let bytes = encode_assignment(&a).unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_assignment(bytes).unwrap(), a);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn java_v0_assignment_decodes() {
        // version 0, [{topic "t", partitions [0, 1]}], null user data.
        let bytes = Bytes::from_static(&[
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff,
            0xff,
        ]);
        let a = decode_assignment(bytes).unwrap();
        assert_eq!(a.get("t"), Some(&vec![0, 1]));
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0xff, 0xff])).is_err());
    }
}
