//! FindCoordinator: this broker coordinates every group (key type 0), every transactional
//! id (key type 1) and every share-group state key (key type 2, `group:topicId:partition`,
//! which Kafka's brokers ask for); v0–3 ask for one key, v4+ for a batch. Other key types
//! get COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};

use crate::api::{sb, ApiError, Code, Ctx};
use crate::security::acl::Operation;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// Handle FindCoordinator.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, ApiError> {
    let (host, port) = ctx.conn.advertised();
    let node = BrokerId(ctx.broker.config.node_id);
    let supported = matches!(
        req.key_type,
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION | KEY_TYPE_SHARE
    );
    // DESCRIBE on the group or transactional id the key names; share-state keys are for
    // brokers (CLUSTER_ACTION).
    let denied = |key: &str| -> Option<Code> {
        match req.key_type {
            KEY_TYPE_GROUP if !ctx.authorize_group(Operation::Describe, key) => {
                Some(Code::GroupAuthorizationFailed)
            }
            KEY_TYPE_TRANSACTION if !ctx.authorize_txn_id(Operation::Describe, key) => {
                Some(Code::TransactionalIdAuthorizationFailed)
            }
            KEY_TYPE_SHARE if !ctx.authorize_cluster(Operation::ClusterAction) => {
                Some(Code::ClusterAuthorizationFailed)
            }
            _ => None,
        }
    };
    if hdr.request_api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                if let Some(code) = denied(key) {
                    c.with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code.code())
                } else if supported {
                    c.with_node_id(node)
                        .with_host(sb(host.clone()))
                        .with_port(i32::from(port))
                } else {
                    c.with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(Code::CoordinatorNotAvailable.code())
                        .with_error_message(Some(sb("no coordinator of this key type")))
                }
            })
            .collect();
        return Ok(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    if let Some(code) = denied(req.key.as_str()) {
        return Ok(FindCoordinatorResponse::default()
            .with_error_code(code.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1));
    }
    Ok(if supported {
        FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(sb(host))
            .with_port(i32::from(port))
    } else {
        FindCoordinatorResponse::default()
            .with_error_code(Code::CoordinatorNotAvailable.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1)
    })
}
