//! The web console: a single-page front end and the JSON API it calls, served on the HTTP
//! listener at every path but `/metrics` (see [`crate::http`]).
//!
//! Map:
//! - this file: the routes, the embedded assets (`assets/`: index.html, console.css,
//!   console.js, hand-written, no framework, nothing fetched from elsewhere) and the access
//!   gate every route passes through.
//! - [`auth`]: who may use the console. On a loopback listener it is open (a development
//!   broker); beyond loopback, HTTP Basic checked against the broker's SASL users (PLAIN
//!   users of the JAAS configuration, SCRAM credentials), or a 403 page when there are none
//!   (unless `http.console_anonymous` is set).
//! - [`kafka`]: requests to the broker's own handlers, in process, as the console user's
//!   principal: the same validation, semantics and ACL checks as on a Kafka listener.
//!   Errors carry Kafka's error names.
//! - [`topics`]: list, describe (with DescribeConfigs), create and delete topics.
//! - [`messages`]: browse a partition from the log (explicit READ check) and produce a test
//!   message (through Produce).
//! - [`groups`]: classic, KIP-848 and share groups with members, assignments and lag, and
//!   offset resets as `kafka-consumer-groups --reset-offsets` does them.
//! - [`lag`]: the sampler that records each group's total lag every few seconds into a
//!   bounded ring, for the lag chart.
//!
//! The throughput and latency charts read `/metrics` from the page itself and compute the
//! rates there, so they show the very numbers Prometheus scrapes.

pub mod auth;
pub mod groups;
pub mod kafka;
pub mod lag;
pub mod messages;
pub mod topics;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::api::Broker;
use crate::security::Principal;

pub use kafka::ConsoleError;

/// Largest request body the console reads: a produced test message (whose value Kafka caps
/// at `max.message.bytes`, 1 MiB by default) in JSON, with room for escaping.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const CONSOLE_JS: &str = include_str!("assets/console.js");

/// What every console handler shares.
pub struct Console {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The address the HTTP listener is bound to: loopback means an open console.
    pub bound: SocketAddr,
    /// Verified SCRAM logins, so a page's polling does not run PBKDF2 on every request.
    pub logins: auth::LoginCache,
    /// Each group's recent total lag.
    pub lag: Arc<lag::LagHistory>,
}

/// Who is asking, as the access gate established it: handed to every handler.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `User:<name>`, or `User:ANONYMOUS` on an open console.
    pub principal: Principal,
    /// The HTTP client's address (ACLs match on its host).
    pub peer: SocketAddr,
    /// How access was decided (`open`, `anonymous`, `authenticated`), shown by the page.
    pub mode: &'static str,
}

/// The console's routes for a listener bound to `bound`. Starts the lag sampler when called
/// inside a Tokio runtime; it stops with the broker.
pub fn router(broker: Arc<Broker>, bound: SocketAddr) -> Router {
    let lag = Arc::new(lag::LagHistory::default());
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(lag::run(Arc::clone(&broker), Arc::clone(&lag)));
    }
    let state = Arc::new(Console {
        broker,
        bound,
        logins: auth::LoginCache::default(),
        lag,
    });
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/console.css", get(css))
        .route("/console.js", get(js))
        .route("/api/session", get(session))
        .route("/api/topics", get(topics::list).post(topics::create))
        .route(
            "/api/topics/{name}",
            get(topics::describe).delete(topics::delete),
        )
        .route(
            "/api/topics/{name}/messages",
            get(messages::browse).post(messages::produce),
        )
        .route("/api/groups", get(groups::list))
        .route("/api/groups/{id}", get(groups::describe))
        .route("/api/groups/{id}/lag", get(groups::lag_history))
        .route(
            "/api/groups/{id}/reset-offsets",
            axum::routing::post(groups::reset_offsets),
        )
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The access gate in front of every console route: decides who the request is (or answers
/// 401/403 itself) and hands the [`Identity`] on.
async fn gate(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let api = req.uri().path().starts_with("/api/");
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    match auth::decide(&console, peer, authorization.as_ref()).await {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            let mut resp = next.run(req).await;
            // Nothing the console answers may be cached by a proxy or framed by another site.
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Err(refusal) => refusal.response(api),
    }
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        CONSOLE_CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CONSOLE_JS,
    )
        .into_response()
}

/// `GET /api/session`: who the console acts as, and facts about the broker.
async fn session(
    State(console): State<Arc<Console>>,
    axum::Extension(who): axum::Extension<Identity>,
) -> Response {
    let b = &console.broker;
    Json(json!({
        "principal": who.principal.to_string(),
        "mode": who.mode,
        "broker": {
            "node_id": b.config.node_id,
            "cluster_id": b.logs.cluster_id(),
            "version": env!("CARGO_PKG_VERSION"),
            "listeners": b.config.listeners,
            "http": console.bound.to_string(),
            "authorizer": b.authorizer.enabled(),
        },
    }))
    .into_response()
}

async fn api_not_found() -> Response {
    ConsoleError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such console API endpoint",
    )
    .into_response()
}
