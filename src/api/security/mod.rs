//! Security APIs: the ACL APIs (CreateAcls, DescribeAcls, DeleteAcls; each answers
//! SECURITY_DISABLED when no authorizer is configured, as Kafka does, the rules and the
//! store living in `crate::security::acl`), SaslHandshake and SaslAuthenticate once a
//! connection is past authentication (or on a listener without SASL), and the SCRAM
//! credential APIs. Authentication itself runs before dispatch, in `security::sasl`.

pub mod create_acls;
pub mod delete_acls;
pub mod describe_acls;
pub mod sasl;
pub mod scram_credentials;

/// Kafka's message for SECURITY_DISABLED on CreateAcls and DeleteAcls (`AclApis`).
pub(crate) const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Kafka's message when the cluster permission an ACL API needs is missing.
pub(crate) const NOT_AUTHORIZED: &str = "Cluster authorization failed.";
