//! DescribeAcls. Sluice has no authorizer yet, so it answers as Kafka does when
//! `authorizer.class.name` is empty: SECURITY_DISABLED with Kafka's message ("No Authorizer
//! is configured on the broker"). Tools such as MirrorMaker 2 treat that answer as "no
//! ACLs to copy" and stop logging an error for it.

use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, RequestHeader};

use crate::api::{sb, ApiError, Code, Ctx};

/// Kafka's message for SECURITY_DISABLED on the ACL APIs.
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Handle DescribeAcls.
pub(crate) async fn handle(
    _ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    _req: DescribeAclsRequest,
) -> Result<DescribeAclsResponse, ApiError> {
    Ok(answer())
}

fn answer() -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(Code::SecurityDisabled.code())
        .with_error_message(Some(sb(NO_AUTHORIZER)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_security_disabled() {
        let r = answer();
        assert_eq!(r.error_code, Code::SecurityDisabled.code());
        assert!(r.resources.is_empty());
    }
}
