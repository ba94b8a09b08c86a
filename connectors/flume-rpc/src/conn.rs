//! One TCP connection carrying data packs, optionally inside a zlib stream — what Flume's
//! `compression-type = deflate` does on both ends (Netty's `JZlibEncoder(level)` /
//! `JZlibDecoder`: zlib format, sync-flushed after every message, never finished).
//!
//! Shared by the server and the client. Inflation is done a chunk at a time and only while
//! the frame decoder needs more bytes, so a small compressed input cannot balloon into memory
//! beyond the frame limit plus one chunk.

use std::io::{self, Write};
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use flate2::write::ZlibEncoder;
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frame::{encode_frame, Frame, FrameDecoder, FrameError};

/// Plain bytes inflated per step.
const INFLATE_CHUNK: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Whether the byte stream is wrapped in zlib (`compression-type = deflate` in Flume).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain data packs.
    #[default]
    None,
    /// zlib-wrapped stream; `level` 0–9 (Flume's `compression-level`, default 6) only affects
    /// what we send. Both ends of a connection must agree.
    Deflate {
        /// Compression level, 0 (store) to 9 (best); larger values are treated as 9.
        level: u32,
    },
}

/// Small request/response messages: don't let Nagle hold them back.
pub(crate) fn set_nodelay(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "could not set TCP_NODELAY: {e}");
    }
}

/// Why a connection could not deliver a frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad zlib stream: {0}")]
    Inflate(String),
}

/// The byte stream under the frames: a TCP socket, or TLS over one.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub(crate) struct Conn {
    stream: Box<dyn Io>,
    peer: SocketAddr,
    /// Plain bytes waiting for the frame decoder.
    plain: BytesMut,
    /// Compressed bytes waiting for the inflater (deflate only).
    raw: BytesMut,
    inflater: Option<Inflater>,
    deflater: Option<ZlibEncoder<Vec<u8>>>,
    decoder: FrameDecoder,
}

