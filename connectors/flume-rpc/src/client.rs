//! The requestor side: [`RpcClient`] (one connection, any protocol, Avro's Java `Requestor`
//! handshake) and the typed clients on top of it, [`AvroSourceClient`] (what Flume's avro sink
//! is) and [`SparkSinkClient`] (what Spark's polling receiver is).
//!
//! Handshake, done lazily on the first call of a connection:
//! 1. send `clientProtocol = null` and, as `serverHash`, the hash last seen from that address
//!    for this protocol (a process-wide cache, as Java's `REMOTE_HASHES`), else our own hash;
//! 2. `NONE`: remember the server's hash and resend the same request with our protocol text;
//! 3. `BOTH`/`CLIENT`: the connection is established; later requests carry no handshake.
//!
//! A client makes one call at a time. After an IO error, a timeout or a reply it cannot
//! parse, the connection is unusable (its state is unknown) and every later call fails at
//! once; there is no automatic reconnect.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::codec::{DecodeError, Reader, Writer};
use crate::conn::{set_nodelay, Compression, Conn, ConnError, Io};
use crate::event::{encode_event, write_events, EventBatch, Status};
use crate::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
use crate::protocol::Protocol;
use crate::server::DEFAULT_MAX_FRAME_BYTES;
use crate::tls::ClientTls;
use crate::zlib_io::ZlibStream;
use crate::Event;

/// Flume's `connect-timeout` and `request-timeout` defaults (20 s each).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// (address as given, protocol full name) → the server hash last seen there.
type HashCache = HashMap<(String, String), [u8; 16]>;

/// Server hashes seen per address and protocol, for every client in the process.
static SERVER_HASHES: LazyLock<Mutex<HashCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached_server_hash(peer: &str, protocol: &Protocol) -> Option<[u8; 16]> {
    SERVER_HASHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&(peer.to_string(), protocol.full_name()))
        .copied()
}

fn cache_server_hash(peer: &str, protocol: &Protocol, hash: [u8; 16]) {
    SERVER_HASHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert((peer.to_string(), protocol.full_name()), hash);
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed to open the TCP connection (Flume's `connect-timeout`, 20 s).
    pub connect_timeout: Duration,
    /// Time allowed for one call, handshake included (Flume's `request-timeout`, 20 s).
    pub request_timeout: Duration,
    /// Stream compression; must match the server's.
    pub compression: Compression,
    /// TLS (Flume's `ssl = true`), completed within `connect_timeout` by [`RpcClient::connect`].
    pub tls: Option<ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: DEFAULT_TIMEOUT,
            request_timeout: DEFAULT_TIMEOUT,
            compression: Compression::None,
            tls: None,
        }
    }
}

/// Why a call failed. Every message names the peer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Connecting, reading or writing failed (the message starts with the peer address).
    #[error("{0}")]
    Io(io::Error),
    /// The connect or the call took too long; the connection is not used again.
    #[error("{0}")]
    Timeout(String),
    /// The peer broke the protocol: bad frame, wrong serial, unexpected handshake, another
    /// protocol, an undecodable reply; or the connection is unusable after an earlier error.
    #[error("{0}")]
    Protocol(String),
    /// The server answered with an error (Avro's system error string), prefixed by its address.
    #[error("{0}")]
    Remote(String),
    /// A datum could not be decoded.
    #[error("undecodable datum: {0}")]
    Decode(#[from] DecodeError),
}

impl RpcError {
    fn io(peer: &str, what: &str, e: &io::Error) -> RpcError {
        RpcError::Io(io::Error::new(e.kind(), format!("{peer}: {what}: {e}")))
    }
}

