//! One connection to one broker: connect (TCP, then TLS for SSL and SASL_SSL), negotiate
//! versions with ApiVersions, authenticate with SASL for the SASL protocols, then send
//! requests one at a time and read their responses. A connection carries one request at a
//! time (no pipelining): Kafka processes a connection's requests in order anyway, and the
//! pool in `pool.rs` opens more connections for concurrent callers. A connection that saw a
//! socket, framing or timeout error, or whose request future was dropped half way, is never
//! reused; the pool opens a fresh one instead.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::ClientConfig;
use crate::error::{At, Error, Result};
use crate::frame::{self, FrameError};
use crate::security::{sasl, SaslConfig, TlsConfig};
use crate::versions::{implemented, Versions};

/// Name sent in ApiVersions v3+. Kafka checks it against `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
const SOFTWARE_NAME: &str = "sluice-client";
/// Version sent in ApiVersions v3+.
const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Share of a SASL session's lifetime after which a pooled connection is not reused. Kafka's
/// client re-authenticates at 85-95% of it; this client opens a new connection instead.
const SESSION_REUSE_PERCENT: u32 = 85;

/// The byte stream under a connection: plain TCP or TLS over TCP.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A negotiated (and, for the SASL protocols, authenticated) connection to one broker.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Stream,
    next_correlation_id: i32,
    versions: Versions,
    client_id: StrBytes,
    max_response_bytes: usize,
    /// False once the byte stream may be out of step with request boundaries.
    reusable: bool,
    idle_since: Instant,
    /// When the SASL session should no longer be relied on (see `SESSION_REUSE_PERCENT`).
    reuse_until: Option<Instant>,
}

