//! SASL authentication of a new connection, as Kafka's `SaslClientAuthenticator` does it
//! after ApiVersions: SaslHandshake v1 names the mechanism, then SaslAuthenticate requests
//! carry the mechanism's tokens (one for PLAIN, two for SCRAM). Both requests are
//! `kafka-protocol` messages; the tokens inside them are built here (PLAIN) and in
//! `scram.rs`. A refusal is [`Error::Authentication`]: not retriable, naming the mechanism
//! and the user, never the password.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::scram::ScramClient;
use super::{SaslConfig, SaslMechanism};
use crate::connection::Connection;
use crate::error::{Error, Result};

/// Authenticates `conn` with `sasl`. Returns the session lifetime the broker granted
/// (SaslAuthenticate v1+, Kafka's `connections.max.reauth.ms`), if it set one: past it the
/// broker closes the connection on its next request.
pub(crate) async fn authenticate(
    conn: &mut Connection,
    sasl: &SaslConfig,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let refused = |conn: &Connection, why: String| Error::Authentication {
        addr: conn.addr().to_owned(),
        message: format!(
            "SASL {} authentication as user {:?} failed: {why}",
            sasl.mechanism, sasl.username
        ),
    };
    let version = conn.version(ApiKey::SaslHandshake)?;
    let handshake = conn
        .call(
            version,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str(sasl.mechanism.name())),
            timeout,
        )
        .await?;
    if let Some(e) = ResponseError::try_from_code(handshake.error_code) {
        let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(refused(
            conn,
            format!(
                "the broker refused the mechanism ({e:?}); it offers [{}]",
                offered.join(", ")
            ),
        ));
    }
    let version = conn.version(ApiKey::SaslAuthenticate)?;
    let last = match sasl.mechanism {
        SaslMechanism::Plain => {
            // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid as Kafka's
            // PlainSaslClient sends it.
            let mut token = Vec::with_capacity(sasl.username.len() + sasl.password().len() + 2);
            token.push(0);
            token.extend_from_slice(sasl.username.as_bytes());
            token.push(0);
            token.extend_from_slice(sasl.password().as_bytes());
            step(conn, version, token, timeout)
                .await?
                .map_err(|why| refused(conn, why))?
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let nonce = ScramClient::random_nonce().map_err(|why| refused(conn, why))?;
            let mut scram =
                ScramClient::new(sasl.mechanism, &sasl.username, sasl.password(), nonce)
                    .map_err(|why| refused(conn, why))?;
            let first = step(conn, version, scram.client_first().into_bytes(), timeout)
                .await?
                .map_err(|why| refused(conn, why))?;
            let client_final = scram
                .client_final(&first.auth_bytes)
                .map_err(|why| refused(conn, why))?;
            let last = step(conn, version, client_final.into_bytes(), timeout)
                .await?
                .map_err(|why| refused(conn, why))?;
            scram
                .verify_server_final(&last.auth_bytes)
                .map_err(|why| refused(conn, why))?;
            last
        }
    };
    Ok(u64::try_from(last.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}

/// Sends one token. The outer `Result` is a transport failure; the inner one a refusal,
/// with the broker's message (Kafka's is "Authentication failed: Invalid username or
/// password" and the like, and never echoes the credentials).
async fn step(
    conn: &mut Connection,
    version: i16,
    token: Vec<u8>,
    timeout: Duration,
) -> Result<std::result::Result<SaslAuthenticateResponse, String>> {
    let resp = conn
        .call(
            version,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
            timeout,
        )
        .await?;
    Ok(match ResponseError::try_from_code(resp.error_code) {
        None => Ok(resp),
        Some(e) => Err(match resp.error_message.as_deref() {
            Some(m) if !m.is_empty() => format!("{m} ({e:?})"),
            _ => format!("{e:?}"),
        }),
    })
}
