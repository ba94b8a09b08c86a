//! Flume's HTTP monitoring (`-Dflume.monitoring.type=http -Dflume.monitoring.port=P`,
//! Flume's `HTTPMetricsServer`): the counters of every component as one JSON object,
//! `{"SOURCE.r1":{...},"CHANNEL.c1":{...},"SINK.k1":{...}}`, every value a string.
//!
//! Paths as Flume serves them: `/metrics` (any case) → the JSON with
//! `Content-Type: application/json;charset=utf-8`; `/` → a short HTML pointer to `./metrics`;
//! anything else → 404. TRACE and OPTIONS → 403. Any other method is treated like GET.
//!
//! One path Flume does not have: `/metrics/prometheus` (any case) → the same counters in
//! Prometheus's text format (see `prometheus`). A path of its own rather than content
//! negotiation on `/metrics`, so what Flume's JSON clients get never depends on their
//! `Accept` header; it is the path Spark 3's `PrometheusServlet` uses, and a scrape config
//! needs one line, `metrics_path: /metrics/prometheus`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::counters::Counters;
use crate::prometheus;
use crate::source::http::{response, serve as serve_http};

/// The JSON document of `counters` (Flume's `JMXPollUtil.getAllMBeans` as Gson prints it).
pub fn metrics_json(counters: &[Arc<Counters>]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for c in counters {
        let (name, value) = c.to_json();
        map.insert(name, value);
    }
    serde_json::Value::Object(map)
}

/// Bind `bind` (the error is returned) and serve the counters until the process exits.
pub async fn serve(bind: SocketAddr, counters: Vec<Arc<Counters>>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("HTTP monitoring cannot bind {bind}: {e}"))?;
    serve_on(listener, counters, CancellationToken::new()).await;
    Ok(())
}

/// Serve the counters on an already bound listener until `shutdown` is cancelled.
pub async fn serve_on(
    listener: TcpListener,
    counters: Vec<Arc<Counters>>,
    shutdown: CancellationToken,
) {
    if let Ok(a) = listener.local_addr() {
        tracing::info!("HTTP monitoring listening on {a}");
    }
    let counters = Arc::new(counters);
    serve_http(listener, shutdown, move |req, _peer| {
        let counters = counters.clone();
        async move {
            if req.method() == Method::TRACE || req.method() == Method::OPTIONS {
                return response(StatusCode::FORBIDDEN, "text/plain;charset=utf-8", "");
            }
            match req.uri().path() {
                "/" => response(
                    StatusCode::OK,
                    "text/html;charset=utf-8",
                    "For Flume metrics please click <a href = \"./metrics\"> here</a>.",
                ),
                p if p.eq_ignore_ascii_case("/metrics") => {
                    let body = metrics_json(&counters).to_string();
                    response(StatusCode::OK, "application/json;charset=utf-8", body)
                }
                p if p.eq_ignore_ascii_case("/metrics/prometheus") => response(
                    StatusCode::OK,
                    prometheus::CONTENT_TYPE,
                    prometheus::prometheus_text(&counters),
                ),
                _ => response(
                    StatusCode::NOT_FOUND,
                    "text/plain;charset=utf-8",
                    "Not Found",
                ),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Kind;

    #[test]
    fn json_names_components_like_flume() {
        let s = Arc::new(Counters::new(Kind::Source, "r1"));
        s.add("EventAcceptedCount", 3);
        let k = Arc::new(Counters::new(Kind::Sink, "k1"));
        let v = metrics_json(&[s, k]);
        assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "3");
        assert_eq!(v["SINK.k1"]["Type"], "SINK");
    }
}
