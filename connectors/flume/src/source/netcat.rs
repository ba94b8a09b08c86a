//! The `netcat` source (Flume's `NetcatSource`) and its UDP variant `netcatudp`
//! (`NetcatUdpSource`), plus [`Charset`], the Java charset names the line-oriented sources
//! share.
//!
//! `netcat` keys: **bind**, **port**, `max-line-length` 512, `ack-every-event` true,
//! `encoding` utf-8. Each client connection is served by its own task; every
//! `\n`-terminated line is one event in its own transaction (`process_event`). The body is
//! the line without the `\n` (a trailing `\r` is kept), decoded with `encoding` and stored
//! as UTF-8, as Flume does. The reply is `OK\n` per event when `ack-every-event` is true, and
//! `FAILED: <channel error>\n` when the channel refuses the event (always sent). A line of
//! `max-line-length` characters or more (counted in characters, the newline included in the
//! budget) gets `FAILED: Event exceeds the maximum length (N chars, including newline)\n`
//! and the connection is closed, as in Flume. Unterminated text at end of stream is dropped,
//! as in Flume. Undecodable bytes become U+FFFD (Flume's reader would instead break the
//! connection). Flume's netcat source keeps no `SourceCounter` (no `OpenConnectionCount`);
//! the channel processor counts `EventReceivedCount`/`EventAcceptedCount`.
//!
//! `netcatudp` keys: **port**, `bind`, `remoteAddressHeader`. One datagram is one event: its
//! bytes up to the first `\n` (the rest of the datagram is discarded, as in Flume), no reply.
//! When `remoteAddressHeader` is set, that header holds the sender as Java prints it
//! (`/127.0.0.1:5555`); Flume puts the address under a `null` key when it is unset, which
//! cannot be represented here, so no header is added then.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::{Source, SourceContext};
use crate::conf::{ConfigError, Context};
use crate::event::Event;

/// `max-line-length` default (Flume's `DEFAULT_MAX_LINE_LENGTH`).
const DEFAULT_MAX_LINE_LENGTH: usize = 512;
/// Largest UDP datagram accepted (64 KiB, the IPv4 limit).
const MAX_DATAGRAM: usize = 65_536;
/// Read size per socket read.
const READ_CHUNK: usize = 8192;

/// A Java charset name resolved to a decoder/encoder. Java names are matched first
/// (`ISO-8859-1` is real Latin-1 here, not the WHATWG alias for windows-1252; `UTF-16`
/// means big-endian unless a BOM says otherwise, as in Java), then WHATWG labels via
/// `encoding_rs` (`GBK`, `GB18030`, `Big5`, `Shift_JIS`, `windows-1252`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// ISO-8859-1: one byte, one char.
    Latin1,
    /// US-ASCII: bytes above 0x7F are malformed (replaced).
    Ascii,
    /// Any encoding `encoding_rs` knows.
    Other(&'static encoding_rs::Encoding),
}

impl Charset {
    /// UTF-8.
    pub const UTF_8: Charset = Charset::Other(encoding_rs::UTF_8);

