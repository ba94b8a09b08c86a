//! The broker's HTTP listener: `GET /metrics` (Prometheus text exposition 0.0.4, rendered by
//! [`crate::metrics`]) and the web console ([`console`]) at every other path.
//!
//! - [`bind`]: binds `http.listen` (`--http`, `SLUICE_HTTP`) before the broker opens its data,
//!   as the Kafka listeners are; a busy *default* port only warns.
//! - [`serve`]: answers requests until the broker's shutdown token is cancelled.
//! - [`router`]: the routes, for tests that serve them on a listener of their own.
//!
//! Nothing here speaks Kafka, and nothing here writes: the HTTP side only reads the broker's
//! state.

pub mod console;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::api::Broker;
use crate::config::HttpListen;

/// The `Content-Type` of Prometheus' text exposition format, version 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the HTTP listener `setting` asks for. `Ok(None)` when it is `off`, or when the
/// default address is taken (one warning: a second broker on this machine, or a test broker,
/// must still start). Any other address that cannot be bound is an error, as for a Kafka
/// listener.
pub async fn bind(setting: &HttpListen) -> anyhow::Result<Option<TcpListener>> {
    let HttpListen::At { host, port } = setting else {
        return Ok(None);
    };
    let bound = if host.is_empty() {
        // Every interface: dual-stack where IPv6 exists, else IPv4, like a Kafka listener.
        match TcpListener::bind(format!("[::]:{port}")).await {
            Ok(s) => Ok(s),
            Err(_) => TcpListener::bind(format!("0.0.0.0:{port}")).await,
        }
    } else if host.contains(':') {
        TcpListener::bind(format!("[{host}]:{port}")).await
    } else {
        TcpListener::bind(format!("{host}:{port}")).await
    };
    match bound {
        Ok(s) => Ok(Some(s)),
        Err(e) if setting.is_default() && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                "http: the default address {host}:{port} is in use; running without HTTP \
                 (no /metrics, no console). Give another with --http HOST:PORT or turn it \
                 off with --http off"
            );
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen for HTTP on {host}:{port}")),
    }
}

/// Every route: `/metrics`, and the console for the rest. `bound` is the listener's
/// address: the console is open on loopback only (see [`console::auth`]).
pub fn router(broker: Arc<Broker>, bound: SocketAddr) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&broker))
        .merge(console::router(broker, bound))
}

/// Serves [`router`] on `listener` until the broker's shutdown token is cancelled; requests
/// in flight then finish.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>) -> std::io::Result<()> {
    let token = broker.shutdown.clone();
    let bound = listener.local_addr()?;
    // With each client's address: ACLs match on the host, as on a Kafka listener.
    let app = router(broker, bound).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
}

/// `GET /metrics`. Rendering reads `/proc` and walks every partition, so it runs on the
/// blocking pool rather than on a runtime thread.
async fn metrics(State(broker): State<Arc<Broker>>) -> Response {
    let page = move || crate::metrics::render(&broker.metrics, &gather(&broker));
    match tokio::task::spawn_blocking(page).await {
        Ok(text) => ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The broker state a scrape reports beside the counters, copied with each lock held only
/// for a few numbers: partitions sorted by topic, committed offsets sorted.
fn gather(broker: &Broker) -> crate::metrics::Gathered {
    let mut topics = broker.logs.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut partitions = Vec::new();
    for t in topics {
        for p in &t.partitions {
            let s = p.stats();
            partitions.push(crate::metrics::PartitionRow {
                topic: Arc::clone(&t.name),
                partition: p.index(),
                log_start: s.log_start,
                log_end: s.log_end,
                high_watermark: s.high_watermark,
                size_bytes: s.size_bytes,
                segments: s.segments,
            });
        }
    }
    let mut committed = broker.groups.offsets.all();
    committed.sort();
    crate::metrics::Gathered {
        partitions,
        committed,
    }
}
