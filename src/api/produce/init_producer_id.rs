//! InitProducerId for idempotent producers (the Java producer's default). A producer that
//! sends its current id and epoch (KIP-360, after an error) gets the epoch bumped; a new one
//! gets a fresh id, unique across restarts. Transactional ids are refused: transactions are
//! not implemented yet.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};
use tracing::error;

use crate::api::{blocking, ApiError, Code, Ctx};

/// Handle InitProducerId.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    req: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, ApiError> {
    let fail = |code: Code| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        // Kafka needs a transaction coordinator here; Sluice has none yet.
        return Ok(fail(Code::TransactionalIdAuthorizationFailed));
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
