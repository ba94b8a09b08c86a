//! FindCoordinator: this broker coordinates every group (key type 0) and every
//! transactional id (key type 1); v0–3 ask for one key, v4+ for a batch. Other key types
//! (2, share groups) get COORDINATOR_NOT_AVAILABLE until they exist.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};

use crate::api::{sb, ApiError, Code, Ctx};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Handle FindCoordinator.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, ApiError> {
    let (host, port) = ctx.conn.advertised();
    let node = BrokerId(ctx.broker.config.node_id);
    let supported = req.key_type == KEY_TYPE_GROUP || req.key_type == KEY_TYPE_TRANSACTION;
    if hdr.request_api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key);
                if supported {
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
