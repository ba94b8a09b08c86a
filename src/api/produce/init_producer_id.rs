//! InitProducerId. For idempotent producers (the Java producer's default) a producer that
//! sends its current id and epoch (KIP-360, after an error) gets the epoch bumped; a new one
//! gets a fresh id, unique across restarts. With a transactional id the transaction
//! coordinator answers (`crate::txn`): the id's producer, its epoch bumped, any transaction
//! the previous incarnation left open aborted.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};
use tracing::error;

use crate::api::{blocking, ApiError, Code, Ctx};
use crate::security::acl::{Operation, ResourceType};

/// Handle InitProducerId.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    hdr: &RequestHeader,
    req: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, ApiError> {
    let fail = |code: Code| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    // Kafka: WRITE on the transactional id; without one, IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic (KIP-679).
    match &req.transactional_id {
        Some(id) if !ctx.authorize_txn_id(Operation::Write, id.0.as_str()) => {
            return Ok(fail(Code::TransactionalIdAuthorizationFailed));
        }
        None if !ctx.authorize_cluster(Operation::IdempotentWrite)
            && !ctx.broker.authorizer.authorize_any(
                ctx.session,
                Operation::Write,
                ResourceType::Topic,
            ) =>
        {
            return Ok(fail(Code::ClusterAuthorizationFailed));
        }
        _ => {}
    }
    if let Some(id) = &req.transactional_id {
        let b = ctx.broker;
        let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
        return Ok(
            match b
                .txns
                .init_producer_id(
                    b.txn_env(),
                    id.0.as_str(),
                    req.transaction_timeout_ms,
                    expected,
                )
                .await
            {
                Ok((pid, epoch)) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(code) => {
                    tracing::info!(transactional_id = %id.0, error = %code, "InitProducerId refused");
                    // KIP-588: PRODUCER_FENCED from v4; INVALID_PRODUCER_EPOCH before.
                    fail(crate::api::txn::fenced_for(
                        code,
                        hdr.request_api_version,
                        4,
                    ))
                }
            },
        );
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return Ok(InitProducerIdResponse::default()
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1));
    }
    let broker = std::sync::Arc::clone(ctx.broker);
    match blocking(move || broker.producer_ids.next()).await? {
        Ok(id) => Ok(InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0)),
        Err(e) => {
            error!(error = %e, "could not allocate a producer id");
            Ok(fail(Code::KafkaStorageError))
        }
    }
}
