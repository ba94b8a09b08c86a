//! DescribeAcls: the ACLs that pass the request's filter, grouped by resource pattern.
//! Needs DESCRIBE on the cluster. With no authorizer, Kafka answers SECURITY_DISABLED with
//! "No Authorizer is configured on the broker"; tools such as MirrorMaker 2 treat that as
//! "no ACLs to copy".

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, RequestHeader};

use super::NOT_AUTHORIZED;
use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::{Acl, AclFilter, Operation};

/// Kafka's message for SECURITY_DISABLED on DescribeAcls.
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Handle DescribeAcls.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeAclsRequest,
) -> Result<DescribeAclsResponse, ApiError> {
    // Kafka checks the cluster permission before it looks at whether an authorizer exists
    // (with none, every check passes).
    if !ctx.authorize_cluster(Operation::Describe) {
        return Ok(error(Code::ClusterAuthorizationFailed, NOT_AUTHORIZED));
    }
    if !ctx.broker.authorizer.enabled() {
        return Ok(error(Code::SecurityDisabled, NO_AUTHORIZER));
    }
    // Kafka's request class refuses UNKNOWN in a filter; Sluice answers INVALID_REQUEST
    // with its reason rather than closing the connection.
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(msg) => return Ok(error(Code::InvalidRequest, &msg)),
    };
    Ok(DescribeAclsResponse::default().with_resources(group(ctx.broker.authorizer.list(&filter))))
}

fn error(code: Code, msg: &str) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(sb(msg)))
}

/// One entry per resource pattern, with its ACLs (Kafka's `DescribeAclsResponse.aclsResources`).
/// `acls` comes sorted by resource type, name and pattern type, so equal patterns are adjacent.
fn group(acls: Vec<Acl>) -> Vec<DescribeAclsResource> {
    let mut out: Vec<DescribeAclsResource> = Vec::new();
    for a in acls {
        let entry = AclDescription::default()
            .with_principal(sb(a.principal))
            .with_host(sb(a.host))
            .with_operation(a.operation.code())
            .with_permission_type(a.permission.code());
        match out.last_mut() {
            Some(last)
                if last.resource_type == a.resource_type.code()
                    && *last.resource_name == *a.name
                    && last.pattern_type == a.pattern.code() =>
            {
                last.acls.push(entry)
            }
            _ => out.push(
                DescribeAclsResource::default()
                    .with_resource_type(a.resource_type.code())
                    .with_resource_name(sb(a.name))
                    .with_pattern_type(a.pattern.code())
                    .with_acls(vec![entry]),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{PatternType, Permission, ResourceType};

    #[test]
    fn answers_security_disabled() {
        let r = error(Code::SecurityDisabled, NO_AUTHORIZER);
        assert_eq!(r.error_code, Code::SecurityDisabled.code());
        assert!(r.resources.is_empty());
    }

    #[test]
    fn groups_by_resource_pattern() {
        let a = |name: &str, pattern, who: &str| Acl {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern,
            principal: who.into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        };
        let mut set = std::collections::BTreeSet::new();
        set.insert(a("t", PatternType::Literal, "User:b"));
        set.insert(a("t", PatternType::Prefixed, "User:a"));
        set.insert(a("t", PatternType::Literal, "User:a"));
        let r = group(set.into_iter().collect());
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].pattern_type, PatternType::Literal.code());
        assert_eq!(r[0].acls.len(), 2);
        assert_eq!(r[1].acls.len(), 1);
    }
}
