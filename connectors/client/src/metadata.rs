//! The client's view of the cluster: brokers (node id → address) and topics (partition →
//! leader), built from Metadata responses. The cache is plain data; `client.rs` decides when
//! to refresh it and whom to ask.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::MetadataResponse;

/// A broker as Metadata advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Kafka's `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, when the broker has one.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, as a socket address string.
    pub fn addr(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, bracketing IPv6 literals.
pub(crate) fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Node id of the leader; -1 when there is none.
    pub leader: i32,
    /// Leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// Node ids of the replicas.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// The partition-level error Metadata reported, if any (e.g. LEADER_NOT_AVAILABLE).
    pub error: Option<ResponseError>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Whether Kafka marks it internal (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

/// Brokers and topics last seen in a Metadata response.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    pub(crate) brokers: HashMap<i32, BrokerInfo>,
    pub(crate) topics: HashMap<String, TopicInfo>,
}

/// What a Metadata response said about each requested topic.
pub(crate) type TopicOutcome = Vec<(String, Result<TopicInfo, ResponseError>)>;

impl MetadataCache {
    /// Merges a Metadata response: brokers are replaced, and each topic in the response is
    /// replaced or (on a topic-level error) removed. Returns the per-topic outcome.
    pub(crate) fn update(&mut self, resp: &MetadataResponse) -> TopicOutcome {
        if !resp.brokers.is_empty() {
            self.brokers = resp
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.node_id.0,
                        BrokerInfo {
                            node_id: b.node_id.0,
                            host: b.host.to_string(),
                            port: b.port,
                            rack: b.rack.as_ref().map(ToString::to_string),
                        },
                    )
                })
                .collect();
        }
        let mut outcome = Vec::with_capacity(resp.topics.len());
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            match ResponseError::try_from_code(t.error_code) {
                Some(err) => {
                    self.topics.remove(&name);
                    outcome.push((name, Err(err)));
                }
                None => {
                    let info = TopicInfo {
                        name: name.clone(),
                        internal: t.is_internal,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| {
                                (
                                    p.partition_index,
                                    PartitionInfo {
                                        partition: p.partition_index,
                                        leader: p.leader_id.0,
                                        leader_epoch: p.leader_epoch,
                                        replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                                        isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                                        error: ResponseError::try_from_code(p.error_code),
                                    },
                                )
                            })
                            .collect(),
                    };
                    self.topics.insert(name.clone(), info.clone());
                    outcome.push((name, Ok(info)));
                }
            }
        }
        outcome
    }

    /// The address of the leader of `topic`/`partition`, if known and available.
    pub(crate) fn leader_addr(&self, topic: &str, partition: i32) -> Option<String> {
        let p = self.topics.get(topic)?.partitions.get(&partition)?;
        if p.leader < 0 {
            return None;
        }
        self.brokers.get(&p.leader).map(BrokerInfo::addr)
    }

    /// Forgets a topic so that the next lookup asks the cluster again.
    pub(crate) fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn response() -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(1.into())
                    .with_host(StrBytes::from_static_str("10.0.0.1"))
                    .with_port(9092),
                MetadataResponseBroker::default()
                    .with_node_id(2.into())
                    .with_host(StrBytes::from_static_str("::1"))
                    .with_port(9093),
            ])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                    .with_partitions(vec![
                        MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(2.into()),
                        MetadataResponsePartition::default()
                            .with_partition_index(1)
                            .with_leader_id((-1).into())
                            .with_error_code(ResponseError::LeaderNotAvailable.code()),
                    ]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            ])
    }

    #[test]
    fn leaders_resolve_to_advertised_addresses() {
        let mut cache = MetadataCache::default();
        let outcome = cache.update(&response());
        assert_eq!(cache.leader_addr("t", 0).as_deref(), Some("[::1]:9093"));
        assert_eq!(cache.leader_addr("t", 1), None, "no leader");
        assert_eq!(cache.leader_addr("t", 2), None, "no such partition");
        assert!(matches!(
            outcome.get(1),
            Some((name, Err(ResponseError::UnknownTopicOrPartition))) if name == "gone"
        ));
        assert!(!cache.topics.contains_key("gone"));
        cache.invalidate("t");
        assert_eq!(cache.leader_addr("t", 0), None);
    }
}
