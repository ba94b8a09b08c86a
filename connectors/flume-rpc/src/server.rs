//! The responder side: [`Server`] accepts connections and answers `AvroSourceProtocol`
//! (what Flume's avro source serves) or `SparkFlumeProtocol` (what Spark's SparkSink serves),
//! calling an [`AvroSourceHandler`] or [`SparkSinkHandler`].
//!
//! Per connection, as Avro's Java `Responder` does:
//! - until a handshake succeeds, every request starts with a `HandshakeRequest`. The server
//!   knows the client's protocol if it has seen its hash (its own, or one it parsed before) or
//!   if the request carries the text; it then answers `BOTH` when the client guessed the server
//!   hash and `CLIENT` otherwise (with its protocol and hash). An unknown protocol gets `NONE`,
//!   and that reply carries only the handshake: the client resends with its protocol text;
//! - then call metadata (`map<bytes>`, ignored), the message name (empty = ping, answered with
//!   the handshake alone) and the parameters;
//! - the reply is `[HandshakeResponse]`, metadata (empty), error flag, and the result or the
//!   system error union `["string"]` (an unknown message gets that, not a closed connection).
//!
//! Requests on one connection are answered one at a time, in order, each with its serial;
//! a client may pipeline. Malformed frames, undecodable requests and unacceptable handshakes
//! close that connection with a `warn!` naming the peer; other connections carry on.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::codec::{DecodeError, Reader, Writer};
use crate::conn::{set_nodelay, Compression, Conn, ConnError, Io};
use crate::event::{read_event, read_events, EventBatch, Status};
use crate::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse};
use crate::protocol::{hex, Protocol, ProtocolError};
use crate::tls::ServerTls;
use crate::zlib_io::ZlibStream;
use crate::Event;

/// Default cap on one frame (all buffers plus their length prefixes). Java has none beyond its
/// heap; Flume's avro sink sends at most `batch-size` (100) events per frame.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// Default time [`Server::shutdown`] waits for requests in flight before aborting them.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a client has to complete the TLS handshake: Netty's `SslHandler` default (10 s),
/// which Flume's avro source keeps.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Distinct client protocol hashes a server remembers (Java's `Responder` keeps every one).
/// Beyond this a new protocol is still accepted, just parsed again on its next connection.
const MAX_KNOWN_PROTOCOLS: usize = 1024;

/// What Flume's avro source does with received events.
#[async_trait::async_trait]
pub trait AvroSourceHandler: Send + Sync + 'static {
    /// `Status append(AvroFlumeEvent event)`.
    async fn append(&self, event: Event) -> Status;
    /// `Status appendBatch(array<AvroFlumeEvent> events)`.
    async fn append_batch(&self, events: Vec<Event>) -> Status;
}

/// What Spark's SparkSink does for its polling receivers.
#[async_trait::async_trait]
pub trait SparkSinkHandler: Send + Sync + 'static {
    /// `EventBatch getEventBatch(int n)`: up to `n` events in a new transaction.
    async fn get_event_batch(&self, n: i32) -> EventBatch;
    /// `void ack(string sequenceNumber)`: commit that transaction.
    async fn ack(&self, sequence_number: String);
    /// `void nack(string sequenceNumber)`: roll it back, so its events come again.
    async fn nack(&self, sequence_number: String);
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Stream compression; every client must use the same.
    pub compression: Compression,
    /// Largest frame accepted; a bigger one closes the connection. 0 means
    /// [`DEFAULT_MAX_FRAME_BYTES`].
    pub max_frame_bytes: usize,
    /// How long [`Server::shutdown`] waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// TLS (Flume's `ssl = true`): every connection must complete a TLS handshake first; a
    /// client that does not is closed with one `warn!` naming it.
    pub tls: Option<ServerTls>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            compression: Compression::None,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tls: None,
        }
    }
}

/// A running server. Dropping it leaves it running; [`Server::shutdown`] stops it.
pub struct Server {
    local_addr: SocketAddr,
    protocol: Arc<Protocol>,
    token: CancellationToken,
    task: JoinHandle<()>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("protocol", &self.protocol.full_name())
            .finish()
    }
}

impl Server {
    /// Binds `bind` (`"host:port"`, a `SocketAddr`...) and serves `AvroSourceProtocol`.
    pub async fn avro_source(
        bind: impl ToSocketAddrs + fmt::Debug,
        handler: Arc<dyn AvroSourceHandler>,
        opts: ServerOptions,
    ) -> io::Result<Server> {
        let listener = bind_listener(bind).await?;
        Self::avro_source_on(listener, handler, opts)
    }

    /// Serves `AvroSourceProtocol` on a listener the caller bound.
    pub fn avro_source_on(
        listener: TcpListener,
        handler: Arc<dyn AvroSourceHandler>,
        opts: ServerOptions,
    ) -> io::Result<Server> {
        Self::serve(listener, Arc::new(AvroSourceDispatch(handler)), opts)
    }

