//! Avro's Netty transport framing (`NettyTransportCodec`): each message is a *data pack*
//!
//! ```text
//! int32 BE serial          client-chosen, echoed by the server on the reply
//! int32 BE bufferCount
//! bufferCount × (int32 BE length, <length bytes>)
//! ```
//!
//! and the message is the concatenation of the buffers. This file holds the encoder and an
//! incremental decoder over a byte buffer; sockets and compression are in `conn.rs`.
//!
//! The decoder checks every count and length against `max_frame_bytes` before it reserves
//! anything, and moves buffer bytes into the message as they arrive, so a peer that declares a
//! huge buffer and then trickles (or never sends) it costs no more than it sent. Java's decoder
//! only rejects a count whose references would exceed 10 % of the heap.

use bytes::{Buf, BufMut, BytesMut};

/// Size of the `serial` + `bufferCount` header.
const PACK_HEADER: usize = 8;
/// Size of each buffer's length prefix.
const LENGTH_PREFIX: usize = 4;

/// A framing violation; the connection it came from is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `bufferCount` below zero.
    #[error("negative buffer count {0}")]
    NegativeCount(i32),
    /// `bufferCount` whose length prefixes alone exceed the frame limit.
    #[error("buffer count {count} exceeds the limit of {max} for a {max_frame_bytes}-byte frame")]
    TooManyBuffers {
        /// Declared count.
        count: i32,
        /// Largest count accepted.
        max: usize,
        /// The frame limit.
        max_frame_bytes: usize,
    },
    /// A buffer length below zero.
    #[error("negative buffer length {0}")]
    NegativeLength(i32),
    /// The frame (buffers plus their prefixes) would exceed the limit.
    #[error("frame of at least {declared} bytes exceeds the limit of {max_frame_bytes}")]
    TooLarge {
        /// Bytes the frame would take so far, counting the buffer just declared.
        declared: usize,
        /// The limit.
        max_frame_bytes: usize,
    },
    /// The stream ended inside a frame.
    #[error("connection closed inside a frame ({0} bytes of it received)")]
    Truncated(usize),
}

/// One decoded data pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The request's serial number.
    pub serial: i32,
    /// The buffers, concatenated.
    pub payload: BytesMut,
}

/// Encodes `payload` as a data pack with a single buffer (Java splits its output into 8 KiB
/// buffers; the receiver concatenates them either way).
pub fn encode_frame(serial: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PACK_HEADER + LENGTH_PREFIX + payload.len());
    out.put_i32(serial);
    out.put_i32(1);
    // Payloads are built by us from bounded inputs; a >2 GiB one cannot be framed at all.
    out.put_i32(i32::try_from(payload.len()).unwrap_or(i32::MAX));
    out.extend_from_slice(payload);
    out
}

#[derive(Debug)]
enum State {
    /// Waiting for the 8-byte header.
    Header,
    /// Inside a pack.
    Body {
        serial: i32,
        buffers_left: usize,
        /// Bytes of the current buffer still to copy; `None` while its length is unread.
        current_left: Option<usize>,
        payload: BytesMut,
        /// Frame bytes accounted so far (prefixes + declared buffer lengths).
        accounted: usize,
        /// Frame bytes received so far.
        received: usize,
    },
}

