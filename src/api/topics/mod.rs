//! Topic administration: CreateTopics, DeleteTopics, DescribeConfigs.

pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