    /// Resolve a Java charset name; None when unknown or unsupported (UTF-32).
    pub fn for_name(name: &str) -> Option<Charset> {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "iso-8859-1" | "iso8859-1" | "iso8859_1" | "iso_8859_1" | "latin1" | "l1"
            | "8859_1" | "iso-latin-1" => Some(Charset::Latin1),
            "us-ascii" | "ascii" | "us_ascii" | "iso646-us" => Some(Charset::Ascii),
            "utf-16" | "utf16" | "utf-16be" | "utf_16be" | "unicodebigunmarked" => {
                Some(Charset::Other(encoding_rs::UTF_16BE))
            }
            "utf-16le" | "utf_16le" | "unicodelittleunmarked" => {
                Some(Charset::Other(encoding_rs::UTF_16LE))
            }
            "utf8" => Some(Charset::UTF_8),
            _ => match encoding_rs::Encoding::for_label_no_replacement(n.as_bytes()) {
                Some(e) if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE => None,
                Some(e) => Some(Charset::Other(e)),
                None => None,
            },
        }
    }

    /// Resolve `key` of `ctx` (default `default`), or an error naming the key.
    pub fn from_context(ctx: &Context, key: &str, default: &str) -> Result<Charset, ConfigError> {
        let name = ctx.string(key, default);
        Charset::for_name(&name)
            .ok_or_else(|| ctx.error(key, &format!("unsupported charset {name:?}")))
    }

    /// True when `\n` is the byte 0x0A and every ASCII byte stands for itself, so lines can
    /// be split on bytes.
    pub fn is_ascii_compatible(self) -> bool {
        match self {
            Charset::Latin1 | Charset::Ascii => true,
            Charset::Other(e) => e.is_ascii_compatible(),
        }
    }

    /// A streaming decoder.
    pub fn decoder(self) -> TextDecoder {
        let inner = match self {
            Charset::Latin1 => DecoderKind::Latin1,
            Charset::Ascii => DecoderKind::Ascii,
            // Java strips no UTF-8 BOM; only UTF-16 sniffs one.
            Charset::Other(e) if e == encoding_rs::UTF_16BE => {
                DecoderKind::Rs(Box::new(e.new_decoder()))
            }
            Charset::Other(e) => DecoderKind::Rs(Box::new(e.new_decoder_without_bom_handling())),
        };
        TextDecoder { inner }
    }

    /// Decode `bytes` in one go.
    pub fn decode(self, bytes: &[u8]) -> String {
        let mut out = String::new();
        self.decoder().decode(bytes, true, &mut out);
        out
    }

    /// Decode `bytes` in one go; None when they are malformed in this charset.
    pub fn decode_strict(self, bytes: &[u8]) -> Option<String> {
        match self {
            Charset::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
            Charset::Ascii => bytes
                .is_ascii()
                .then(|| bytes.iter().map(|&b| char::from(b)).collect()),
            Charset::Other(e) => e
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|c| c.into_owned()),
        }
    }

    /// Encode `text` (unmappable characters become `?`, as Java's encoders do).
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Charset::Ascii => text
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
            Charset::Other(e) if e == encoding_rs::UTF_16BE => {
                text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
            }
            Charset::Other(e) if e == encoding_rs::UTF_16LE => {
                text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
            }
            Charset::Other(e) => {
                let (bytes, _, _) = e.encode(text);
                bytes.into_owned()
            }
        }
    }
}

enum DecoderKind {
    Latin1,
    Ascii,
    Rs(Box<encoding_rs::Decoder>),
}

/// Decodes a byte stream split at arbitrary points (multi-byte sequences may straddle
/// reads). Malformed input becomes U+FFFD.
pub struct TextDecoder {
    inner: DecoderKind,
}

impl TextDecoder {
    /// Append the text of `bytes` to `out`; `last` flushes an incomplete trailing sequence.
    pub fn decode(&mut self, bytes: &[u8], last: bool, out: &mut String) {
        match &mut self.inner {
            DecoderKind::Latin1 => out.extend(bytes.iter().map(|&b| char::from(b))),
            DecoderKind::Ascii => out.extend(bytes.iter().map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{FFFD}'
                }
            })),
            DecoderKind::Rs(d) => {
                let mut input = bytes;
                loop {
                    let need = d
                        .max_utf8_buffer_length(input.len())
                        .unwrap_or(input.len().saturating_mul(3) + 16);
                    out.reserve(need);
                    let (result, read, _) = d.decode_to_string(input, out, last);
                    input = input.get(read..).unwrap_or(&[]);
                    if matches!(result, encoding_rs::CoderResult::InputEmpty) {
                        break;
                    }
                }
            }
        }
    }
}

/// Resolve `host:port` for binding (Flume binds `new InetSocketAddress(host, port)`).
pub(crate) async fn resolve_bind(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve bind address {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("bind address {host}:{port} resolves to nothing"))
}

/// The `port` key, required, as a TCP/UDP port.
pub(crate) fn port(ctx: &Context, key: &str) -> Result<u16, ConfigError> {
    ctx.parse_required::<u16>(key)
}

