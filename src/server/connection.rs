//! One task per client connection: read a frame, check key and version against the
//! supported table, decode, dispatch, encode, write. Requests on a connection are answered in
//! order, one at a time, as Kafka does. Framing and decode errors close the connection with a
//! log line; nothing else does.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::frame::{self, FrameError};
use super::output::{Output, Piece, Sink};
use crate::api::{self, Broker, ConnInfo, Ctx, VersionCheck};
use crate::guard;
use crate::security::sasl::{Authenticator, Step};
use crate::security::tls::TlsAcceptor;
use crate::security::Session;

/// Read buffer per connection; small requests then cost one syscall for several frames.
const READ_BUFFER: usize = 64 * 1024;

/// Serve one connection until the peer closes, a framing error occurs, or shutdown. On a
/// TLS listener (`tls` set) the handshake comes first, and the client certificate (if any)
/// names the session's principal.
pub async fn serve(
    stream: TcpStream,
    info: ConnInfo,
    broker: Arc<Broker>,
    tls: Option<Arc<TlsAcceptor>>,
) {
    let peer = info.peer;
    debug!(%peer, "connection opened");
    let mut session = Session::new(peer, info.listener_name.clone(), info.protocol);
    let Some(acceptor) = tls else {
        let (rd, wr) = stream.into_split();
        serve_stream(rd, Sink::Tcp(wr), &info, &broker, session).await;
        return;
    };
    let token = broker.shutdown.clone();
    let handshake = tokio::select! {
        h = acceptor.handshake(stream) => h,
        _ = token.cancelled() => return,
    };
    let tls_stream = match handshake {
        Ok(s) => s,
        Err(e) => {
            // Kafka logs this at INFO too ("Failed authentication with ... (SSL handshake
            // failed)"): a port scan or a plaintext client is not the broker's fault.
            info!(%peer, listener = %info.listener_name, "failed authentication: TLS handshake failed: {e}");
            return;
        }
    };
    match acceptor.principal(&tls_stream) {
        Ok(p) => session.principal = p,
        Err(e) => {
            info!(%peer, listener = %info.listener_name, "failed authentication: {e}");
            return;
        }
    }
    debug!(%peer, principal = %session.principal, "TLS established");
    let (rd, wr) = tokio::io::split(tls_stream);
    serve_stream(rd, Sink::Tls(wr), &info, &broker, session).await;
}

