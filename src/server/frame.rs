//! Request framing: the 4-byte big-endian length prefix, the size cap, and a peek at the
//! header's fixed fields (api key, version, correlation id) before anything is decoded.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection is closed while reading a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed in the middle of a frame.
    #[error("connection closed in the middle of a {expected}-byte frame after {got} bytes")]
    Truncated {
        /// Bytes announced.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The length prefix is negative, zero or above `socket.request.max.bytes`.
    #[error("frame size {size} is outside 8..={max} (socket.request.max.bytes)")]
    BadSize {
        /// Announced size.
        size: i32,
        /// Limit in force.
        max: usize,
    },
    /// Socket error.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Smallest request header: api key, version, correlation id.
pub const MIN_FRAME: usize = 8;

/// The fixed leading fields every request header version shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// API key as sent.
    pub api_key: i16,
    /// API version as sent.
    pub api_version: i16,
    /// Correlation id to echo.
    pub correlation_id: i32,
}

/// Read the fixed fields of a request header.
pub fn peek(frame: &[u8]) -> Option<Peek> {
    let b = frame.get(..MIN_FRAME)?;
    Some(Peek {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// Read one length-prefixed frame. The length is checked against `max` before any buffer is
/// allocated for it.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Bytes, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Err(FrameError::Closed)
            } else {
                Err(FrameError::Truncated { expected: 4, got })
            };
        }
        got += n;
    }
    let size = i32::from_be_bytes(len);
    let usize_size = usize::try_from(size)
        .ok()
        .filter(|s| (MIN_FRAME..=max).contains(s))
        .ok_or(FrameError::BadSize { size, max })?;
    // Read into spare capacity: no zero-fill of a buffer that is about to be overwritten.
    let mut buf = BytesMut::with_capacity(usize_size);
    while buf.len() < usize_size {
        let want = usize_size - buf.len();
        let want = u64::try_from(want).unwrap_or(u64::MAX);
        let n = (&mut *r).take(want).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                expected: usize_size,
                got: buf.len(),
            });
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_frame_and_peeks() {
        let mut data = vec![0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 7, 0xaa, 0xbb];
        data.extend_from_slice(&[0, 0, 0, 0]);
        let mut r = &data[..];
        let f = read_frame(&mut r, 1024).await.unwrap();
        assert_eq!(f.len(), 10);
        assert_eq!(
            peek(&f),
            Some(Peek {
                api_key: 18,
                api_version: 3,
                correlation_id: 7
            })
        );
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::BadSize { size: 0, .. })
        ));
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_errors() {
        let data = [0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut &data[..], 1024).await,
            Err(FrameError::BadSize { .. })
        ));
        let data = [0, 0, 0, 20, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut &data[..], 1024).await,
            Err(FrameError::Truncated {
                expected: 20,
                got: 3
            })
        ));
        let data: [u8; 0] = [];
        assert!(matches!(
            read_frame(&mut &data[..], 1024).await,
            Err(FrameError::Closed)
        ));
    }
}
