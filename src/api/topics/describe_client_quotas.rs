//! DescribeClientQuotas. Sluice enforces no client quotas, so every filter matches nothing:
//! an empty list, as Kafka answers when no quota is set. `kafka-configs --describe
//! --entity-type users` asks for quotas before it lists a user's SCRAM credentials, so
//! without this answer the command fails.

use kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, RequestHeader,
};

use crate::api::{ApiError, Ctx};

/// Handle DescribeClientQuotas.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    _req: DescribeClientQuotasRequest,
) -> Result<DescribeClientQuotasResponse, ApiError> {
    // Kafka: DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(crate::security::acl::Operation::DescribeConfigs) {
        return Ok(DescribeClientQuotasResponse::default()
            .with_error_code(crate::api::Code::ClusterAuthorizationFailed.code()));
    }
    Ok(DescribeClientQuotasResponse::default().with_entries(Some(Vec::new())))
}
