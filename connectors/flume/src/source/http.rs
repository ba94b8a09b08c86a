//! The `http` source (Flume's `HTTPSource` with its default `JSONHandler`), and the small
//! HTTP/1.1 server loop ([`serve`]) that HTTP monitoring shares.
//!
//! Keys: **port**, `bind` 0.0.0.0, `handler` `org.apache.flume.source.http.JSONHandler`
//! (the only handler implemented; `handler.*` settings are accepted and unused), `ssl` /
//! `enableSSL` false (true is refused: TLS is not implemented).
//!
//! One request is one `process_event_batch` (one transaction per channel). The body must be
//! a JSON array, even for one event: `[{"headers":{"k":"v"},"body":"text"}, ...]`. The
//! charset comes from the `Content-Type` `charset=` parameter (UTF-8 when absent); only
//! UTF-8, UTF-16 and UTF-32 are accepted (UTF-16/32 big-endian unless a BOM says otherwise,
//! as Java decodes them), and each body is stored encoded in that charset, as Flume's
//! `JSONEvent.getBody` does (`UTF-16` therefore with a big-endian BOM). As Gson does, numbers
//! and booleans are accepted where strings are expected; a null or missing body is empty.
//!
//! Status codes, as Flume's servlet: 200 on success; 400 `Bad request from client. Request
//! has invalid JSON Syntax.` for text that is not a JSON array of event objects; 500
//! `Deserializer threw unexpected exception. ...` for any other handler failure (an
//! unsupported charset, an empty body, `null`); 503 `Error appending event to channel.
//! Channel might be full.` when a channel refuses the batch. GET and HEAD are handled
//! exactly like POST; TRACE and OPTIONS get 403, other methods 405. Request bodies over
//! [`MAX_REQUEST_BYTES`] get 413 (Flume has no limit).
//!
//! Counters as Flume's: `AppendBatchReceivedCount`/`AppendBatchAcceptedCount` per request,
//! `EventReadFail` for 400/500 handler failures, `ChannelWriteFail` (by the processor) for
//! 503.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::netcat::{port, resolve_bind};
use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// The largest request body accepted (Flume/Jetty set none; this bounds memory).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// Flume's default (and only implemented) handler class.
const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";

/// A response with a body.
pub(crate) fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// Serve HTTP/1.1 on `listener` with `handler` until `shutdown` is cancelled; then stop
/// accepting and let requests in progress finish.
pub(crate) async fn serve<H, Fut>(listener: TcpListener, shutdown: CancellationToken, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("http server on {:?}: accept failed: {e}", listener.local_addr().ok());
                    continue;
                }
            },
        };
        let h = handler.clone();
        let token = shutdown.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(h(req, peer).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("http connection from {peer}: {e}");
                    }
                }
                _ = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    while conns.join_next().await.is_some() {}
}

/// Build the source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let port = port(ctx, "port")?;
    let bind = ctx.string("bind", "0.0.0.0");
    let handler = ctx.string("handler", JSON_HANDLER);
    if handler != JSON_HANDLER && handler != "JSONHandler" {
        return Err(ctx.error(
            "handler",
            &format!("handler {handler} is not implemented (only {JSON_HANDLER})"),
        ));
    }
    for key in ["ssl", "enableSSL"] {
        if ctx.bool(key, false)? {
            return Err(ctx.error(key, "TLS is not implemented by sluice-flume's http source"));
        }
    }
    Ok(Box::new(HttpSource { bind, port }))
}

struct HttpSource {
    bind: String,
    port: u16,
}

#[async_trait]
impl Source for HttpSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let addr = resolve_bind(&self.bind, self.port).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("http source {}: cannot bind {addr}: {e}", ctx.name))?;
        tracing::info!(
            "source {}: http listening on {}",
            ctx.name,
            listener.local_addr().unwrap_or(addr)
        );
        let shutdown = ctx.shutdown.clone();
        serve(listener, shutdown, move |req, peer| {
            let ctx = ctx.clone();
            async move { handle(req, peer, &ctx).await }
        })
        .await;
        Ok(())
    }
}