struct Inflater {
    z: Decompress,
    ended: bool,
    scratch: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        compression: Compression,
        max_frame_bytes: usize,
    ) -> Conn {
        set_nodelay(&stream, peer);
        Conn::over(Box::new(stream), peer, compression, max_frame_bytes)
    }

    /// A connection over any stream (TLS over TCP); TCP_NODELAY is the caller's job.
    pub(crate) fn over(
        stream: Box<dyn Io>,
        peer: SocketAddr,
        compression: Compression,
        max_frame_bytes: usize,
    ) -> Conn {
        let (inflater, deflater) = match compression {
            Compression::None => (None, None),
            Compression::Deflate { level } => (
                Some(Inflater {
                    z: Decompress::new(true),
                    ended: false,
                    scratch: Vec::with_capacity(INFLATE_CHUNK),
                }),
                Some(ZlibEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(level.min(9)),
                )),
            ),
        };
        Conn {
            stream,
            peer,
            plain: BytesMut::new(),
            raw: BytesMut::new(),
            inflater,
            deflater,
            decoder: FrameDecoder::new(max_frame_bytes),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The next frame, or `None` when the peer closed the connection between frames.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.plain)? {
                return Ok(Some(f));
            }
            if self.inflate_step()? {
                continue;
            }
            let target = if self.inflater.is_some() {
                &mut self.raw
            } else {
                &mut self.plain
            };
            target.reserve(READ_CHUNK);
            let n = self.stream.read_buf(target).await?;
            if n == 0 {
                if self.decoder.is_idle() && self.plain.is_empty() && self.raw.is_empty() {
                    return Ok(None);
                }
                let got = self.decoder.partial_len() + self.plain.len();
                return Err(FrameError::Truncated(got).into());
            }
        }
    }

    /// Inflates up to one chunk of `raw` into `plain`. False when no progress is possible
    /// without more input (or there is no compression).
    fn inflate_step(&mut self) -> Result<bool, ConnError> {
        let Some(inf) = self.inflater.as_mut() else {
            return Ok(false);
        };
        if self.raw.is_empty() {
            return Ok(false);
        }
        if inf.ended {
            return Err(ConnError::Inflate(format!(
                "{} bytes after the end of the zlib stream",
                self.raw.len()
            )));
        }
        inf.scratch.clear();
        inf.scratch.reserve(INFLATE_CHUNK);
        let in_before = inf.z.total_in();
        let status = inf
            .z
            .decompress_vec(&self.raw, &mut inf.scratch, FlushDecompress::None)
            .map_err(|e| ConnError::Inflate(e.to_string()))?;
        let consumed = usize::try_from(inf.z.total_in() - in_before)
            .map_err(|_| ConnError::Inflate("inflater consumed more than it was given".into()))?;
        self.raw.advance(consumed.min(self.raw.len()));
        self.plain.extend_from_slice(&inf.scratch);
        if status == Status::StreamEnd {
            inf.ended = true;
        }
        Ok(consumed > 0 || !inf.scratch.is_empty())
    }

    /// Frames `payload` with `serial` and writes it (compressed and sync-flushed if deflate).
    pub(crate) async fn write_frame(&mut self, serial: i32, payload: &[u8]) -> io::Result<()> {
        let frame = encode_frame(serial, payload);
        match self.deflater.as_mut() {
            None => self.stream.write_all(&frame).await?,
            Some(enc) => {
                // flush() is a zlib SYNC_FLUSH: the peer can inflate the whole message now,
                // as with Netty's encoder.
                enc.write_all(&frame)?;
                enc.flush()?;
                let out = std::mem::take(enc.get_mut());
                self.stream.write_all(&out).await?
            }
        }
        // TLS may hold the last record back until flushed (a no-op on plain TCP).
        self.stream.flush().await
    }

    /// Writes raw bytes, bypassing framing and compression (tests of hostile input).
    #[cfg(test)]
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Closes the write side so the peer sees end of stream.
    pub(crate) async fn shutdown(&mut self) {
        if let Err(e) = self.stream.shutdown().await {
            tracing::debug!(peer = %self.peer, "closing connection: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair(compression: Compression, max: usize) -> (Conn, Conn) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        let c = c.unwrap();
        let (s, peer) = s.unwrap();
        (
            Conn::new(c, addr, compression, max),
            Conn::new(s, peer, compression, max),
        )
    }

    #[tokio::test]
    async fn frames_cross_with_and_without_deflate() {
        for compression in [Compression::None, Compression::Deflate { level: 6 }] {
            let (mut a, mut b) = pair(compression, 1 << 20).await;
            let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            let write = async {
                a.write_frame(1, b"one").await.unwrap();
                a.write_frame(2, &big).await.unwrap();
                a.write_frame(3, b"").await.unwrap();
            };
            let read = async {
                let f1 = b.read_frame().await.unwrap().unwrap();
                let f2 = b.read_frame().await.unwrap().unwrap();
                let f3 = b.read_frame().await.unwrap().unwrap();
                (f1, f2, f3)
            };
            let ((), (f1, f2, f3)) = tokio::join!(write, read);
            assert_eq!((f1.serial, &f1.payload[..]), (1, &b"one"[..]));
            assert_eq!((f2.serial, &f2.payload[..]), (2, &big[..]));
            assert_eq!((f3.serial, f3.payload.len()), (3, 0));
            b.write_frame(1, b"reply").await.unwrap();
            assert_eq!(
                &a.read_frame().await.unwrap().unwrap().payload[..],
                b"reply"
            );
            a.shutdown().await;
            assert!(b.read_frame().await.unwrap().is_none(), "{compression:?}");
        }
    }

    #[tokio::test]
    async fn a_compressed_bomb_is_stopped_by_the_frame_limit() {
        // A frame declaring 8 MiB of zeros compresses to ~8 KiB; a 1 MiB limit rejects it as
        // soon as the length prefix is inflated, long before the zeros are.
        let (mut a, mut b) = pair(Compression::None, 1 << 20).await;
        let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::new(9));
        let mut frame = Vec::new();
        frame.extend_from_slice(&0i32.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&(8i32 << 20).to_be_bytes());
        enc.write_all(&frame).unwrap();
        enc.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        a.write_raw(&bomb).await.unwrap();
        b.inflater = Some(Inflater {
            z: Decompress::new(true),
            ended: false,
            scratch: Vec::new(),
        });
        // The scratch buffer starts empty here: inflate_step must size it itself.
        let err = b.read_frame().await.unwrap_err();
        assert!(
            matches!(err, ConnError::Frame(FrameError::TooLarge { .. })),
            "{err}"
        );
        assert!(
            b.plain.capacity() < 4 << 20,
            "plain grew to {}",
            b.plain.capacity()
        );
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut a, mut b) = pair(Compression::None, 1 << 20).await;
        a.write_raw(&encode_frame(5, b"abcdef")[..10])
            .await
            .unwrap();
        a.shutdown().await;
        assert!(matches!(
            b.read_frame().await.unwrap_err(),
            ConnError::Frame(FrameError::Truncated(_))
        ));
    }

    #[tokio::test]
    async fn garbage_in_a_compressed_stream_is_an_error() {
        let (mut a, mut b) = pair(Compression::Deflate { level: 1 }, 1 << 20).await;
        a.write_raw(b"this is not zlib at all").await.unwrap();
        assert!(matches!(
            b.read_frame().await.unwrap_err(),
            ConnError::Inflate(_)
        ));
    }
}
