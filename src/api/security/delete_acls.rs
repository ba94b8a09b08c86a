//! DeleteAcls: remove the ACLs each filter matches and report them, filter by filter.
//! Needs ALTER on the cluster. A filter with an UNKNOWN enum gets INVALID_REQUEST, as
//! Kafka's controller answers; the others are applied together and written to disk before
//! the answer.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, RequestHeader};

use super::{NOT_AUTHORIZED, NO_AUTHORIZER};
use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::{AclFilter, Operation};

/// Handle DeleteAcls.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DeleteAclsRequest,
) -> Result<DeleteAclsResponse, ApiError> {
    let all = |code: Code, msg: &str| {
        let r = DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)));
        DeleteAclsResponse::default().with_filter_results(vec![r; req.filters.len()])
    };
    if !ctx.authorize_cluster(Operation::Alter) {
        return Ok(all(Code::ClusterAuthorizationFailed, NOT_AUTHORIZED));
    }
    if !ctx.broker.authorizer.enabled() {
        return Ok(all(Code::SecurityDisabled, NO_AUTHORIZER));
    }
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let broker = Arc::clone(ctx.broker);
    let removed = blocking(move || broker.authorizer.delete(&valid)).await?;
    let mut removed = match removed {
        Ok(r) => r.into_iter(),
        Err(e) => {
            tracing::error!("DeleteAcls: cannot store ACLs: {e}");
            return Ok(all(Code::UnknownServerError, &e.to_string()));
        }
    };
    let results = parsed
        .into_iter()
        .map(|r| match r {
            Err(msg) => DeleteAclsFilterResult::default()
                .with_error_code(Code::InvalidRequest.code())
                .with_error_message(Some(sb(msg))),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(a.resource_type.code())
                            .with_resource_name(sb(a.name))
                            .with_pattern_type(a.pattern.code())
                            .with_principal(sb(a.principal))
                            .with_host(sb(a.host))
                            .with_operation(a.operation.code())
                            .with_permission_type(a.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    Ok(DeleteAclsResponse::default().with_filter_results(results))
}