struct NetcatConfig {
    host: String,
    port: u16,
    max_line_length: usize,
    ack_every_event: bool,
    charset: Charset,
}

/// Build the TCP source.
pub fn build(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let host = ctx.require("bind")?.to_string();
    let port = port(ctx, "port")?;
    let max_line_length: usize = ctx.parse("max-line-length", DEFAULT_MAX_LINE_LENGTH)?;
    if max_line_length == 0 {
        return Err(ctx.error("max-line-length", "must be greater than 0"));
    }
    let ack_every_event = ctx.bool("ack-every-event", true)?;
    let charset = Charset::from_context(ctx, "encoding", "utf-8")?;
    Ok(Box::new(NetcatSource {
        cfg: Arc::new(NetcatConfig {
            host,
            port,
            max_line_length,
            ack_every_event,
            charset,
        }),
    }))
}

struct NetcatSource {
    cfg: Arc<NetcatConfig>,
}

#[async_trait]
impl Source for NetcatSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let addr = resolve_bind(&self.cfg.host, self.cfg.port).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("netcat source {}: cannot bind {addr}: {e}", ctx.name))?;
        tracing::info!(
            "source {}: netcat listening on {}",
            ctx.name,
            listener.local_addr().unwrap_or(addr)
        );
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        conns.spawn(serve_connection(stream, peer, self.cfg.clone(), ctx.clone()));
                    }
                    Err(e) => tracing::error!("source {}: accept failed: {e}", ctx.name),
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        // Each connection finishes the line in hand and returns.
        while conns.join_next().await.is_some() {}
        Ok(())
    }
}

/// What to do with the text received so far.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// A complete line (without its `\n`).
    Line(String),
    /// The pending text reached `max-line-length` with no newline.
    TooLong,
    /// Need more input.
    More,
}

/// Take the next line out of `pending`, applying Flume's buffer limit: a line fits when its
/// characters plus the newline fit in `max` characters.
fn next_line(pending: &mut String, max: usize) -> Next {
    match pending.find('\n') {
        Some(i) => {
            let line_chars = pending.get(..i).map(|s| s.chars().count()).unwrap_or(0);
            if line_chars >= max {
                return Next::TooLong;
            }
            let line = pending.get(..i).unwrap_or("").to_string();
            pending.drain(..=i);
            Next::Line(line)
        }
        None if pending.chars().count() >= max => Next::TooLong,
        None => Next::More,
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<NetcatConfig>,
    ctx: SourceContext,
) {
    tracing::debug!("source {}: connection from {peer}", ctx.name);
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder = cfg.charset.decoder();
    let mut pending = String::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        loop {
            match next_line(&mut pending, cfg.max_line_length) {
                Next::Line(line) => {
                    let reply = match ctx
                        .processor
                        .process_event(Event::new(line.into_bytes()))
                        .await
                    {
                        Ok(()) if cfg.ack_every_event => Some("OK\n".to_string()),
                        Ok(()) => None,
                        Err(e) => {
                            tracing::warn!(
                                "source {}: error processing event from {peer}: {e}",
                                ctx.name
                            );
                            Some(format!("FAILED: {e}\n"))
                        }
                    };
                    if let Some(r) = reply {
                        if let Err(e) = wr.write_all(&cfg.charset.encode(&r)).await {
                            tracing::debug!("source {}: cannot reply to {peer}: {e}", ctx.name);
                            return;
                        }
                    }
                }
                Next::TooLong => {
                    tracing::warn!(
                        "source {}: client {peer} sent event exceeding the maximum length",
                        ctx.name
                    );
                    let msg = format!(
                        "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                        cfg.max_line_length
                    );
                    let _ = wr.write_all(&cfg.charset.encode(&msg)).await;
                    let _ = wr.shutdown().await;
                    return;
                }
                Next::More => break,
            }
        }
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            r = rd.read(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("source {}: connection from {peer} broken: {e}", ctx.name);
                    return;
                }
            },
        };
        if n == 0 {
            // Unterminated text at EOF is dropped, as in Flume.
            let _ = wr.shutdown().await;
            return;
        }
        decoder.decode(buf.get(..n).unwrap_or(&[]), false, &mut pending);
    }
}