/// Opens the TCP connection and, with TLS, completes the handshake.
async fn open(addr: &str, opts: &ClientOptions) -> Result<Conn, RpcError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| RpcError::io(addr, "connecting", &e))?;
    let peer_addr = stream
        .peer_addr()
        .map_err(|e| RpcError::io(addr, "connecting", &e))?;
    let Some(tls) = &opts.tls else {
        return Ok(Conn::new(
            stream,
            peer_addr,
            opts.compression,
            DEFAULT_MAX_FRAME_BYTES,
        ));
    };
    set_nodelay(&stream, peer_addr);
    // With deflate too, zlib goes under TLS, as in Flume (see `zlib_io`).
    let stream: Box<dyn Io> = match opts.compression {
        Compression::None => Box::new(stream),
        Compression::Deflate { level } => Box::new(ZlibStream::new(stream, level)),
    };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.0));
    let stream = connector
        .connect(ClientTls::server_name(host), stream)
        .await
        .map_err(|e| RpcError::io(addr, "TLS handshake", &e))?;
    Ok(Conn::over(
        Box::new(stream),
        peer_addr,
        Compression::None,
        DEFAULT_MAX_FRAME_BYTES,
    ))
}

/// One connection speaking one protocol; the building block of the typed clients.
pub struct RpcClient {
    conn: Conn,
    peer: String,
    protocol: Arc<Protocol>,
    opts: ClientOptions,
    established: bool,
    send_text: bool,
    serial: i32,
    broken: Option<String>,
    server_hash_guess: Option<[u8; 16]>,
    handshakes: Vec<HandshakeMatch>,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("peer", &self.peer)
            .field("protocol", &self.protocol.full_name())
            .field("established", &self.established)
            .field("broken", &self.broken)
            .finish()
    }
}