impl Connection {
    /// Connects to `addr` (`host:port`), does the TLS handshake if the security protocol
    /// asks for TLS, negotiates API versions and authenticates with SASL if the protocol
    /// asks for it. Failures here are [`Error::Connect`] (retriable; no request of the
    /// caller's was sent) or [`Error::Authentication`] (not retriable).
    pub async fn open(addr: &str, config: &ClientConfig) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            addr: addr.to_owned(),
            source,
        };
        let timed_out = |what: &str| {
            connect_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no {what} within {:?}", config.connect_timeout),
            ))
        };
        let security = &config.security;
        // `Security`'s fields are public; a protocol without its settings must not quietly
        // fall back to plain TCP or to no authentication.
        let tls = match (security.protocol.uses_tls(), &security.tls) {
            (true, None) => {
                return Err(Error::InvalidArgument(format!(
                    "security.protocol {:?} needs TLS settings (Security::tls)",
                    security.protocol
                )))
            }
            (true, Some(tls)) => Some(tls),
            (false, _) => None,
        };
        let sasl_creds = match (security.protocol.uses_sasl(), &security.sasl) {
            (true, None) => {
                return Err(Error::InvalidArgument(format!(
                    "security.protocol {:?} needs SASL credentials (Security::sasl)",
                    security.protocol
                )))
            }
            (true, Some(creds)) => Some(creds),
            (false, _) => None,
        };
        let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connection"))?
            .map_err(connect_err)?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(addr, "cannot set TCP_NODELAY: {e}");
        }
        let stream = match tls {
            Some(tls) => {
                tokio::time::timeout(config.connect_timeout, tls_handshake(addr, tls, tcp))
                    .await
                    .map_err(|_| timed_out("TLS handshake"))??
            }
            None => Stream::Plain(tcp),
        };
        let mut conn = Self {
            addr: addr.to_owned(),
            stream,
            next_correlation_id: 0,
            versions: Versions::default(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            max_response_bytes: config.max_response_bytes,
            reusable: true,
            idle_since: Instant::now(),
            reuse_until: None,
        };
        let tls = matches!(conn.stream, Stream::Tls(_));
        let transport_to_connect = |e| match e {
            // rustls reports an alert the broker sent after the handshake (TLS 1.3 brokers
            // refuse a missing client certificate only then) as InvalidData on the next read.
            Error::Io { source, .. } if tls && source.kind() == std::io::ErrorKind::InvalidData => {
                Error::Authentication {
                    addr: addr.to_owned(),
                    message: format!("TLS: {source}"),
                }
            }
            Error::Io { source, .. } => connect_err(source),
            Error::Timeout { after, api, .. } => connect_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no {api:?} response within {after:?}"),
            )),
            other => other,
        };
        conn.negotiate(config.connect_timeout)
            .await
            .map_err(transport_to_connect)?;
        if let Some(creds) = sasl_creds {
            let lifetime = conn
                .authenticate(creds, config.request_timeout)
                .await
                .map_err(transport_to_connect)?;
            conn.reuse_until =
                lifetime.and_then(|l| Instant::now().checked_add(l * SESSION_REUSE_PERCENT / 100));
        }
        tracing::debug!(addr, versions = %conn.versions, protocol = ?security.protocol, "connected");
        Ok(conn)
    }

    /// Authenticates with `sasl`: SaslHandshake v1 names the mechanism, then
    /// SaslAuthenticate requests carry the tokens of a [`sasl::Conversation`] until it is
    /// over. Returns the session lifetime the broker granted (SaslAuthenticate v1+, Kafka's
    /// `connections.max.reauth.ms`), if it set one: past it the broker closes the connection
    /// on its next request. The outer errors are transport failures; a refusal is
    /// [`Error::Authentication`], with the broker's message (Kafka's is "Authentication
    /// failed: Invalid username or password" and the like, and never echoes the
    /// credentials).
    async fn authenticate(
        &mut self,
        sasl: &SaslConfig,
        timeout: Duration,
    ) -> Result<Option<Duration>> {
        let mut conversation = sasl::Conversation::new(sasl);
        let version = self.version(ApiKey::SaslHandshake)?;
        let handshake = self
            .call(
                version,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(conversation.mechanism())),
                timeout,
            )
            .await?;
        if let Some(e) = ResponseError::try_from_code(handshake.error_code) {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(conversation.refused(
                &self.addr,
                format!(
                    "the broker refused the mechanism ({e:?}); it offers [{}]",
                    offered.join(", ")
                ),
            ));
        }
        let version = self.version(ApiKey::SaslAuthenticate)?;
        let mut token = conversation
            .start()
            .map_err(|why| conversation.refused(&self.addr, why))?;
        loop {
            let resp = self
                .call(
                    version,
                    &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                    timeout,
                )
                .await?;
            if let Some(e) = ResponseError::try_from_code(resp.error_code) {
                let why = match resp.error_message.as_deref() {
                    Some(m) if !m.is_empty() => format!("{m} ({e:?})"),
                    _ => format!("{e:?}"),
                };
                return Err(conversation.refused(&self.addr, why));
            }
            match conversation
                .reply(&resp.auth_bytes)
                .map_err(|why| conversation.refused(&self.addr, why))?
            {
                Some(next) => token = next,
                None => {
                    return Ok(u64::try_from(resp.session_lifetime_ms)
                        .ok()
                        .filter(|ms| *ms > 0)
                        .map(Duration::from_millis))
                }
            }
        }
    }

    /// Sends ApiVersions at our highest version. Kafka answers a version it does not know
    /// with an error body at v0 listing its own ApiVersions range; retry at the lower of the
    /// two maxima, as the Java client does.
    async fn negotiate(&mut self, timeout: Duration) -> Result<()> {
        let (min, max) = implemented(ApiKey::ApiVersions).unwrap_or((0, 0));
        let mut version = max;
        loop {
            let req = if version >= 3 {
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str(SOFTWARE_NAME))
                    .with_client_software_version(StrBytes::from_static_str(SOFTWARE_VERSION))
            } else {
                ApiVersionsRequest::default()
            };
            let body = self
                .exchange(ApiKey::ApiVersions, version, &req, timeout)
                .await?;
            let resp = match frame::decode_body::<ApiVersionsResponse>(
                body.clone(),
                ApiKey::ApiVersions,
                version,
            ) {
                Ok(r) if r.error_code == 0 => r,
                _ => frame::decode_body::<ApiVersionsResponse>(body, ApiKey::ApiVersions, 0)
                    .map_err(|e| self.protocol_error(e))?,
            };
            match ResponseError::try_from_code(resp.error_code) {
                None => {
                    self.versions = Versions::negotiate(
                        resp.api_keys
                            .iter()
                            .map(|k| (k.api_key, k.min_version, k.max_version)),
                    );
                    return Ok(());
                }
                Some(ResponseError::UnsupportedVersion) => {
                    let broker_max = resp
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map_or(0, |k| k.max_version);
                    let next = broker_max.min(version - 1);
                    if next < min {
                        return Err(Error::UnsupportedVersion {
                            addr: self.addr.clone(),
                            api: ApiKey::ApiVersions,
                            client_min: min,
                            client_max: max,
                            broker: format!("..={broker_max}"),
                        });
                    }
                    version = next;
                }
                Some(error) => {
                    return Err(Error::kafka("negotiate api versions", At::default(), error))
                }
            }
        }
    }

    /// The broker address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The versions negotiated with this broker.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The version to send `api` at, or [`Error::UnsupportedVersion`].
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        self.versions
            .require(api)
            .map_err(|n| Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api,
                client_min: n.client_min,
                client_max: n.client_max,
                broker: n.broker,
            })
    }

    /// Whether the connection can carry another request: it is in step with request
    /// boundaries and its SASL session (if any) is not near its end.
    pub(crate) fn is_reusable(&self) -> bool {
        self.reusable && self.reuse_until.is_none_or(|t| Instant::now() < t)
    }

    /// Whether an idle connection still looks open: the broker has neither closed it nor
    /// sent anything unasked. A non-blocking peek at the TCP socket of an idle Kafka
    /// connection must find nothing to read (under TLS, bytes there would be an alert such
    /// as close_notify, or data nobody asked for).
    pub(crate) fn looks_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        // Pending = nothing to read; Ready(0) = closed by the broker; Ready(>0) = bytes
        // nobody asked for.
        matches!(
            self.stream.tcp().poll_peek(&mut cx, &mut buf),
            Poll::Pending
        )
    }

    /// How long the connection has been unused.
    pub(crate) fn idle_for(&self) -> Duration {
        self.idle_since.elapsed()
    }

    /// Sends `request` at `version` and waits up to `timeout` for its response.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = api_key::<R>(&self.addr)?;
        let body = self.exchange(api, version, request, timeout).await?;
        frame::decode_body(body, api, version).map_err(|e| {
            self.reusable = false;
            self.protocol_error(e)
        })
    }

    /// Sends `request` and waits only for it to be written: for Produce with `acks=0`, to
    /// which Kafka sends no response.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<()> {
        let api = api_key::<R>(&self.addr)?;
        let correlation_id = self.next_correlation_id();
        let buf = frame::encode_request(api, version, correlation_id, &self.client_id, request)
            .map_err(|e| self.protocol_error(e))?;
        self.reusable = false;
        match tokio::time::timeout(timeout, self.stream.write_all(&buf)).await {
            Err(_) => Err(self.timeout_error(api, timeout)),
            Ok(Err(source)) => Err(self.io_error(api, source)),
            Ok(Ok(())) => {
                self.reusable = true;
                self.idle_since = Instant::now();
                Ok(())
            }
        }
    }

    /// Writes one request and reads one response frame; returns the body after the header.
    async fn exchange<T: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &T,
        timeout: Duration,
    ) -> Result<Bytes> {
        let correlation_id = self.next_correlation_id();
        let buf = frame::encode_request(api, version, correlation_id, &self.client_id, body)
            .map_err(|e| self.protocol_error(e))?;
        // Until the response is read in full the stream is mid-exchange; if this future is
        // dropped now, the flag stays false and the pool discards the connection.
        self.reusable = false;
        let max = self.max_response_bytes;
        let stream = &mut self.stream;
        let round_trip = async move {
            stream.write_all(&buf).await?;
            frame::read_frame(stream, max).await
        };
        let frame = match tokio::time::timeout(timeout, round_trip).await {
            Err(_) => return Err(self.timeout_error(api, timeout)),
            Ok(Err(FrameError::Io(source))) => return Err(self.io_error(api, source)),
            Ok(Err(e)) => return Err(self.protocol_error(e)),
            Ok(Ok(frame)) => frame,
        };
        let body = frame::split_response(frame, api, version, correlation_id)
            .map_err(|e| self.protocol_error(e))?;
        self.reusable = true;
        self.idle_since = Instant::now();
        Ok(body)
    }

    fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = id.wrapping_add(1);
        id
    }

    fn protocol_error(&self, e: FrameError) -> Error {
        Error::Protocol {
            addr: self.addr.clone(),
            message: e.to_string(),
        }
    }

    fn io_error(&self, api: ApiKey, source: std::io::Error) -> Error {
        Error::Io {
            addr: self.addr.clone(),
            api,
            source,
        }
    }

    fn timeout_error(&self, api: ApiKey, after: Duration) -> Error {
        Error::Timeout {
            addr: self.addr.clone(),
            api,
            after,
        }
    }
}