/// Build the UDP variant.
pub fn build_udp(_name: &str, ctx: &Context) -> Result<Box<dyn Source>, ConfigError> {
    let port = port(ctx, "port")?;
    let host = ctx.string("bind", "0.0.0.0");
    let header = ctx.get("remoteAddressHeader").map(str::to_string);
    Ok(Box::new(NetcatUdpSource { host, port, header }))
}

struct NetcatUdpSource {
    host: String,
    port: u16,
    header: Option<String>,
}

/// The event of one datagram: bytes up to the first `\n`.
fn udp_event(datagram: &[u8], peer: SocketAddr, header: Option<&str>) -> Event {
    let end = datagram
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(datagram.len());
    let mut e = Event::new(bytes::Bytes::copy_from_slice(
        datagram.get(..end).unwrap_or(&[]),
    ));
    if let Some(h) = header {
        e.headers.insert(h.to_string(), java_socket_address(peer));
    }
    e
}

/// `InetSocketAddress.toString()` for an address without a resolved host name.
pub(crate) fn java_socket_address(a: SocketAddr) -> String {
    format!("/{}:{}", a.ip(), a.port())
}

#[async_trait]
impl Source for NetcatUdpSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let addr = resolve_bind(&self.host, self.port).await?;
        let sock = UdpSocket::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("netcatudp source {}: cannot bind {addr}: {e}", ctx.name)
        })?;
        tracing::info!(
            "source {}: netcatudp listening on {}",
            ctx.name,
            sock.local_addr().unwrap_or(addr)
        );
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, peer) = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                r = sock.recv_from(&mut buf) => match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("source {}: receive failed: {e}", ctx.name);
                        continue;
                    }
                },
            };
            let e = udp_event(buf.get(..n).unwrap_or(&[]), peer, self.header.as_deref());
            if let Err(err) = ctx.processor.process_event(e).await {
                tracing::error!(
                    "source {}: error writing to channel, event from {peer} dropped: {err}",
                    ctx.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_when_chars_plus_newline_fit() {
        let mut p = "abc\nabcd\n".to_string();
        assert_eq!(next_line(&mut p, 4), Next::Line("abc".into()));
        assert_eq!(next_line(&mut p, 4), Next::TooLong);
        let mut p = "abcd".to_string();
        assert_eq!(next_line(&mut p, 4), Next::TooLong);
        let mut p = "abc".to_string();
        assert_eq!(next_line(&mut p, 4), Next::More);
        let mut p = "héé\r\nx".to_string();
        assert_eq!(next_line(&mut p, 5), Next::Line("héé\r".into()));
        assert_eq!(p, "x");
    }

    #[test]
    fn java_charset_names() {
        assert_eq!(Charset::for_name("UTF-8"), Some(Charset::UTF_8));
        assert_eq!(Charset::for_name("ISO-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::Latin1.decode(&[0x80, 0xe9]), "\u{80}é");
        assert_eq!(
            Charset::for_name("GBK").map(|c| c.decode(&[0xc4, 0xe3])),
            Some("你".to_string())
        );
        assert_eq!(
            Charset::for_name("UTF-16").map(|c| c.decode(&[0, 0x41])),
            Some("A".to_string())
        );
        assert_eq!(
            Charset::for_name("UTF-16").map(|c| c.decode(&[0xff, 0xfe, 0x41, 0])),
            Some("A".to_string())
        );
        assert!(Charset::for_name("nope").is_none());
    }

    #[test]
    fn streaming_decode_handles_split_sequences() {
        let mut d = Charset::UTF_8.decoder();
        let mut s = String::new();
        let bytes = "é".as_bytes();
        d.decode(&bytes[..1], false, &mut s);
        d.decode(&bytes[1..], false, &mut s);
        assert_eq!(s, "é");
    }

    #[test]
    fn udp_event_stops_at_newline() {
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let e = udp_event(b"hi\nrest", peer, Some("remote"));
        assert_eq!(&e.body[..], b"hi");
        assert_eq!(e.headers["remote"], "/127.0.0.1:5555");
    }
}