/// The request loop over an established stream (plain TCP or TLS).
async fn serve_stream<R: AsyncRead + Unpin>(
    rd: R,
    mut wr: Sink,
    info: &ConnInfo,
    broker: &Arc<Broker>,
    mut session: Session,
) {
    let peer = info.peer;
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let token = broker.shutdown.clone();
    let max = broker.config.request_max_bytes;
    let mut out = BytesMut::with_capacity(64 * 1024);
    // SASL listeners authenticate before anything else is served (security::sasl).
    let sasl_settings = broker.sasl.listener(&info.listener_name);
    // A SASL listener without SASL settings would serve unauthenticated clients: close.
    if info.protocol.sasl() && sasl_settings.is_none() {
        warn!(%peer, listener = %info.listener_name, "SASL listener has no SASL settings; closing");
        return;
    }
    let mut sasl = sasl_settings.map(|_| {
        Authenticator::new()
            .with_supported(|k, v| api::check_version(k, v) == VersionCheck::Supported)
    });
    loop {
        // Until authenticated, frames are capped at sasl.server.max.receive.size, as in Kafka.
        let max = match (&sasl, sasl_settings) {
            (Some(a), Some(s)) if a.authenticating() => s.max_receive.min(max),
            _ => max,
        };
        let frame = tokio::select! {
            f = frame::read_frame(&mut rd, max) => f,
            _ = token.cancelled() => break,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            // A client may go away with a reset (SO_LINGER 0, a killed process, a NAT
            // timeout): an ordinary event, not worth a warning.
            Err(FrameError::Io(e)) if is_disconnect(&e) => {
                debug!(%peer, error = %e, "connection reset by the client");
                break;
            }
            Err(e) => {
                warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        if let (Some(auth), Some(settings)) = (sasl.as_mut(), sasl_settings) {
            let step = auth.intercept(settings, &broker.scram, &mut session, &frame);
            match sasl_step(step, &mut out) {
                Ok(None) => {}
                Ok(Some(close)) => {
                    if let Err(e) = wr.write_all(&out).await {
                        debug!(%peer, error = %e, "write failed; closing");
                        break;
                    }
                    if close {
                        break;
                    }
                    continue;
                }
                Err(msg) => {
                    info!(%peer, "closing connection: {msg}");
                    break;
                }
            }
        }
        let ctx = Ctx {
            broker,
            conn: info,
            session: &session,
        };
        // Kafka's TotalTimeMs runs from the request's arrival to its response being sent.
        let started = std::time::Instant::now();
        let peeked = frame::peek(&frame).map(|p| (p.api_key, p.api_version));
        let record = |broker: &Broker| {
            if let Some((key, version)) = peeked {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                broker.metrics.requests.record(key, version, us);
            }
        };
        match handle_frame(&ctx, frame, &mut out).await {
            Ok(Outcome::Buffer) => {
                if let Err(e) = wr.write_all(&out).await {
                    debug!(%peer, error = %e, "write failed; closing");
                    break;
                }
                record(broker);
                if out.capacity() > 4 * 1024 * 1024 {
                    out = BytesMut::with_capacity(64 * 1024);
                }
            }
            Ok(Outcome::Pieces(pieces)) => {
                if let Err(e) = wr.write(&pieces).await {
                    debug!(%peer, error = %e, "write failed; closing");
                    break;
                }
                record(broker);
                // The pieces own what was `out`; start the next response afresh.
                out = BytesMut::with_capacity(64 * 1024);
            }
            Ok(Outcome::Silent) => record(broker),
            Err(msg) => {
                info!(%peer, "closing connection: {msg}");
                break;
            }
        }
    }
    let _ = wr.shutdown().await;
    debug!(%peer, "connection closed");
}

/// Put what the authenticator answered into `out`. `Ok(None)`: serve the frame as usual;
/// `Ok(Some(close))`: send `out`, then close if `close`; `Err`: close now, with the reason.
fn sasl_step(step: Step, out: &mut BytesMut) -> Result<Option<bool>, String> {
    match step {
        Step::Pass => Ok(None),
        Step::Reply {
            key,
            version,
            correlation_id,
            body,
            close,
        } => {
            encode_kind(out, key, correlation_id, version, &body).map_err(|e| e.to_string())?;
            Ok(Some(close))
        }
        Step::Raw(token) => {
            out.clear();
            let len = i32::try_from(token.len()).map_err(|e| e.to_string())?;
            out.put_i32(len);
            out.extend_from_slice(&token);
            Ok(Some(false))
        }
        Step::Close(msg) => Err(msg),
    }
}

/// What to send for a request.
enum Outcome {
    /// `out` holds the response frame.
    Buffer,
    /// The response frame in pieces, some of them segment file regions.
    Pieces(Vec<Piece>),
    /// No response (acks=0 produce).
    Silent,
}

/// Handle one frame. `Err`: close the connection, with the reason for the log.
async fn handle_frame(ctx: &Ctx<'_>, frame: Bytes, out: &mut BytesMut) -> Result<Outcome, String> {
    let p = frame::peek(&frame).ok_or("frame shorter than a request header")?;
    let key = ApiKey::try_from(p.api_key).map_err(|_| format!("unknown api key {}", p.api_key))?;
    let version_check = api::check_version(key, p.api_version);
    if version_check == VersionCheck::ApiVersionsFallback {
        // Kafka answers an ApiVersions it cannot parse at v0 with UNSUPPORTED_VERSION and
        // the full table, so the client can retry at a version both sides know.
        let body = api::meta::api_versions::fallback_response();
        encode_response(out, p.correlation_id, 0, 0, &body).map_err(|e| e.to_string())?;
        return Ok(Outcome::Buffer);
    }
    // Nothing reaches the decoder unchecked, the UNSUPPORTED_VERSION answer included.
    let header_version = key.request_header_version(p.api_version);
    guard::check(&frame, header_version)
        .map_err(|e| format!("malformed {key:?} v{} request: {e}", p.api_version))?;
    if version_check == VersionCheck::Unsupported {
        // Kafka closes the connection here; the project asks for an UNSUPPORTED_VERSION
        // answer where one can be expressed at that version, and a close otherwise.
        return match unsupported_version(key, p.api_version, &frame) {
            Some(resp) => {
                encode_kind(out, key, p.correlation_id, p.api_version, &resp)
                    .map_err(|e| e.to_string())?;
                warn!(api = ?key, version = p.api_version, "unsupported version; answered UNSUPPORTED_VERSION");
                Ok(Outcome::Buffer)
            }
            None => Err(format!("unsupported version {} of {key:?}", p.api_version)),
        };
    }
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| format!("malformed {key:?} v{} header: {e}", p.api_version))?;
    let req = RequestKind::decode(key, &mut body, p.api_version)
        .map_err(|e| format!("malformed {key:?} v{} request: {e}", p.api_version))?;
    let no_response = matches!(&req, RequestKind::Produce(r) if r.acks == 0);
    let reply = api::dispatch(ctx, &header, req)
        .await
        .map_err(|e| format!("{key:?} handler failed: {e}"))?;
    ctx.broker.metrics.requests.record_errors(&reply.body);
    if no_response {
        return Ok(Outcome::Silent);
    }
    let version = header.request_api_version;
    if reply.splices.is_empty() {
        encode_kind(out, key, header.correlation_id, version, &reply.body)
            .map_err(|e| e.to_string())?;
        return Ok(Outcome::Buffer);
    }
    let mut o = Output::new(&reply.splices, std::mem::take(out));
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut o, key.response_header_version(version))
        .map_err(|e| e.to_string())?;
    // Only Fetch registers file regions.
    let ResponseKind::Fetch(body) = &reply.body else {
        return Err(format!("{key:?} response carries file regions"));
    };
    body.encode(&mut o, version).map_err(|e| e.to_string())?;
    o.finish(reply.splices.len())
        .map(Outcome::Pieces)
        .map_err(|e| format!("{key:?} response: {e}"))
}

