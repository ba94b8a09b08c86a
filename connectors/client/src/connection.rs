//! One TCP connection to one broker: connect, negotiate versions with ApiVersions, then
//! send requests one at a time and read their responses. A connection carries one request
//! at a time (no pipelining): Kafka processes a connection's requests in order anyway, and
//! the pool in `pool.rs` opens more connections for concurrent callers. A connection that
//! saw a socket, framing or timeout error, or whose request future was dropped half way, is
//! never reused; the pool opens a fresh one instead.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::error::{At, Error, Result};
use crate::frame::{self, FrameError};
use crate::versions::{implemented, Versions};

/// Name sent in ApiVersions v3+. Kafka checks it against `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
const SOFTWARE_NAME: &str = "sluice-client";
/// Version sent in ApiVersions v3+.
const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A negotiated connection to one broker.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
    versions: Versions,
    client_id: StrBytes,
    max_response_bytes: usize,
    /// False once the byte stream may be out of step with request boundaries.
    reusable: bool,
    idle_since: Instant,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions. Failures here are
    /// [`Error::Connect`]: no request of the caller's was sent.
    pub async fn open(addr: &str, config: &ClientConfig) -> Result<Self> {
        let connect_err = |source| Error::Connect {
            addr: addr.to_owned(),
            source,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", config.connect_timeout),
                ))
            })?
            .map_err(connect_err)?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(addr, "cannot set TCP_NODELAY: {e}");
        }
        let mut conn = Self {
            addr: addr.to_owned(),
            stream,
            next_correlation_id: 0,
            versions: Versions::default(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            max_response_bytes: config.max_response_bytes,
            reusable: true,
            idle_since: Instant::now(),
        };
        conn.negotiate(config.connect_timeout)
            .await
            .map_err(|e| match e {
                Error::Io { source, .. } => connect_err(source),
                Error::Timeout { after, .. } => connect_err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no ApiVersions response within {after:?}"),
                )),
                other => other,
            })?;
        tracing::debug!(addr, versions = %conn.versions, "connected");
        Ok(conn)
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

    /// Whether the connection can carry another request.
    pub(crate) fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Whether an idle connection still looks open: the broker has neither closed it nor
    /// sent anything unasked. A non-blocking read of an idle Kafka connection must find
    /// nothing to read.
    pub(crate) fn looks_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            Ok(_) => false, // 0 = closed by the broker; >0 = bytes nobody asked for
        }
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

fn api_key<R: Request>(addr: &str) -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|()| Error::Protocol {
        addr: addr.to_owned(),
        message: format!("unknown api key {}", R::KEY),
    })
}
