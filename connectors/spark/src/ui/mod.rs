//! The streaming UI, Spark's Streaming tab for one stream, served over HTTP from a
//! [`BatchHistory`]. The page polls the JSON and redraws itself; it needs no network
//! beyond this server (no CDN: HTML, CSS and JS are compiled into the binary).
//!
//! Map:
//! - this file: binding ([`bind`], with Spark's port retries), the routes ([`router`]),
//!   [`spawn`], and [`attach`], which does all three for a [`DirectStream`].
//! - `api`: `/api/batches`, the retained batches as JSON.
//! - `metrics`: `/metrics`, Prometheus text exposition (0.0.4).
//! - `page.html`, `page.css`, `page.js`: the page, its charts (hand-drawn SVG) and table.
//!
//! Routes: `/` the page, `/static/page.css`, `/static/page.js`, `/api/batches`, and
//! `/metrics` (also at `/metrics/prometheus`, the path Spark 3's `PrometheusServlet` uses).

mod api;
mod metrics;

use std::io;
use std::net::SocketAddr;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::listener::{BatchHistory, DEFAULT_RETAINED_BATCHES};
use crate::stream::DirectStream;

/// Spark's `spark.ui.port` default.
pub const DEFAULT_PORT: u16 = 4040;

/// Where the UI listens unless told otherwise: loopback only (Spark binds every
/// interface; a page about your data should not be public by default), on Spark's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4040";

/// Spark's `spark.port.maxRetries` default: a taken port is retried as port+1, port+2, ...
/// this many times ("Service 'SparkUI' could not bind on port 4040. Attempting port 4041.").
pub const PORT_MAX_RETRIES: u16 = 16;

const PAGE_HTML: &str = include_str!("page.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");

/// Binds `HOST:PORT` (`[v6]:PORT` too). Port 0 takes any free port. A taken port is retried
/// upwards [`PORT_MAX_RETRIES`] times, as Spark does; any other error ends the search.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr:?}: expected HOST:PORT"),
        )
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr:?}: {port:?} is not a port number"),
        )
    })?;
    let tries = if port == 0 { 0 } else { PORT_MAX_RETRIES };
    let mut last = None;
    for i in 0..=tries {
        let Some(p) = port.checked_add(i) else { break };
        match TcpListener::bind((host, p)).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                tracing::warn!(
                    "UI could not bind on port {p}; attempting port {}",
                    p.saturating_add(1)
                );
                last = Some(e);
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("bind the UI to {addr}: {e}"),
                ));
            }
        }
    }
    let e = last.map_or_else(|| "no port left".to_string(), |e| e.to_string());
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("bind the UI to {addr} (and {PORT_MAX_RETRIES} ports above it): {e}"),
    ))
}

/// The UI's routes over `history`.
pub fn router(history: BatchHistory) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { static_file("text/html; charset=utf-8", PAGE_HTML) }),
        )
        .route(
            "/static/page.css",
            get(|| async { static_file("text/css; charset=utf-8", PAGE_CSS) }),
        )
        .route(
            "/static/page.js",
            get(|| async { static_file("text/javascript; charset=utf-8", PAGE_JS) }),
        )
        .route("/api/batches", get(api::batches))
        .route("/metrics", get(metrics::metrics))
        .route("/metrics/prometheus", get(metrics::metrics))
        .with_state(history)
}

/// Serves the UI on `listener` in a task of its own until the runtime ends (Spark's UI
/// lives as long as its context); returns the bound address and the task.
pub fn spawn(
    listener: TcpListener,
    history: BatchHistory,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let app = router(history);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("UI server stopped: {e}");
        }
    });
    Ok((addr, task))
}

/// Binds `addr` (see [`bind`]) and serves the UI over a new [`BatchHistory`] of Spark's
/// default [`DEFAULT_RETAINED_BATCHES`] for a stream of `batch_interval`; returns the bound
/// address (the port actually taken, when it was 0 or retried) and the history, to register
/// on the stream as its listener.
pub async fn serve(
    addr: &str,
    batch_interval: std::time::Duration,
) -> io::Result<(SocketAddr, BatchHistory)> {
    let listener = bind(addr).await?;
    let history = BatchHistory::new(batch_interval, DEFAULT_RETAINED_BATCHES);
    let (bound, _task) = spawn(listener, history.clone())?;
    Ok((bound, history))
}

/// [`serve`] for `stream`, with the history registered on it.
pub async fn attach(stream: &mut DirectStream, addr: &str) -> io::Result<SocketAddr> {
    let (bound, history) = serve(addr, stream.config().batch_interval).await?;
    stream.add_streaming_listener(std::sync::Arc::new(history));
    Ok(bound)
}

fn static_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    // Small and compiled in: no caching, so a new binary's page is never mixed with an
    // old script.
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_is_retried_upwards() {
        let first = bind("127.0.0.1:0").await.unwrap();
        let taken = first.local_addr().unwrap().port();
        // The port above may be taken too; any port in Spark's retry window will do.
        let next = bind(&format!("127.0.0.1:{taken}")).await.unwrap();
        let got = next.local_addr().unwrap().port();
        assert!(got > taken && got <= taken + PORT_MAX_RETRIES, "{got}");
    }

    #[tokio::test]
    async fn bad_addresses_are_refused() {
        assert!(bind("4040").await.is_err());
        assert!(bind("127.0.0.1:http").await.is_err());
    }
}
