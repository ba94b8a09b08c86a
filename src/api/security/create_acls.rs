//! CreateAcls: add ACL bindings. Needs ALTER on the cluster. Each binding is checked as
//! Kafka's controller checks it (INVALID_REQUEST with its message for ANY or UNKNOWN enums,
//! MATCH, an empty name, a CLUSTER name other than `kafka-cluster`); the valid ones are
//! written to disk before the answer.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, RequestHeader};

use super::{NOT_AUTHORIZED, NO_AUTHORIZER};
use crate::api::{blocking, sb, ApiError, Code, Ctx};
use crate::security::acl::{Acl, Operation};

/// Handle CreateAcls.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: CreateAclsRequest,
) -> Result<CreateAclsResponse, ApiError> {
    let all = |code: Code, msg: &str| {
        let r = AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)));
        CreateAclsResponse::default().with_results(vec![r; req.creations.len()])
    };
    if !ctx.authorize_cluster(Operation::Alter) {
        return Ok(all(Code::ClusterAuthorizationFailed, NOT_AUTHORIZED));
    }
    if !ctx.broker.authorizer.enabled() {
        return Ok(all(Code::SecurityDisabled, NO_AUTHORIZER));
    }
    let parsed: Vec<Result<Acl, String>> = req
        .creations
        .iter()
        .map(|c| {
            Acl::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    let valid: Vec<Acl> = parsed
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        let broker = Arc::clone(ctx.broker);
        blocking(move || broker.authorizer.create(&valid)).await?
    };
    if let Err(e) = &stored {
        tracing::error!("CreateAcls: cannot store ACLs: {e}");
    }
    let results = parsed
        .into_iter()
        .map(|r| match (r, &stored) {
            (Err(msg), _) => AclCreationResult::default()
                .with_error_code(Code::InvalidRequest.code())
                .with_error_message(Some(sb(msg))),
            (Ok(_), Ok(())) => AclCreationResult::default(),
            (Ok(_), Err(e)) => AclCreationResult::default()
                .with_error_code(Code::UnknownServerError.code())
                .with_error_message(Some(sb(e.to_string()))),
        })
        .collect();
    Ok(CreateAclsResponse::default().with_results(results))
}