impl RpcClient {
    /// Opens a connection to `addr` (`host:port`). No bytes are sent until the first call.
    pub async fn connect(
        addr: &str,
        protocol: Arc<Protocol>,
        opts: ClientOptions,
    ) -> Result<RpcClient, RpcError> {
        let limit = opts.connect_timeout;
        let conn = match tokio::time::timeout(limit, open(addr, &opts)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(RpcError::Timeout(format!(
                    "{addr}: connect timed out after {limit:?}"
                )))
            }
        };
        Ok(RpcClient {
            conn,
            peer: addr.to_string(),
            protocol,
            opts,
            established: false,
            send_text: false,
            serial: 0,
            broken: None,
            server_hash_guess: None,
            handshakes: Vec::new(),
        })
    }

    /// The address this client was given.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> &Arc<Protocol> {
        &self.protocol
    }

    /// Use `hash` as the guess of the server's hash in the next handshake, instead of the
    /// cached or own one (to test the `CLIENT` path).
    pub fn set_server_hash_guess(&mut self, hash: [u8; 16]) {
        self.server_hash_guess = Some(hash);
    }

    /// Every handshake verdict received on this connection, in order (e.g. `[None, Client]`
    /// after a resend).
    pub fn handshakes(&self) -> &[HandshakeMatch] {
        &self.handshakes
    }

    /// Whether the handshake has succeeded on this connection.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Sends an empty message name: completes the handshake if it is not done, else a no-op
    /// round trip.
    pub async fn ping(&mut self) -> Result<(), RpcError> {
        self.call("", &[]).await.map(|_| ())
    }

    /// Calls `message` with its already-encoded parameters; returns the encoded result datum.
    pub async fn call(&mut self, message: &str, params: &[u8]) -> Result<Vec<u8>, RpcError> {
        if let Some(why) = &self.broken {
            return Err(RpcError::Protocol(format!(
                "{}: connection unusable after an earlier error: {why}",
                self.peer
            )));
        }
        let limit = self.opts.request_timeout;
        let outcome = match tokio::time::timeout(limit, self.call_inner(message, params)).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::Timeout(format!(
                "{}: {message} timed out after {limit:?}",
                self.peer
            ))),
        };
        if let Err(e) = &outcome {
            if !matches!(e, RpcError::Remote(_)) {
                self.broken = Some(e.to_string());
            }
        }
        outcome
    }

    async fn call_inner(&mut self, message: &str, params: &[u8]) -> Result<Vec<u8>, RpcError> {
        // At most two rounds: a NONE answer asks for one resend with our protocol text.
        for _round in 0..2 {
            let with_handshake = !self.established;
            let mut w = Writer::new();
            if with_handshake {
                let own = self.protocol.md5();
                let server_hash = self
                    .server_hash_guess
                    .take()
                    .or_else(|| cached_server_hash(&self.peer, &self.protocol))
                    .unwrap_or(own);
                HandshakeRequest {
                    client_hash: own,
                    client_protocol: self.send_text.then(|| self.protocol.text().to_string()),
                    server_hash,
                }
                .encode(&mut w);
            }
            w.empty_map(); // call metadata
            w.string(message);
            w.raw(params);
            self.serial = self.serial.wrapping_add(1);
            let serial = self.serial;
            self.conn
                .write_frame(serial, &w.into_inner())
                .await
                .map_err(|e| RpcError::io(&self.peer, "sending a request", &e))?;
            let frame = match self.conn.read_frame().await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(RpcError::Protocol(format!(
                        "{}: connection closed before the reply to {message:?}",
                        self.peer
                    )))
                }
                Err(ConnError::Io(e)) => {
                    return Err(RpcError::io(&self.peer, "reading a reply", &e))
                }
                Err(e) => return Err(RpcError::Protocol(format!("{}: {e}", self.peer))),
            };
            if frame.serial != serial {
                return Err(RpcError::Protocol(format!(
                    "{}: reply serial {} to request {serial}",
                    self.peer, frame.serial
                )));
            }
            let mut r = Reader::new(&frame.payload);
            if with_handshake {
                let resp = HandshakeResponse::decode(&mut r).map_err(|e| self.bad_reply(e))?;
                self.handshakes.push(resp.matched);
                if resp.matched != HandshakeMatch::Both {
                    self.learn_server(&resp)?;
                }
                if resp.matched == HandshakeMatch::None {
                    if self.send_text {
                        return Err(RpcError::Protocol(format!(
                            "{}: server refused our protocol text (handshake NONE twice)",
                            self.peer
                        )));
                    }
                    self.send_text = true;
                    continue;
                }
                self.established = true;
                self.send_text = false;
            }
            if message.is_empty() {
                return Ok(Vec::new());
            }
            r.skip_bytes_map("response metadata")
                .map_err(|e| self.bad_reply(e))?;
            if r.boolean("error flag").map_err(|e| self.bad_reply(e))? {
                // Our protocols declare no errors: the union is the system one, ["string"].
                r.index(1, "error union").map_err(|e| self.bad_reply(e))?;
                let msg = r.string("error").map_err(|e| self.bad_reply(e))?;
                return Err(RpcError::Remote(format!("{}: {msg}", self.peer)));
            }
            return Ok(r.rest().to_vec());
        }
        Err(RpcError::Protocol(format!(
            "{}: handshake did not complete",
            self.peer
        )))
    }

    /// Checks and caches the server's protocol and hash from a non-BOTH handshake reply.
    fn learn_server(&mut self, resp: &HandshakeResponse) -> Result<(), RpcError> {
        let (Some(text), Some(hash)) = (&resp.server_protocol, resp.server_hash) else {
            return Err(RpcError::Protocol(format!(
                "{}: handshake {:?} without the server's protocol and hash",
                self.peer, resp.matched
            )));
        };
        let theirs =
            Protocol::parse(text).map_err(|e| RpcError::Protocol(format!("{}: {e}", self.peer)))?;
        self.protocol
            .check_same(&theirs)
            .map_err(|e| RpcError::Protocol(format!("{}: {e}", self.peer)))?;
        cache_server_hash(&self.peer, &self.protocol, hash);
        Ok(())
    }

    fn bad_reply(&self, e: DecodeError) -> RpcError {
        RpcError::Protocol(format!("{}: undecodable reply: {e}", self.peer))
    }

    /// Decodes a whole result datum with `f`.
    fn decode_result<T>(
        &mut self,
        bytes: &[u8],
        what: &str,
        f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, RpcError> {
        let mut r = Reader::new(bytes);
        let out = f(&mut r).and_then(|v| r.finish(what).map(|()| v));
        out.map_err(|e| {
            let err = self.bad_reply(e);
            self.broken = Some(err.to_string());
            err
        })
    }
}