/// Which charset a request body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonCharset {
    Utf8,
    Utf16,
    Utf32,
}

/// Why the handler could not produce events.
#[derive(Debug, PartialEq, Eq)]
enum HandlerError {
    /// Flume's `HTTPBadRequestException` → 400.
    BadRequest(String),
    /// Any other handler exception → 500.
    Other(String),
}

fn request_charset(content_type: Option<&str>) -> Result<JsonCharset, HandlerError> {
    let Some(ct) = content_type else {
        return Ok(JsonCharset::Utf8);
    };
    let cs = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    });
    match cs {
        None => Ok(JsonCharset::Utf8),
        Some(c) if c.eq_ignore_ascii_case("utf-8") => Ok(JsonCharset::Utf8),
        Some(c) if c.eq_ignore_ascii_case("utf-16") => Ok(JsonCharset::Utf16),
        Some(c) if c.eq_ignore_ascii_case("utf-32") => Ok(JsonCharset::Utf32),
        Some(c) => Err(HandlerError::Other(format!(
            "unsupported character set {c:?} in request: JSON handler supports UTF-8, UTF-16 and UTF-32 only."
        ))),
    }
}

fn decode(body: &[u8], cs: JsonCharset) -> String {
    match cs {
        JsonCharset::Utf8 => String::from_utf8_lossy(body).into_owned(),
        JsonCharset::Utf16 => {
            let (le, data) = match body {
                [0xFF, 0xFE, rest @ ..] => (true, rest),
                [0xFE, 0xFF, rest @ ..] => (false, rest),
                _ => (false, body),
            };
            let units = data
                .chunks(2)
                .map(|c| match c {
                    [a, b] if le => u16::from_le_bytes([*a, *b]),
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0xFFFD,
                })
                .collect::<Vec<u16>>();
            char::decode_utf16(units)
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect()
        }
        JsonCharset::Utf32 => {
            let (le, data) = match body {
                [0xFF, 0xFE, 0, 0, rest @ ..] => (true, rest),
                [0, 0, 0xFE, 0xFF, rest @ ..] => (false, rest),
                _ => (false, body),
            };
            data.chunks(4)
                .map(|c| {
                    let v = match c {
                        [a, b, c, d] if le => u32::from_le_bytes([*a, *b, *c, *d]),
                        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                        _ => 0xFFFD,
                    };
                    char::from_u32(v).unwrap_or('\u{FFFD}')
                })
                .collect()
        }
    }
}

/// Java's `String.getBytes(charset)`: UTF-16 with a big-endian BOM, UTF-32 big-endian.
fn encode(text: &str, cs: JsonCharset) -> Vec<u8> {
    match cs {
        JsonCharset::Utf8 => text.as_bytes().to_vec(),
        JsonCharset::Utf16 => {
            if text.is_empty() {
                return Vec::new();
            }
            let mut v = vec![0xFE, 0xFF];
            v.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
            v
        }
        JsonCharset::Utf32 => text
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect(),
    }
}

/// A JSON scalar as Gson reads it into a `String`; None for null; Err for objects/arrays.
fn gson_string(v: &serde_json::Value) -> Result<Option<String>, ()> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.clone())),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(()),
    }
}

