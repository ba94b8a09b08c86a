//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
//! AlterConfigs / IncrementalAlterConfigs, DeleteRecords, DescribeLogDirs,
//! DescribeTopicPartitions, DescribeClientQuotas (none are set).

pub mod alter_configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_client_quotas;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;

/// Kafka's controller refuses a request that would write more than this many metadata records
/// (one per topic, per new partition and per config; `QuorumController.MAX_RECORDS_PER_USER_OP`):
/// CreateTopics with POLICY_VIOLATION and [`TOO_LARGE_MESSAGE`] for every topic in it,
/// CreatePartitions with UNKNOWN_SERVER_ERROR for the topic that overflows and those after it.
/// Sluice counts the same way, so one request cannot make a million partition directories.
pub(crate) const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// Kafka's message for a request over [`MAX_RECORDS_PER_USER_OP`].
pub(crate) const TOO_LARGE_MESSAGE: &str = "Unable to perform excessively large batch operation.";

/// Records of one topic change: `n` new partitions plus `extra` (the topic, its configs).
pub(crate) fn records(n: i32, extra: usize) -> usize {
    usize::try_from(n).unwrap_or(0).saturating_add(extra)
}

/// The error a config request gets for a resource the client may not `op` (DESCRIBE_CONFIGS
/// or ALTER_CONFIGS), or `None` when allowed. As Kafka maps config resources to ACL
/// resources: a topic to the topic, a group to the group, brokers, broker loggers and
/// client-metrics resources to the cluster.
pub(crate) fn config_denied(
    ctx: &crate::api::Ctx<'_>,
    resource_type: i8,
    name: &str,
    op: crate::security::acl::Operation,
) -> Option<crate::api::Code> {
    use crate::api::Code;
    // ConfigResource.Type codes: TOPIC 2, GROUP 32; BROKER 4, BROKER_LOGGER 8,
    // CLIENT_METRICS 16.
    match resource_type {
        2 => (!ctx.authorize_topic(op, name)).then_some(Code::TopicAuthorizationFailed),
        32 => (!ctx.authorize_group(op, name)).then_some(Code::GroupAuthorizationFailed),
        4 | 8 | 16 => (!ctx.authorize_cluster(op)).then_some(Code::ClusterAuthorizationFailed),
        _ => None,
    }
}
