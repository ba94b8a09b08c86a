//! The ACL APIs: CreateAcls, DescribeAcls, DeleteAcls. Each answers SECURITY_DISABLED when
//! no authorizer is configured, as Kafka does; the rules and the store live in
//! `crate::security::acl`.

pub mod create_acls;
pub mod delete_acls;
pub mod describe_acls;

/// Kafka's message for SECURITY_DISABLED on CreateAcls and DeleteAcls (`AclApis`).
pub(crate) const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Kafka's message when the cluster permission an ACL API needs is missing.
pub(crate) const NOT_AUTHORIZED: &str = "Cluster authorization failed.";
