//! SaslHandshake and SaslAuthenticate as API requests. On a SASL listener the authenticator
//! (`security::sasl`) serves them before and during authentication, and for
//! re-authentication; what reaches here is a request Kafka's `KafkaApis` would get: on a
//! listener without SASL, or a SaslAuthenticate after authentication. Kafka answers both
//! with ILLEGAL_SASL_STATE.

use kafka_protocol::messages::{
    RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

use crate::api::{sb, ApiError, Code, Ctx};

/// Handle SaslHandshake outside authentication.
pub(crate) async fn handshake(
    _ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    _req: SaslHandshakeRequest,
) -> Result<SaslHandshakeResponse, ApiError> {
    Ok(SaslHandshakeResponse::default().with_error_code(Code::IllegalSaslState.code()))
}

/// Handle SaslAuthenticate outside authentication.
pub(crate) async fn authenticate(
    _ctx: &Ctx<'_>,
    _hdr: &RequestHeader,
    _req: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, ApiError> {
    Ok(SaslAuthenticateResponse::default()
        .with_error_code(Code::IllegalSaslState.code())
        .with_error_message(Some(sb(
            "SaslAuthenticate request received after successful authentication",
        ))))
}
