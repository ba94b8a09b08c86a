//! Kafka's wire framing, client side: a request is a 4-byte big-endian length, a request
//! header (at the version `ApiKey::request_header_version` gives) and the body; a response
//! is a length, a response header (`ApiKey::response_header_version`) and the body. Message
//! bodies are encoded and decoded by `kafka-protocol`; this module only frames them and
//! checks sizes and correlation ids. Sockets and connection state live in `connection.rs`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in the length prefix.
pub(crate) const LENGTH_PREFIX: usize = 4;

/// Why a frame could not be written or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The length prefix announced more than the configured maximum.
    #[error("response of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    /// The length prefix was negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// `kafka-protocol` refused to encode the request.
    #[error("cannot encode {api:?} v{version}: {message}")]
    Encode {
        api: ApiKey,
        version: i16,
        message: String,
    },
    /// `kafka-protocol` could not decode the response.
    #[error("cannot decode {api:?} v{version} response: {message}")]
    Decode {
        api: ApiKey,
        version: i16,
        message: String,
    },
    /// The response answers a different request.
    #[error("response correlation id {got} does not match request {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
}

/// Encodes one request frame: length prefix, header, body.
pub(crate) fn encode_request<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    body: &T,
) -> Result<BytesMut, FrameError> {
    let encode_err = |e: &dyn std::fmt::Display| FrameError::Encode {
        api,
        version,
        message: e.to_string(),
    };
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::new();
    buf.put_u32(0); // length, filled in below
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| encode_err(&e))?;
    body.encode(&mut buf, version).map_err(|e| encode_err(&e))?;
    let len = u32::try_from(buf.len() - LENGTH_PREFIX).map_err(|_| FrameError::Encode {
        api,
        version,
        message: format!("request of {} bytes is too large to frame", buf.len()),
    })?;
    if let Some(prefix) = buf.get_mut(..LENGTH_PREFIX) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
    Ok(buf)
}

/// Reads one frame (without its length prefix), refusing frames over `max` bytes before
/// allocating for them.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Bytes, FrameError> {
    let len = reader.read_i32().await?;
    let size = usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let mut buf = vec![0u8; size];
    reader.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// Strips the response header from `frame`, checking the correlation id, and returns the
/// body bytes.
pub(crate) fn split_response(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
    expected_correlation_id: i32,
) -> Result<Bytes, FrameError> {
    let header =
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).map_err(|e| {
            FrameError::Decode {
                api,
                version,
                message: format!("header: {e}"),
            }
        })?;
    if header.correlation_id != expected_correlation_id {
        return Err(FrameError::CorrelationMismatch {
            expected: expected_correlation_id,
            got: header.correlation_id,
        });
    }
    Ok(frame)
}