    /// Binds `bind` and serves `SparkFlumeProtocol`.
    pub async fn spark_sink(
        bind: impl ToSocketAddrs + fmt::Debug,
        handler: Arc<dyn SparkSinkHandler>,
        opts: ServerOptions,
    ) -> io::Result<Server> {
        let listener = bind_listener(bind).await?;
        Self::spark_sink_on(listener, handler, opts)
    }

    /// Serves `SparkFlumeProtocol` on a listener the caller bound.
    pub fn spark_sink_on(
        listener: TcpListener,
        handler: Arc<dyn SparkSinkHandler>,
        opts: ServerOptions,
    ) -> io::Result<Server> {
        Self::serve(listener, Arc::new(SparkDispatch(handler)), opts)
    }

    fn serve(
        listener: TcpListener,
        dispatch: Arc<dyn Dispatch>,
        mut opts: ServerOptions,
    ) -> io::Result<Server> {
        if opts.max_frame_bytes == 0 {
            opts.max_frame_bytes = DEFAULT_MAX_FRAME_BYTES;
        }
        let local_addr = listener.local_addr()?;
        let protocol = Arc::clone(dispatch.protocol());
        let token = CancellationToken::new();
        let mut known = HashSet::new();
        known.insert(protocol.md5());
        let shared = Arc::new(Shared {
            dispatch,
            known: Mutex::new(known),
            opts,
        });
        let tls = shared.opts.tls.is_some();
        tracing::info!(%local_addr, protocol = %protocol.full_name(), tls, "avro rpc server listening");
        let task = tokio::spawn(accept_loop(listener, shared, token.clone()));
        Ok(Server {
            local_addr,
            protocol,
            token,
            task,
        })
    }

    /// The address the server is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets each connection finish the request it is handling (up to
    /// `shutdown_timeout`, then aborts it), closes every connection and returns.
    pub async fn shutdown(self) {
        self.token.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(local_addr = %self.local_addr, "avro rpc accept task failed: {e}");
        }
    }
}

async fn bind_listener(bind: impl ToSocketAddrs + fmt::Debug) -> io::Result<TcpListener> {
    let what = format!("{bind:?}");
    TcpListener::bind(bind)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("binding avro rpc server to {what}: {e}")))
}

struct Shared {
    dispatch: Arc<dyn Dispatch>,
    /// Hashes of client protocols known to be ours (our own, and texts parsed before).
    known: Mutex<HashSet<[u8; 16]>>,
    opts: ServerOptions,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, token: CancellationToken) {
    let local = listener.local_addr().ok();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!("avro rpc connection task panicked: {e}");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "avro rpc connection accepted");
                    conns.spawn(open_connection(stream, peer, Arc::clone(&shared), token.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(?local, "avro rpc accept failed: {e}");
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.opts.shutdown_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            ?local,
            left = conns.len(),
            "avro rpc shutdown timed out; aborting requests in flight"
        );
        conns.shutdown().await;
    }
}

/// Why a connection is closed by the server.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("undecodable request: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad handshake: {0}")]
    Handshake(#[from] ProtocolError),
}

/// Completes the TLS handshake when TLS is on (on the connection's own task, so a slow or
/// wrong client holds up no one else), then serves the connection.
async fn open_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    token: CancellationToken,
) {
    let (compression, max) = (shared.opts.compression, shared.opts.max_frame_bytes);
    let conn = match &shared.opts.tls {
        None => Conn::new(stream, peer, compression, max),
        Some(tls) => {
            set_nodelay(&stream, peer);
            // With deflate too, zlib goes under TLS, as in Flume (see `zlib_io`).
            let stream: Box<dyn Io> = match compression {
                Compression::None => Box::new(stream),
                Compression::Deflate { level } => Box::new(ZlibStream::new(stream, level)),
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.0));
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let outcome = tokio::select! {
                _ = token.cancelled() => return,
                o = handshake => o,
            };
            match outcome {
                Ok(Ok(s)) => Conn::over(Box::new(s), peer, Compression::None, max),
                Ok(Err(e)) => {
                    tracing::warn!(
                        %peer,
                        "closing avro rpc connection: TLS handshake failed \
                         (a client without ssl = true, or one that does not trust our certificate?): {e}"
                    );
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        %peer,
                        "closing avro rpc connection: no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}"
                    );
                    return;
                }
            }
        }
    };
    serve_connection(conn, shared, token).await;
}

async fn serve_connection(mut conn: Conn, shared: Arc<Shared>, token: CancellationToken) {
    let peer = conn.peer();
    let mut established = false;
    loop {
        let frame = tokio::select! {
            biased;
            _ = token.cancelled() => break,
            f = conn.read_frame() => f,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => {
                tracing::debug!(%peer, "avro rpc connection closed by peer");
                break;
            }
            Err(ConnError::Io(e)) => {
                tracing::debug!(%peer, "avro rpc connection lost: {e}");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, "closing avro rpc connection: {e}");
                break;
            }
        };
        let reply = match respond(&shared, peer, &mut established, &frame.payload).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%peer, serial = frame.serial, "closing avro rpc connection: {e}");
                break;
            }
        };
        if let Err(e) = conn.write_frame(frame.serial, &reply).await {
            tracing::debug!(%peer, "avro rpc connection lost writing a reply: {e}");
            break;
        }
    }
    conn.shutdown().await;
}

