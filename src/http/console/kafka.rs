//! Requests to the broker's own API handlers, in process: the console builds the same
//! request structs a Kafka client sends, at a version the broker supports, and calls
//! [`crate::api::dispatch`] with a session whose principal is the console user. Validation,
//! semantics and ACL checks are then exactly those of a Kafka listener.
//!
//! Also the console's error type: a Kafka error code travels to the page by Kafka's name
//! (`TOPIC_AUTHORIZATION_FAILED`), with an HTTP status that fits it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::Identity;
use crate::api::ConnInfo;
use crate::api::{dispatch, Broker, Ctx};
use crate::security::{Protocol, Session};

/// The listener name the console's sessions carry (Kafka has none for HTTP).
pub const LISTENER: &str = "CONSOLE";
/// The client id of the console's requests, as a Kafka client would send one.
const CLIENT_ID: &str = "sluice-console";

/// A failure the console reports: HTTP status, Kafka's error name (or the console's own,
/// upper-case like Kafka's), and a message.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    /// HTTP status.
    pub status: StatusCode,
    /// Kafka's error code, when the failure is one.
    pub code: Option<i16>,
    /// `TOPIC_AUTHORIZATION_FAILED`, `INVALID_REQUEST`, ...
    pub name: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl ConsoleError {
    /// An error of the console's own.
    pub fn new(status: StatusCode, name: &str, message: impl Into<String>) -> ConsoleError {
        ConsoleError {
            status,
            code: None,
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// A bad request from the page: INVALID_REQUEST, 400.
    pub fn invalid(message: impl Into<String>) -> ConsoleError {
        let mut e = ConsoleError::kafka(ResponseError::InvalidRequest.code(), None);
        e.message = message.into();
        e
    }

    /// Kafka's error `code`, with the broker's message if it gave one.
    pub fn kafka(code: i16, message: Option<&StrBytes>) -> ConsoleError {
        let err = ResponseError::try_from_code(code);
        let name = err.map_or_else(|| format!("ERROR_{code}"), |e| kafka_name(&e));
        // Without the broker's own message the name says it all (the codec's Display of
        // an error is only its name again).
        let text = message
            .map(|m| m.as_str())
            .filter(|m| !m.is_empty())
            .unwrap_or_default()
            .to_string();
        ConsoleError {
            status: status_of(code),
            code: Some(code),
            name,
            message: text,
        }
    }

    /// An unexpected failure inside the broker: UNKNOWN_SERVER_ERROR, 500, logged.
    pub fn internal(what: impl std::fmt::Display) -> ConsoleError {
        tracing::error!("web console: {what}");
        ConsoleError::kafka(ResponseError::UnknownServerError.code(), None)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "name": self.name, "message": self.message}})),
        )
            .into_response()
    }
}

/// `Err` with Kafka's error when `code` is not 0.
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ConsoleError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ConsoleError::kafka(code, message))
    }
}

/// Kafka's name of an error (`TopicAuthorizationFailed` → `TOPIC_AUTHORIZATION_FAILED`).
fn kafka_name(e: &ResponseError) -> String {
    let debug = format!("{e:?}");
    let mut out = String::with_capacity(debug.len() + 8);
    for (i, c) in debug.chars().enumerate() {
        if !c.is_ascii_alphanumeric() {
            break;
        }
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The HTTP status that fits a Kafka error code.
fn status_of(code: i16) -> StatusCode {
    use ResponseError as E;
    match ResponseError::try_from_code(code) {
        Some(
            E::TopicAuthorizationFailed
            | E::GroupAuthorizationFailed
            | E::ClusterAuthorizationFailed
            | E::TransactionalIdAuthorizationFailed
            | E::DelegationTokenAuthorizationFailed,
        ) => StatusCode::FORBIDDEN,
        Some(E::UnknownTopicOrPartition | E::UnknownTopicId | E::GroupIdNotFound) => {
            StatusCode::NOT_FOUND
        }
        Some(E::TopicAlreadyExists | E::NonEmptyGroup) => StatusCode::CONFLICT,
        Some(
            E::UnknownServerError
            | E::KafkaStorageError
            | E::RequestTimedOut
            | E::NotEnoughReplicas
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress,
        )
        | None => StatusCode::INTERNAL_SERVER_ERROR,
        Some(_) => StatusCode::BAD_REQUEST,
    }
}

/// One console user's view of the broker's handlers.
pub struct Caller {
    broker: Arc<Broker>,
    session: Session,
    conn: ConnInfo,
}

impl Caller {
    /// Requests on behalf of `who`, arriving on the HTTP listener bound at `local`.
    pub fn new(broker: &Arc<Broker>, who: &Identity, local: SocketAddr) -> Caller {
        let mut session = Session::new(who.peer, LISTENER.to_string(), Protocol::Plaintext);
        session.principal = who.principal.clone();
        Caller {
            broker: Arc::clone(broker),
            session,
            conn: ConnInfo {
                peer: who.peer,
                local,
                listener: 0,
                advertised: None,
                listener_name: LISTENER.to_string(),
                protocol: Protocol::Plaintext,
            },
        }
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// A handler context, for the checks the console makes itself (READ before browsing).
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            broker: &self.broker,
            conn: &self.conn,
            session: &self.session,
        }
    }

    /// Send `req` (an `api` request at `version`) to the broker's handler for it.
    pub async fn call(
        &self,
        api: ApiKey,
        version: i16,
        req: RequestKind,
    ) -> Result<ResponseKind, ConsoleError> {
        let hdr = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(0)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let reply = dispatch(&self.ctx(), &hdr, req)
            .await
            .map_err(ConsoleError::internal)?;
        Ok(reply.body)
    }
}

/// Unwrap a response of the expected kind (the dispatch table guarantees it).
#[macro_export]
#[doc(hidden)]
macro_rules! console_expect {
    ($resp:expr, $kind:ident) => {
        match $resp {
            kafka_protocol::messages::ResponseKind::$kind(r) => r,
            _ => {
                return Err($crate::http::console::ConsoleError::internal(concat!(
                    "unexpected response kind, wanted ",
                    stringify!($kind)
                )))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_kafka_names_and_fitting_statuses() {
        let e = ConsoleError::kafka(29, None);
        assert_eq!(e.name, "TOPIC_AUTHORIZATION_FAILED");
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = ConsoleError::kafka(3, None);
        assert_eq!(e.name, "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = ConsoleError::kafka(36, Some(&StrBytes::from_static_str("exists")));
        assert_eq!(
            (e.name.as_str(), e.message.as_str()),
            ("TOPIC_ALREADY_EXISTS", "exists")
        );
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(ConsoleError::kafka(68, None).name, "NON_EMPTY_GROUP");
        assert_eq!(ConsoleError::invalid("x").name, "INVALID_REQUEST");
    }
}
