//! Cluster-level APIs: ApiVersions, Metadata, DescribeCluster.

pub mod api_versions;
pub mod describe_cluster;
pub mod metadata;