fn unsupported_version(
    key: ApiKey,
    version: i16,
    frame: &Bytes,
) -> Option<kafka_protocol::messages::ResponseKind> {
    let range = key.valid_versions();
    if version < range.min || version > range.max {
        return None;
    }
    // `handle_frame` has run the guard over the frame.
    let mut body = frame.clone();
    RequestHeader::decode(&mut body, key.request_header_version(version)).ok()?;
    let req = RequestKind::decode(key, &mut body, version).ok()?;
    api::error_response(
        &req,
        kafka_protocol::error::ResponseError::UnsupportedVersion.code(),
    )
}

fn encode_kind(
    out: &mut BytesMut,
    key: ApiKey,
    correlation_id: i32,
    version: i16,
    resp: &kafka_protocol::messages::ResponseKind,
) -> anyhow::Result<()> {
    out.clear();
    out.put_i32(0);
    // ApiVersions responses always use header v0 (KIP-511), which `response_header_version`
    // already says for that key.
    let hv = key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, hv)?;
    resp.encode(out, version)?;
    let len = i32::try_from(out.len() - 4)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_response<E: Encodable>(
    out: &mut BytesMut,
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &E,
) -> anyhow::Result<()> {
    out.clear();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, header_version)?;
    body.encode(out, version)?;
    let len = i32::try_from(out.len() - 4)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Whether a socket error just means the peer went away.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    // UnexpectedEof: a TLS peer that closed without close_notify, as most Kafka clients do.
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}
