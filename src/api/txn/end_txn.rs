//! EndTxn: commit or abort. Answered once the markers are written (see `crate::txn`).
//! From v5 the client speaks transaction version 2 (KIP-890): the epoch is bumped and the
//! answer carries the producer id and epoch to go on with.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, RequestHeader};

use super::fenced_for;
use crate::api::{ApiError, Code, Ctx};
use crate::security::acl::Operation;

/// First EndTxn version of transaction version 2.
pub(crate) const TV2_VERSION: i16 = 5;

/// Handle EndTxn.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: EndTxnRequest,
) -> Result<EndTxnResponse, ApiError> {
    let b = ctx.broker;
    let tv2 = hdr.request_api_version >= TV2_VERSION;
    if !ctx.authorize_txn_id(Operation::Write, req.transactional_id.0.as_str()) {
        return Ok(EndTxnResponse::default()
            .with_error_code(Code::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1));
    }
    match b
        .txns
        .end_txn(
            b.txn_env(),
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            tv2,
        )
        .await
    {
        Ok((pid, epoch)) => Ok(EndTxnResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)),
        Err(code) => Ok(EndTxnResponse::default()
            .with_error_code(fenced_for(code, hdr.request_api_version, 2).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)),
    }
}
