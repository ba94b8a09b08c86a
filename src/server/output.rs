//! Encoding a response whose records stay in segment files, and writing it.
//!
//! kafka-protocol encodes the response into [`Output`] exactly as into a `BytesMut`; when it
//! copies in a placeholder from [`crate::api::splice`], `Output` ends the current memory
//! piece and records the file region instead. The pieces then go out in order: memory with
//! `write_all`, file regions with `sendfile`, which moves page-cache pages into the socket
//! without copying them through Sluice (Kafka's network threads do the same).
//!
//! Over TLS, `sendfile` cannot encrypt: file regions are read into a buffer and written
//! through the TLS stream instead ([`Sink::Tls`]).
//!
//! `sendfile` runs on the connection's task, like a socket write: the data below the high
//! watermark was just written or recently read, so it is in the page cache, and each call
//! moves at most what the socket buffer takes.

use std::io;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::api::splice::Splices;
use crate::log::FileRegion;

/// One part of an encoded response.
#[derive(Debug)]
pub enum Piece {
    /// Encoded bytes.
    Memory(BytesMut),
    /// Records to send from a segment file.
    File(FileRegion),
}

/// A response being encoded: memory pieces split around file regions.
pub struct Output<'a> {
    splices: &'a Splices,
    pieces: Vec<Piece>,
    mem: BytesMut,
    /// Bytes in `pieces` (memory and file) before `mem` starts.
    flushed: usize,
    matched: usize,
    stray: bool,
}

impl<'a> Output<'a> {
    /// Start a response frame in `buf` (its capacity is reused), with room for the length.
    pub fn new(splices: &'a Splices, mut buf: BytesMut) -> Self {
        buf.clear();
        buf.put_i32(0);
        Output {
            splices,
            pieces: Vec::new(),
            mem: buf,
            flushed: 0,
            matched: 0,
            stray: false,
        }
    }

    /// The pieces of the finished frame, with its length prefix set. Fails (and nothing may
    /// be sent) if a registered region was not met while encoding, since its placeholder
    /// would then have been copied as zeros.
    pub fn finish(mut self, expected: usize) -> anyhow::Result<Vec<Piece>> {
        if self.stray || self.matched != expected {
            anyhow::bail!(
                "zero-copy encoding met {} of {expected} file regions",
                self.matched
            );
        }
        let total = self.offset();
        self.pieces.push(Piece::Memory(self.mem));
        let len = i32::try_from(total - 4)?;
        match self.pieces.first_mut() {
            Some(Piece::Memory(b)) if b.len() >= 4 => b[..4].copy_from_slice(&len.to_be_bytes()),
            _ => anyhow::bail!("response frame does not start with its length"),
        }
        Ok(self.pieces)
    }
}

// SAFETY: every method forwards to the inner `BytesMut`, whose own `BufMut` implementation
// upholds the trait's contract (`chunk_mut` returns the spare capacity that
// `advance_mut` then marks initialised). `put_slice` only adds a safe path that skips the
// copy. Allowed here alone: this is what lets record bytes bypass user space.
#[allow(unsafe_code)]
unsafe impl BufMut for Output<'_> {
    fn remaining_mut(&self) -> usize {
        self.mem.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: forwarded unchanged; the caller's guarantee is the same.
        unsafe { self.mem.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.mem.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.splices.find(src) {
            Some(region) => {
                let mem = self.mem.split();
                self.flushed += mem.len() + region.len;
                self.pieces.push(Piece::Memory(mem));
                self.pieces.push(Piece::File(region.clone()));
                self.matched += 1;
            }
            None => {
                self.stray |= crate::api::splice::is_placeholder(src);
                self.mem.extend_from_slice(src);
            }
        }
    }
}

impl ByteBufMut for Output<'_> {
    fn offset(&self) -> usize {
        self.flushed + self.mem.len()
    }

    fn seek(&mut self, offset: usize) {
        // Response messages never seek; record encoders do, within the current piece.
        if let Some(local) = offset.checked_sub(self.flushed) {
            self.mem.resize(local, 0);
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let local = r.start.checked_sub(self.flushed).and_then(|s| {
            let e = r.end.checked_sub(self.flushed)?;
            Some(s..e)
        });
        match local {
            Some(l) if l.end <= self.mem.len() => &mut self.mem[l],
            _ => &mut [],
        }
    }
}

/// Where a connection's responses go: the TCP socket itself, or the TLS stream over it.
pub enum Sink {
    /// Plain TCP: file regions go out with `sendfile`.
    Tcp(OwnedWriteHalf),
    /// TLS: records must be encrypted, so file regions are read and written through.
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl Sink {
    /// Write `buf` and push it to the socket.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Tcp(w) => w.write_all(buf).await,
            Sink::Tls(w) => {
                w.write_all(buf).await?;
                // rustls keeps what the socket did not take; a response must leave now.
                w.flush().await
            }
        }
    }

    /// Write the pieces of a response in order.
    pub async fn write(&mut self, pieces: &[Piece]) -> io::Result<()> {
        match self {
            Sink::Tcp(w) => {
                for p in pieces {
                    match p {
                        Piece::Memory(b) => w.write_all(b).await?,
                        Piece::File(r) => send_file(w, r).await?,
                    }
                }
                Ok(())
            }
            Sink::Tls(w) => {
                let mut buf = Vec::new();
                for p in pieces {
                    match p {
                        Piece::Memory(b) => w.write_all(b).await?,
                        Piece::File(r) => copy_file(w, r, &mut buf).await?,
                    }
                }
                w.flush().await
            }
        }
    }

    /// Close the write side (TLS: send close_notify first).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Sink::Tcp(w) => w.shutdown().await,
            Sink::Tls(w) => w.shutdown().await,
        }
    }
}

/// Bytes of a file region read per step when it cannot be sent with `sendfile`.
const COPY_CHUNK: usize = 256 * 1024;

/// A file region through a TLS stream: `sendfile` cannot encrypt, so the records are read
/// (from the page cache, as `sendfile` would) and written like memory, a chunk at a time.
/// Kafka's `SslTransportLayer` copies file regions the same way.
async fn copy_file<W: AsyncWrite + Unpin>(
    w: &mut W,
    r: &FileRegion,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;

    buf.resize(COPY_CHUNK.min(r.len), 0);
    let mut offset = r.position;
    let mut left = r.len;
    while left > 0 {
        let n = left.min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        r.file.read_exact_at(chunk, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch region",
                )
            } else {
                e
            }
        })?;
        w.write_all(chunk).await?;
        offset += n as u64;
        left -= n;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
async fn send_file(wr: &OwnedWriteHalf, r: &FileRegion) -> io::Result<()> {
    use tokio::io::Interest;

    let sock: &TcpStream = wr.as_ref();
    let mut offset = r.position;
    let mut left = r.len;
    while left > 0 {
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, &*r.file, Some(&mut offset), left).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch region",
                ))
            }
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn send_file(wr: &mut OwnedWriteHalf, r: &FileRegion) -> io::Result<()> {
    let r = r.clone();
    let bytes = tokio::task::spawn_blocking(move || r.load())
        .await
        .map_err(io::Error::other)??;
    wr.write_all(&bytes).await
}
