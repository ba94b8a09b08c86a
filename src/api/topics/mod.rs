//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
//! AlterConfigs / IncrementalAlterConfigs, DeleteRecords, DescribeLogDirs,
//! DescribeTopicPartitions.

pub mod alter_configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
