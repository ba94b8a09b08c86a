//! Committed offsets: finding a group's coordinator, committing offsets (as a group member
//! or as a "simple" committer with generation -1 and an empty member id), and reading them
//! back. Coordinator moves (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) and loading
//! (COORDINATOR_LOAD_IN_PROGRESS) are retried after looking the coordinator up again.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{topic_name, Client, GROUP_KEY};
use crate::error::{At, Error, Result};
use crate::metadata::host_port;

/// A group coordinator, as FindCoordinator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
}

impl Coordinator {
    /// `host:port`.
    pub fn addr(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// Who is committing: a group member's generation and id, or nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Generation id from JoinGroup, or -1.
    pub generation_id: i32,
    /// Member id from JoinGroup, or "".
    pub member_id: String,
}

impl Generation {
    /// A commit from outside group membership (Kafka's "simple" consumer with `assign()`):
    /// generation -1, member "". Kafka accepts it only while the group has no members.
    pub fn simple() -> Self {
        Self {
            generation_id: -1,
            member_id: String::new(),
        }
    }
}

/// An offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume (last processed + 1), by Kafka convention.
    pub offset: i64,
    /// Free-form metadata stored with the offset.
    pub metadata: Option<String>,
}

impl CommitOffset {
    /// An offset without metadata.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        Self {
            topic: topic.into(),
            partition,
            offset,
            metadata: None,
        }
    }
}

/// A committed offset read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset; `None` when the group has none for this partition.
    pub offset: Option<i64>,
    /// Metadata stored with it.
    pub metadata: Option<String>,
}

impl Client {
    /// Asks any broker which broker coordinates `group`.
    pub async fn find_coordinator(&self, group: &str) -> Result<Coordinator> {
        self.retrying(
            true,
            |_| {},
            || self.find_coordinator_once(GROUP_KEY, group),
        )
        .await
    }