/// Builds the reply to one request payload.
async fn respond(
    shared: &Shared,
    peer: SocketAddr,
    established: &mut bool,
    payload: &[u8],
) -> Result<Vec<u8>, CloseReason> {
    let mut r = Reader::new(payload);
    let mut out = Writer::new();
    let local = shared.dispatch.protocol();
    if !*established {
        let req = HandshakeRequest::decode(&mut r)?;
        let matched = handshake(shared, local, &req)?;
        tracing::debug!(%peer, ?matched, client_hash = %hex(&req.client_hash), "avro rpc handshake");
        let tell = matched != HandshakeMatch::Both;
        HandshakeResponse {
            matched,
            server_protocol: tell.then(|| local.text().to_string()),
            server_hash: tell.then(|| local.md5()),
        }
        .encode(&mut out);
        if matched == HandshakeMatch::None {
            // Java's Responder: a failed handshake is answered with the handshake alone.
            return Ok(out.into_inner());
        }
        *established = true;
    }
    r.skip_bytes_map("call metadata")?;
    let message = r.string("message name")?;
    if message.is_empty() {
        // A ping: the handshake (if any) is the whole answer.
        return Ok(out.into_inner());
    }
    out.empty_map(); // response metadata
    match shared.dispatch.call(message, r.rest()).await? {
        Some(result) => {
            out.boolean(false);
            out.raw(&result);
        }
        None => {
            // Java answers this with a system error too ("No such remote message").
            tracing::warn!(%peer, message, "avro rpc call of an unknown message");
            out.boolean(true);
            out.len(0); // system error union ["string"], branch 0
            out.string(&format!(
                "No such message: {message} in {}",
                local.full_name()
            ));
        }
    }
    Ok(out.into_inner())
}

/// Decides the handshake: see the module comment.
fn handshake(
    shared: &Shared,
    local: &Protocol,
    req: &HandshakeRequest,
) -> Result<HandshakeMatch, ProtocolError> {
    let mut known = shared
        .known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut remote_known = known.contains(&req.client_hash);
    if !remote_known {
        if let Some(text) = &req.client_protocol {
            local.check_same(&Protocol::parse(text)?)?;
            if known.len() < MAX_KNOWN_PROTOCOLS {
                known.insert(req.client_hash);
            }
            remote_known = true;
        }
    }
    Ok(match (remote_known, req.server_hash == local.md5()) {
        (false, _) => HandshakeMatch::None,
        (true, true) => HandshakeMatch::Both,
        (true, false) => HandshakeMatch::Client,
    })
}

/// Decodes a message's parameters, calls the handler, encodes its result.
#[async_trait::async_trait]
trait Dispatch: Send + Sync + 'static {
    fn protocol(&self) -> &Arc<Protocol>;
    /// The encoded result, or `None` for a message the protocol does not declare.
    async fn call(&self, message: &str, params: &[u8]) -> Result<Option<Vec<u8>>, DecodeError>;
}

struct AvroSourceDispatch(Arc<dyn AvroSourceHandler>);

#[async_trait::async_trait]
impl Dispatch for AvroSourceDispatch {
    fn protocol(&self) -> &Arc<Protocol> {
        static P: std::sync::LazyLock<Arc<Protocol>> =
            std::sync::LazyLock::new(Protocol::avro_source);
        &P
    }

    async fn call(&self, message: &str, params: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let mut r = Reader::new(params);
        let status = match message {
            "append" => {
                let event = read_event(&mut r, "AvroFlumeEvent")?;
                r.finish("append parameters")?;
                self.0.append(event).await
            }
            "appendBatch" => {
                let events = read_events(&mut r, "AvroFlumeEvent")?;
                r.finish("appendBatch parameters")?;
                self.0.append_batch(events).await
            }
            _ => return Ok(None),
        };
        let mut w = Writer::new();
        status.encode(&mut w);
        Ok(Some(w.into_inner()))
    }
}

struct SparkDispatch(Arc<dyn SparkSinkHandler>);

#[async_trait::async_trait]
impl Dispatch for SparkDispatch {
    fn protocol(&self) -> &Arc<Protocol> {
        static P: std::sync::LazyLock<Arc<Protocol>> =
            std::sync::LazyLock::new(Protocol::spark_flume);
        &P
    }

    async fn call(&self, message: &str, params: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
        let mut r = Reader::new(params);
        let mut w = Writer::new();
        // `void` results (ack, nack) encode as nothing.
        match message {
            "getEventBatch" => {
                let n = r.int("getEventBatch.n")?;
                r.finish("getEventBatch parameters")?;
                self.0.get_event_batch(n).await.encode(&mut w);
            }
            "ack" => {
                let seq = r.string("ack.sequenceNumber")?.to_string();
                r.finish("ack parameters")?;
                self.0.ack(seq).await;
            }
            "nack" => {
                let seq = r.string("nack.sequenceNumber")?.to_string();
                r.finish("nack parameters")?;
                self.0.nack(seq).await;
            }
            _ => return Ok(None),
        }
        Ok(Some(w.into_inner()))
    }
}
