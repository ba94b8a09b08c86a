//! A zlib stream as an `AsyncRead + AsyncWrite` over a socket, for TLS to run on: with both
//! `ssl = true` and `compression-type = deflate`, Flume's avro source and sink put Netty's
//! `JZlibEncoder`/`JZlibDecoder` next to the socket and the `SslHandler` above them (both
//! are added to the pipeline before Avro's frame codec, the zlib ones with `addFirst`), so
//! the wire carries TLS records inside one zlib stream per direction.
//!
//! As Netty's encoder does, every write is compressed and sync-flushed at once. Reads inflate
//! only into the caller's buffer, so a small compressed input cannot grow memory beyond it
//! (plus one raw read chunk). Without TLS, `conn` inflates inline instead.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct ZlibStream<S> {
    inner: S,
    inflate: Decompress,
    ended: bool,
    /// Compressed bytes read but not yet inflated.
    raw: BytesMut,
    deflate: Compress,
    /// Compressed bytes not yet written to the socket.
    pending: BytesMut,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<S> ZlibStream<S> {
    /// `level` 0–9 (larger is 9) only affects what we send.
    pub(crate) fn new(inner: S, level: u32) -> Self {
        ZlibStream {
            inner,
            inflate: Decompress::new(true),
            ended: false,
            raw: BytesMut::new(),
            deflate: Compress::new(flate2::Compression::new(level.min(9)), true),
            pending: BytesMut::new(),
        }
    }

    /// Inflates from `raw` into `buf`; the number of plain bytes produced.
    fn inflate_into(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
        if self.raw.is_empty() || buf.remaining() == 0 {
            return Ok(0);
        }
        if self.ended {
            return Err(invalid(format!(
                "{} bytes after the end of the zlib stream",
                self.raw.len()
            )));
        }
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(&self.raw, buf.initialize_unfilled(), FlushDecompress::None)
            .map_err(|e| invalid(format!("bad zlib stream: {e}")))?;
        let consumed = usize::try_from(self.inflate.total_in() - in0)
            .map_err(|_| invalid("inflater consumed more than it was given".into()))?;
        let produced = usize::try_from(self.inflate.total_out() - out0)
            .map_err(|_| invalid("inflater produced more than it had room for".into()))?;
        self.raw.advance(consumed.min(self.raw.len()));
        buf.advance(produced.min(buf.remaining()));
        if status == Status::StreamEnd {
            self.ended = true;
        }
        Ok(produced)
    }

    /// Compresses `data` into `pending` and sync-flushes, as Netty's `JZlibEncoder` does.
    fn deflate_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        loop {
            self.pending.reserve(rest.len() + 64);
            let spare = self.pending.capacity() - self.pending.len();
            let start = self.pending.len();
            self.pending.resize(start + spare, 0);
            let (in0, out0) = (self.deflate.total_in(), self.deflate.total_out());
            let outcome = self.deflate.compress(
                rest,
                self.pending.get_mut(start..).unwrap_or_default(),
                FlushCompress::Sync,
            );
            let produced = usize::try_from(self.deflate.total_out() - out0).unwrap_or(0);
            self.pending.truncate(start + produced.min(spare));
            outcome.map_err(|e| invalid(format!("zlib compression failed: {e}")))?;
            let consumed = usize::try_from(self.deflate.total_in() - in0).unwrap_or(0);
            rest = rest.get(consumed..).unwrap_or_default();
            // A sync flush is complete once input is used up and output was not cut short.
            if rest.is_empty() && produced < spare {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> ZlibStream<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ZlibStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.inflate_into(buf)? > 0 || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(())); // end of stream
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.raw.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ZlibStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Take new data only once the last write is out, so `pending` stays one write big.
        ready!(this.poll_drain(cx))?;
        this.deflate_all(data)?;
        // Start sending now; what the socket does not take goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_both_ways_and_match_plain_zlib() {
        let (a, b) = tokio::io::duplex(1024);
        let (mut a, mut b) = (ZlibStream::new(a, 6), ZlibStream::new(b, 1));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let write = async {
            a.write_all(b"hello").await.unwrap();
            a.write_all(&big).await.unwrap();
            a.flush().await.unwrap();
            a.shutdown().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(write, read);
        assert_eq!(&got[..5], b"hello");
        assert_eq!(&got[5..], &big[..]);
    }

    #[tokio::test]
    async fn garbage_is_invalid_data() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut b = ZlibStream::new(b, 6);
        a.write_all(b"not zlib at all").await.unwrap();
        let mut buf = [0u8; 64];
        let e = b.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