    /// One FindCoordinator for `key` of type `key_type` (0 group, 1 transactional id).
    pub(crate) async fn find_coordinator_once(
        &self,
        key_type: i8,
        key: &str,
    ) -> Result<Coordinator> {
        let at = if key_type == GROUP_KEY {
            At::group(key)
        } else {
            At::transaction(key)
        };
        let addr = self.any_broker_addr();
        let (_, resp) = self
            .call_at(&addr, Duration::ZERO, |_| {
                // v4+ batches keys.
                FindCoordinatorRequest::default()
                    .with_key_type(key_type)
                    .with_coordinator_keys(vec![StrBytes::from_string(key.to_owned())])
            })
            .await?;
        let c = resp
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == key)
            .ok_or_else(|| Error::Protocol {
                addr: addr.clone(),
                message: format!("FindCoordinator response does not mention{at}"),
            })?;
        if let Some(error) = ResponseError::try_from_code(c.error_code) {
            return Err(Error::Kafka {
                op: "find coordinator",
                at: Box::new(at),
                error,
                message: c.error_message.as_ref().map(ToString::to_string),
            });
        }
        let coordinator = Coordinator {
            node_id: c.node_id.0,
            host: c.host.to_string(),
            port: c.port,
        };
        self.cache_coordinator(key_type, key, coordinator.addr());
        Ok(coordinator)
    }

    /// The coordinator address of `group`, from the cache or looked up.
    pub(crate) async fn coordinator_addr(&self, group: &str) -> Result<String> {
        if let Some(addr) = self.cached_coordinator(GROUP_KEY, group) {
            return Ok(addr);
        }
        Ok(self.find_coordinator(group).await?.addr())
    }

    /// Runs `op` against the coordinator of `group`, retrying coordinator moves and
    /// retriable failures after a fresh lookup.
    pub(crate) async fn with_coordinator<T, F, Fut>(&self, group: &str, op: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retrying(
            true,
            |e| {
                if e.needs_coordinator_lookup() {
                    self.invalidate_coordinator(group);
                }
            },
            || {
                let op = &op;
                async move {
                    let addr = self.coordinator_addr(group).await?;
                    op(addr).await
                }
            },
        )
        .await
    }

    /// Commits offsets for `group`. Every partition's error is checked; the first one is
    /// returned (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS mean the
    /// member must rejoin before committing again).
    pub async fn commit_offsets(
        &self,
        group: &str,
        generation: &Generation,
        offsets: &[CommitOffset],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for o in offsets {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(o.partition)
                .with_committed_offset(o.offset)
                .with_committed_metadata(
                    o.metadata
                        .as_ref()
                        .map(|m| StrBytes::from_string(m.clone())),
                );
            match topics.iter_mut().find(|t| t.name.0.as_str() == o.topic) {
                Some(t) => t.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(&o.topic))
                        .with_partitions(vec![part]),
                ),
            }
        }
        self.with_coordinator(group, |addr| {
            let topics = topics.clone();
            async move {
                let (_, resp) = self
                    .call_at(&addr, Duration::ZERO, |_| {
                        OffsetCommitRequest::default()
                            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                            .with_generation_id_or_member_epoch(generation.generation_id)
                            .with_member_id(StrBytes::from_string(generation.member_id.clone()))
                            .with_topics(topics)
                    })
                    .await?;
                for t in &resp.topics {
                    for p in &t.partitions {
                        if let Some(error) = ResponseError::try_from_code(p.error_code) {
                            let offset = offsets
                                .iter()
                                .find(|o| {
                                    o.topic == t.name.0.as_str() && o.partition == p.partition_index
                                })
                                .map(|o| o.offset);
                            let mut at =
                                At::partition(&t.name.0, p.partition_index).in_group(group);
                            at.offset = offset;
                            return Err(Error::kafka("commit offsets", at, error));
                        }
                    }
                }
                Ok(())
            }
        })
        .await
    }

    /// Reads the committed offsets of `group` for the given partitions, in the order asked.
    pub async fn fetch_committed(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<CommittedOffset>> {
        self.fetch_committed_with(group, partitions, false).await
    }

    /// [`fetch_committed`](Self::fetch_committed) with OffsetFetch's `require_stable`: while
    /// a transaction holds an offset commit for a partition that is not yet decided, Kafka
    /// answers UNSTABLE_OFFSET_COMMIT (retried here) instead of the older offset. Kafka's
    /// consumer asks for this at `read_committed`.
    pub async fn fetch_committed_with(
        &self,
        group: &str,
        partitions: &[(String, i32)],
        require_stable: bool,
    ) -> Result<Vec<CommittedOffset>> {
        let mut topics: Vec<OffsetFetchRequestTopics> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partition_indexes.push(*partition),
                None => topics.push(
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![*partition]),
                ),
            }
        }
        self.with_coordinator(group, |addr| {
            let topics = topics.clone();
            async move {
                let (_, resp) = self
                    .call_at(&addr, Duration::ZERO, |_| {
                        OffsetFetchRequest::default()
                            .with_require_stable(require_stable)
                            .with_groups(vec![OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                                .with_topics(Some(topics))])
                    })
                    .await?;
                let g = resp
                    .groups
                    .iter()
                    .find(|g| g.group_id.0.as_str() == group)
                    .ok_or_else(|| Error::Protocol {
                        addr: addr.clone(),
                        message: format!("OffsetFetch response does not mention group {group}"),
                    })?;
                if let Some(error) = ResponseError::try_from_code(g.error_code) {
                    return Err(Error::kafka(
                        "fetch committed offsets",
                        At::group(group),
                        error,
                    ));
                }
                let mut out = Vec::with_capacity(partitions.len());
                for (topic, partition) in partitions {
                    let p = g
                        .topics
                        .iter()
                        .filter(|t| t.name.0.as_str() == topic)
                        .flat_map(|t| t.partitions.iter())
                        .find(|p| p.partition_index == *partition);
                    let Some(p) = p else {
                        out.push(CommittedOffset {
                            topic: topic.clone(),
                            partition: *partition,
                            offset: None,
                            metadata: None,
                        });
                        continue;
                    };
                    if let Some(error) = ResponseError::try_from_code(p.error_code) {
                        return Err(Error::kafka(
                            "fetch committed offsets",
                            At::partition(topic, *partition).in_group(group),
                            error,
                        ));
                    }
                    // Kafka answers -1 (and metadata "") for a partition without a commit.
                    let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
                    out.push(CommittedOffset {
                        topic: topic.clone(),
                        partition: *partition,
                        offset,
                        metadata: offset.and(p.metadata.as_ref().map(ToString::to_string)),
                    });
                }
                Ok(out)
            }
        })
        .await
    }
}