/// Decodes a response body at `version`. Bytes left over (fields newer than `version` would
/// be a broker bug) are ignored, as Kafka's Java client ignores them.
pub(crate) fn decode_body<T: Decodable>(
    mut body: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<T, FrameError> {
    let decoded = T::decode(&mut body, version).map_err(|e| FrameError::Decode {
        api,
        version,
        message: e.to_string(),
    })?;
    if body.has_remaining() {
        tracing::debug!(
            ?api,
            version,
            trailing = body.remaining(),
            "response has trailing bytes"
        );
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiVersionsResponse, JoinGroupRequest, MetadataRequest, MetadataResponse,
    };
    use tokio::io::AsyncWriteExt;

    fn client_id() -> StrBytes {
        StrBytes::from_static_str("test-client")
    }

    #[test]
    fn request_frame_has_length_prefix_and_header() {
        let req = MetadataRequest::default().with_topics(Some(vec![]));
        let frame = encode_request(ApiKey::Metadata, 9, 77, &client_id(), &req).unwrap();
        let mut bytes = frame.freeze();
        let len = bytes.get_u32() as usize;
        assert_eq!(len, bytes.len());
        // Metadata v9 is flexible: header v2.
        let hdr = RequestHeader::decode(&mut bytes, 2).unwrap();
        assert_eq!(hdr.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(hdr.request_api_version, 9);
        assert_eq!(hdr.correlation_id, 77);
        assert_eq!(hdr.client_id.as_deref(), Some("test-client"));
        let body = MetadataRequest::decode(&mut bytes, 9).unwrap();
        assert_eq!(body.topics, Some(vec![]));
        assert!(!bytes.has_remaining());
    }

    #[test]
    fn encode_refuses_fields_the_version_lacks() {
        // `group_instance_id` only exists from v5; kafka-protocol refuses to drop it.
        let req = JoinGroupRequest::default()
            .with_group_instance_id(Some(StrBytes::from_static_str("static-1")));
        let err = encode_request(ApiKey::JoinGroup, 4, 1, &client_id(), &req).unwrap_err();
        assert!(
            matches!(err, FrameError::Encode { version: 4, .. }),
            "{err}"
        );
    }

    fn response_frame(
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &impl Encodable,
    ) -> Vec<u8> {
        let mut buf = BytesMut::new();
        buf.put_u32(0);
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, api.response_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - LENGTH_PREFIX) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.to_vec()
    }

    #[tokio::test]
    async fn response_round_trips_through_a_socket() {
        let body = MetadataResponse::default().with_controller_id(7.into());
        let wire = response_frame(ApiKey::Metadata, 12, 5, &body);
        let (mut a, mut b) = tokio::io::duplex(64);
        // Write in a task: the duplex buffer is smaller than the frame, so reads interleave.
        let writer = tokio::spawn(async move { a.write_all(&wire).await });
        let frame = read_frame(&mut b, 1 << 20).await.unwrap();
        writer.await.unwrap().unwrap();
        let body = split_response(frame, ApiKey::Metadata, 12, 5).unwrap();
        let decoded: MetadataResponse = decode_body(body, ApiKey::Metadata, 12).unwrap();
        assert_eq!(decoded.controller_id, 7);
    }

    #[tokio::test]
    async fn api_versions_response_header_is_always_v0() {
        // ApiVersions v3 is flexible, yet its response header stays v0 (no tagged fields) so
        // that a client can always read the error; a header-v1 decode would eat a body byte.
        let body = ApiVersionsResponse::default().with_error_code(35);
        let wire = response_frame(ApiKey::ApiVersions, 3, 9, &body);
        let frame = read_frame(&mut wire.as_slice(), 1 << 20).await.unwrap();
        let body = split_response(frame, ApiKey::ApiVersions, 3, 9).unwrap();
        let decoded: ApiVersionsResponse = decode_body(body, ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(decoded.error_code, 35);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let wire = 1_000_000i32.to_be_bytes();
        let err = read_frame(&mut wire.as_slice(), 1024).await.unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    size: 1_000_000,
                    max: 1024
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn negative_length_is_refused() {
        let wire = (-5i32).to_be_bytes();
        let err = read_frame(&mut wire.as_slice(), 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::NegativeLength(-5)), "{err}");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_io_error() {
        let mut wire = 10i32.to_be_bytes().to_vec();
        wire.extend_from_slice(&[1, 2, 3]);
        let err = read_frame(&mut wire.as_slice(), 1024).await.unwrap_err();
        match err {
            FrameError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
            other => panic!("expected eof, got {other}"),
        }
    }

    #[tokio::test]
    async fn correlation_mismatch_is_detected() {
        let body = MetadataResponse::default();
        let wire = response_frame(ApiKey::Metadata, 1, 41, &body);
        let frame = read_frame(&mut wire.as_slice(), 1 << 20).await.unwrap();
        let err = split_response(frame, ApiKey::Metadata, 1, 42).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::CorrelationMismatch {
                    expected: 42,
                    got: 41
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn garbage_body_is_a_decode_error() {
        let err =
            decode_body::<MetadataResponse>(Bytes::from_static(&[0, 0, 0]), ApiKey::Metadata, 1)
                .unwrap_err();
        assert!(matches!(err, FrameError::Decode { .. }), "{err}");
    }
}
