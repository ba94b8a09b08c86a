//! DescribeCluster: this one broker, which is also the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};

use crate::api::{sb, ApiError, Ctx};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};

/// Handle DescribeCluster.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, ApiError> {
    let (host, port) = ctx.conn.advertised();
    let node = BrokerId(ctx.broker.config.node_id);
    Ok(DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type.max(1))
        .with_cluster_id(sb(ctx.broker.logs.cluster_id()))
        .with_controller_id(node)
        .with_cluster_authorized_operations(if !req.include_cluster_authorized_operations {
            i32::MIN
        } else if ctx.authorize_cluster(Operation::Describe) {
            ctx.authorized_operations(
                ResourceType::Cluster,
                CLUSTER_NAME,
                crate::api::meta::metadata::ALL_CLUSTER_OPERATIONS,
            )
        } else {
            // Kafka answers anyone, but reports no operations without DESCRIBE.
            0
        })
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(sb(host))
            .with_port(i32::from(port))]))
}