/// Incremental data-pack decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_bytes` (header excluded, length
    /// prefixes included).
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            max_frame_bytes,
            state: State::Header,
        }
    }

    /// Whether the decoder is between frames (so end of stream here is a clean close).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header)
    }

    /// Bytes of the current partial frame received so far.
    pub fn partial_len(&self) -> usize {
        match &self.state {
            State::Header => 0,
            State::Body { received, .. } => PACK_HEADER + received,
        }
    }

    /// Consumes what it can from `buf`; returns a frame once one is complete. Leaves bytes of
    /// the next frame in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match &mut self.state {
                State::Header => {
                    if buf.len() < PACK_HEADER {
                        return Ok(None);
                    }
                    let serial = buf.get_i32();
                    let count = buf.get_i32();
                    let buffers_left =
                        usize::try_from(count).map_err(|_| FrameError::NegativeCount(count))?;
                    let max = self.max_frame_bytes / LENGTH_PREFIX;
                    if buffers_left > max {
                        return Err(FrameError::TooManyBuffers {
                            count,
                            max,
                            max_frame_bytes: self.max_frame_bytes,
                        });
                    }
                    self.state = State::Body {
                        serial,
                        buffers_left,
                        current_left: None,
                        payload: BytesMut::new(),
                        accounted: 0,
                        received: 0,
                    };
                }
                State::Body {
                    serial,
                    buffers_left,
                    current_left,
                    payload,
                    accounted,
                    received,
                } => match current_left {
                    None if *buffers_left == 0 => {
                        let frame = Frame {
                            serial: *serial,
                            payload: std::mem::take(payload),
                        };
                        self.state = State::Header;
                        return Ok(Some(frame));
                    }
                    None => {
                        if buf.len() < LENGTH_PREFIX {
                            return Ok(None);
                        }
                        let len = buf.get_i32();
                        *received += LENGTH_PREFIX;
                        let len =
                            usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
                        let declared = accounted.saturating_add(LENGTH_PREFIX).saturating_add(len);
                        if declared > self.max_frame_bytes {
                            return Err(FrameError::TooLarge {
                                declared,
                                max_frame_bytes: self.max_frame_bytes,
                            });
                        }
                        *accounted = declared;
                        // No reserve(len): the payload grows with what actually arrives.
                        *current_left = Some(len);
                    }
                    Some(left) => {
                        let n = (*left).min(buf.len());
                        if n > 0 {
                            payload.extend_from_slice(&buf[..n]);
                            buf.advance(n);
                            *received += n;
                        }
                        *left -= n;
                        if *left == 0 {
                            *current_left = None;
                            *buffers_left -= 1;
                        } else {
                            return Ok(None);
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(serial: i32, bufs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_i32(serial);
        v.put_i32(bufs.len() as i32);
        for b in bufs {
            v.put_i32(b.len() as i32);
            v.extend_from_slice(b);
        }
        v
    }

    #[test]
    fn multi_buffer_packs_are_concatenated() {
        let mut d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&pack(7, &[b"ab", b"", b"cde"])[..]);
        let f = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.serial, 7);
        assert_eq!(&f.payload[..], b"abcde");
        assert!(buf.is_empty());
        assert!(d.is_idle());
    }

    #[test]
    fn our_encoding_decodes_and_byte_at_a_time_input_works() {
        let bytes = [encode_frame(1, b"hello"), encode_frame(-2, b"")].concat();
        let mut d = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in bytes {
            buf.put_u8(b);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (frames[0].serial, &frames[0].payload[..]),
            (1, &b"hello"[..])
        );
        assert_eq!((frames[1].serial, &frames[1].payload[..]), (-2, &b""[..]));
    }

    #[test]
    fn two_frames_in_one_buffer_come_out_one_at_a_time() {
        let mut buf = BytesMut::from(&[encode_frame(1, b"a"), encode_frame(2, b"b")].concat()[..]);
        let mut d = FrameDecoder::new(1024);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().serial, 1);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().serial, 2);
        assert!(d.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn negative_and_huge_counts_are_rejected_before_allocating() {
        for (count, want) in [
            (-1, FrameError::NegativeCount(-1)),
            (i32::MIN, FrameError::NegativeCount(i32::MIN)),
        ] {
            let mut buf = BytesMut::new();
            buf.put_i32(0);
            buf.put_i32(count);
            assert_eq!(FrameDecoder::new(1024).decode(&mut buf).unwrap_err(), want);
        }
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        buf.put_i32(i32::MAX);
        assert!(matches!(
            FrameDecoder::new(1 << 20).decode(&mut buf).unwrap_err(),
            FrameError::TooManyBuffers { .. }
        ));
    }

    #[test]
    fn huge_or_negative_lengths_are_rejected_before_allocating() {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        buf.put_i32(1);
        buf.put_i32(i32::MAX);
        let mut d = FrameDecoder::new(1 << 20);
        assert!(matches!(
            d.decode(&mut buf).unwrap_err(),
            FrameError::TooLarge { .. }
        ));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        buf.put_i32(1);
        buf.put_i32(-4);
        assert_eq!(
            FrameDecoder::new(1 << 20).decode(&mut buf).unwrap_err(),
            FrameError::NegativeLength(-4)
        );
    }

    #[test]
    fn many_small_buffers_add_up_to_the_limit() {
        // 10 buffers of 100 bytes = 1040 frame bytes with prefixes: over a 1000-byte limit.
        let chunk = [0u8; 100];
        let bufs: Vec<&[u8]> = (0..10).map(|_| &chunk[..]).collect();
        let mut buf = BytesMut::from(&pack(3, &bufs)[..]);
        assert!(matches!(
            FrameDecoder::new(1000).decode(&mut buf).unwrap_err(),
            FrameError::TooLarge { .. }
        ));
        let mut buf = BytesMut::from(&pack(3, &bufs)[..]);
        assert_eq!(
            FrameDecoder::new(1040)
                .decode(&mut buf)
                .unwrap()
                .unwrap()
                .payload
                .len(),
            1000
        );
    }

    #[test]
    fn a_declared_but_unsent_buffer_costs_only_what_arrived() {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        buf.put_i32(1);
        buf.put_i32(1 << 20);
        buf.put_slice(b"xyz");
        let mut d = FrameDecoder::new(64 << 20);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(!d.is_idle());
        assert_eq!(d.partial_len(), 8 + 4 + 3);
    }
}
