//! AddOffsetsToTxn: add the group's `__consumer_offsets` partition to the transaction, so
//! that the TxnOffsetCommit that follows is part of it (transaction version 1; version 2
//! clients add it implicitly with TxnOffsetCommit v5).

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, RequestHeader};

use super::{fenced_for, offsets_partition};
use crate::api::{ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// Handle AddOffsetsToTxn.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: AddOffsetsToTxnRequest,
) -> Result<AddOffsetsToTxnResponse, ApiError> {
    // WRITE on the transactional id, then READ on the group (Kafka's checks and order).
    let code = if !ctx.authorize_txn_id(Operation::Write, req.transactional_id.0.as_str()) {
        Some(Code::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorize_group(Operation::Read, req.group_id.0.as_str()) {
        Some(Code::GroupAuthorizationFailed)
    } else if req.group_id.0.is_empty() {
        Some(Code::InvalidGroupId)
    } else {
        ctx.broker
            .txns
            .add_partitions(
                req.transactional_id.0.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                &[offsets_partition(req.group_id.0.as_str())],
            )
            .await
            .err()
            .map(|c| fenced_for(c, hdr.request_api_version, 2))
    };
    Ok(AddOffsetsToTxnResponse::default().with_error_code(code.map_or(0, |c| c.code())))
}
