//! Cluster-level APIs: ApiVersions, Metadata, DescribeCluster, DescribeAcls.

pub mod api_versions;
pub mod describe_acls;
pub mod describe_cluster;
pub mod metadata;