/// A client of Flume's avro source (`AvroSourceProtocol`): what Flume's avro sink does.
#[derive(Debug)]
pub struct AvroSourceClient {
    rpc: RpcClient,
}

impl AvroSourceClient {
    /// Connects to an avro source at `addr` (`host:port`). The handshake happens on the first
    /// call; reconnecting after an error is the caller's job.
    pub async fn connect(addr: &str, opts: ClientOptions) -> Result<Self, RpcError> {
        Ok(AvroSourceClient {
            rpc: RpcClient::connect(addr, Protocol::avro_source(), opts).await?,
        })
    }

    /// Wraps a connection that speaks a variant text of `AvroSourceProtocol`.
    pub fn from_rpc(rpc: RpcClient) -> Result<Self, RpcError> {
        Protocol::avro_source()
            .check_same(rpc.protocol())
            .map_err(|e| RpcError::Protocol(format!("{}: {e}", rpc.peer())))?;
        Ok(AvroSourceClient { rpc })
    }

    /// The underlying connection.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// `Status append(AvroFlumeEvent event)`.
    pub async fn append(&mut self, e: &Event) -> Result<Status, RpcError> {
        let reply = self.rpc.call("append", &encode_event(e)).await?;
        self.rpc
            .decode_result(&reply, "append result", Status::decode)
    }

    /// `Status appendBatch(array<AvroFlumeEvent> events)`, all of `es` in one call.
    pub async fn append_batch(&mut self, es: &[Event]) -> Result<Status, RpcError> {
        let mut w = Writer::new();
        write_events(&mut w, es);
        let reply = self.rpc.call("appendBatch", &w.into_inner()).await?;
        self.rpc
            .decode_result(&reply, "appendBatch result", Status::decode)
    }
}

/// A client of Spark's SparkSink (`SparkFlumeProtocol`): what Spark's polling receiver does.
#[derive(Debug)]
pub struct SparkSinkClient {
    rpc: RpcClient,
}

impl SparkSinkClient {
    /// Connects to a SparkSink at `addr` (`host:port`).
    pub async fn connect(addr: &str, opts: ClientOptions) -> Result<Self, RpcError> {
        Ok(SparkSinkClient {
            rpc: RpcClient::connect(addr, Protocol::spark_flume(), opts).await?,
        })
    }

    /// The underlying connection.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// `EventBatch getEventBatch(int n)`. A non-empty `error_msg` is the sink's way of saying
    /// there is no batch; it is returned as is.
    pub async fn get_event_batch(&mut self, n: i32) -> Result<EventBatch, RpcError> {
        let mut w = Writer::new();
        w.int(n);
        let reply = self.rpc.call("getEventBatch", &w.into_inner()).await?;
        self.rpc
            .decode_result(&reply, "getEventBatch result", EventBatch::decode)
    }

    /// `void ack(string sequenceNumber)`: the sink commits that batch.
    pub async fn ack(&mut self, seq: &str) -> Result<(), RpcError> {
        self.void_call("ack", seq).await
    }

    /// `void nack(string sequenceNumber)`: the sink rolls that batch back for redelivery.
    pub async fn nack(&mut self, seq: &str) -> Result<(), RpcError> {
        self.void_call("nack", seq).await
    }

    async fn void_call(&mut self, message: &str, seq: &str) -> Result<(), RpcError> {
        let mut w = Writer::new();
        w.string(seq);
        let reply = self.rpc.call(message, &w.into_inner()).await?;
        self.rpc.decode_result(&reply, message, |_| Ok(()))
    }
}