/// Flume's `JSONHandler.getEvents`.
fn json_events(body: &[u8], content_type: Option<&str>) -> Result<Vec<Event>, HandlerError> {
    let cs = request_charset(content_type)?;
    let text = decode(body, cs);
    let bad = || HandlerError::BadRequest("Request has invalid JSON Syntax.".to_string());
    if text.trim().is_empty() {
        // Gson returns null for an empty document; Flume then fails with a
        // NullPointerException (500).
        return Err(HandlerError::Other(
            "the request has no JSON content".to_string(),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => {
            return Err(HandlerError::Other("the request is JSON null".to_string()))
        }
        _ => return Err(bad()),
    };
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let obj = match item {
            serde_json::Value::Object(o) => o,
            serde_json::Value::Null => {
                return Err(HandlerError::Other("an event is JSON null".to_string()))
            }
            _ => return Err(bad()),
        };
        let mut e = Event::default();
        if let Some(h) = obj.get("headers") {
            match h {
                serde_json::Value::Null => {}
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        if let Some(s) = gson_string(v).map_err(|_| bad())? {
                            e.headers.insert(k.clone(), s);
                        }
                    }
                }
                _ => return Err(bad()),
            }
        }
        if let Some(b) = obj.get("body") {
            if let Some(s) = gson_string(b).map_err(|_| bad())? {
                e.body = encode(&s, cs).into();
            }
        }
        events.push(e);
    }
    Ok(events)
}

fn text(status: StatusCode, msg: String) -> Response<Full<Bytes>> {
    response(status, "text/plain;charset=utf-8", msg)
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    ctx: &SourceContext,
) -> Response<Full<Bytes>> {
    match *req.method() {
        Method::GET | Method::POST | Method::HEAD => {}
        Method::TRACE | Method::OPTIONS => return text(StatusCode::FORBIDDEN, String::new()),
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("HTTP method {} is not supported", req.method()),
            )
        }
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::warn!("source {}: request from {peer} not read: {e}", ctx.name);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body not read: {e}"),
            );
        }
    };
    let events = match json_events(&body, content_type.as_deref()) {
        Ok(ev) => ev,
        Err(HandlerError::BadRequest(m)) => {
            tracing::warn!(
                "source {}: received bad request from client {peer}: {m}",
                ctx.name
            );
            ctx.counters.inc("EventReadFail");
            return text(
                StatusCode::BAD_REQUEST,
                format!("Bad request from client. {m}"),
            );
        }
        Err(HandlerError::Other(m)) => {
            tracing::warn!(
                "source {}: deserializer threw unexpected exception for {peer}: {m}",
                ctx.name
            );
            ctx.counters.inc("EventReadFail");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Deserializer threw unexpected exception. {m}"),
            );
        }
    };
    ctx.counters.inc("AppendBatchReceivedCount");
    match ctx.processor.process_event_batch(events).await {
        Ok(()) => {
            ctx.counters.inc("AppendBatchAcceptedCount");
            text(StatusCode::OK, String::new())
        }
        Err(e) => {
            tracing::warn!(
                "source {}: error appending event to channel; channel might be full; consider increasing the channel capacity or make sure the sinks perform faster: {e}",
                ctx.name
            );
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Error appending event to channel. Channel might be full.{e}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_handler_like_flume() {
        let ev = json_events(
            br#"[{"headers":{"a":"b","n":1},"body":"hi"},{"body":null}]"#,
            None,
        )
        .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].headers["a"], "b");
        assert_eq!(ev[0].headers["n"], "1");
        assert_eq!(&ev[0].body[..], b"hi");
        assert!(ev[1].body.is_empty());
        assert!(matches!(
            json_events(br#"{"body":"x"}"#, None),
            Err(HandlerError::BadRequest(_))
        ));
        assert!(matches!(
            json_events(b"[{", None),
            Err(HandlerError::BadRequest(_))
        ));
        assert!(matches!(
            json_events(b"", None),
            Err(HandlerError::Other(_))
        ));
        assert!(matches!(
            json_events(b"[]", Some("application/json; charset=ISO-8859-1")),
            Err(HandlerError::Other(_))
        ));
    }

    #[test]
    fn utf16_bodies_round_trip_as_java() {
        let req: Vec<u8> =
            r#"[{"body":"é"}]"#.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let ev = json_events(&req, Some("application/json;charset=UTF-16")).unwrap();
        assert_eq!(&ev[0].body[..], &[0xFE, 0xFF, 0x00, 0xE9]);
    }
}