/// The TLS handshake. The server name checked against the broker's certificate (and sent as
/// SNI when it is a DNS name) is the host part of `addr`, as Kafka's client uses the host it
/// connects to.
async fn tls_handshake(addr: &str, tls: &TlsConfig, tcp: TcpStream) -> Result<Stream> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::Authentication {
        addr: addr.to_owned(),
        message: format!("TLS: {host:?} is not a valid server name: {e}"),
    })?;
    match TlsConnector::from(tls.rustls()).connect(name, tcp).await {
        Ok(s) => Ok(Stream::Tls(Box::new(s))),
        // rustls reports its own failures (untrusted certificate, wrong name, an alert from
        // the broker) as InvalidData; Kafka treats those as SslAuthenticationException, not
        // retriable. Anything else is the socket failing.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(Error::Authentication {
            addr: addr.to_owned(),
            message: format!("TLS handshake: {e}"),
        }),
        Err(e) => Err(Error::Connect {
            addr: addr.to_owned(),
            source: e,
        }),
    }
}

fn api_key<R: Request>(addr: &str) -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|()| Error::Protocol {
        addr: addr.to_owned(),
        message: format!("unknown api key {}", R::KEY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{Security, SecurityProtocol};

    #[tokio::test]
    async fn a_protocol_without_its_settings_is_refused_before_connecting() {
        for protocol in [
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            let config = ClientConfig::new(["127.0.0.1:1"]).with_security(Security {
                protocol,
                ..Security::default()
            });
            let err = Connection::open("127.0.0.1:1", &config).await.unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument(_)),
                "{protocol:?}: {err}"
            );
        }
    }
}
